# ProRL engine — build, test and benchmark.
#
#   make demo    the main job: the whole pipeline on the synthetic world
#                (runs/demo/report.md)
#   make test    every test: C kernels (OpenMP, ASan+UBSan, no OpenMP),
#                Swift tests (fp32 and bf16 products), the C API and its
#                example, a plain `swift build`
#   make bench   kernel benchmarks (JSON lines) — see Benchmarks/README.md
#   make mpi     build/lib/libprorl_mpi.so, the MPI plugin for `mpirun -np N prorl …`
#   make lib     build/lib/libprorl.so (C API) + libprorl_kernels.a, their
#                headers in build/include, build/lib/pkgconfig/prorl.pc
#   make install PREFIX=/usr/local   the same layout under PREFIX
#
# Everything installs what it needs (libomp-dev) on first use.

SHELL := /bin/bash
SWIFT ?= swift
BUILD := build
KERNEL_SRC := $(wildcard CKernels/src/*.c)
KERNEL_DEPS := $(wildcard CKernels/src/*.c CKernels/src/*.h CKernels/src/*.inc CKernels/include/*.h)

# The kernels are compiled by the Swift toolchain's clang when present (the
# compiler SwiftPM uses), else by gcc.
KCC := $(shell command -v clang >/dev/null 2>&1 && echo clang || echo gcc)
ifeq ($(KCC),clang)
  OMP_CFLAGS := -fopenmp
  OMP_LIBS := -lomp5
else
  OMP_CFLAGS := -fopenmp
  OMP_LIBS := -fopenmp
endif
KCFLAGS := -std=c11 -O3 -fPIC -Wall -Wextra -Werror -ICKernels/include
SAN_FLAGS := -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer

# SwiftPM reads this to turn on OpenMP and -O3 for the kernels.
export PRORL_OPENMP := 1

.PHONY: all deps lib install test test-kernels test-kernels-asan test-kernels-serial test-swift \
        test-capi test-fuzz test-python test-mpi build-plain bench bench-kernels bench-engine demo clean mpi

all: lib
	$(SWIFT) build -c release

# ---- system dependencies ------------------------------------------------

# LLVM's OpenMP runtime (libomp5) is the one system package we need.
deps: $(BUILD)/.deps
$(BUILD)/.deps:
	@mkdir -p $(BUILD)
	@if ! ldconfig -p | grep -q 'libomp5\.so\b\|libomp\.so\.5'; then \
	  echo "installing libomp-dev (LLVM OpenMP runtime)"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq libomp-dev >/dev/null; \
	fi
	@touch $@

# ---- C libraries ----------------------------------------------------------

PREFIX ?= /usr/local
lib: $(BUILD)/lib/libprorl_kernels.a $(BUILD)/include/prorl_kernels.h \
     $(BUILD)/lib/libprorl.so $(BUILD)/include/prorl.h $(BUILD)/lib/pkgconfig/prorl.pc

# The C API is a Swift library product (it carries the engine); SwiftPM
# names it after the product, we install it as libprorl.so (no SONAME, so
# the file name is what programs record).
# Only the API's functions (prorl_*) are exported: a version script hides
# the engine's own symbols, so a program linking libprorl sees prorl.h and
# nothing else.
$(BUILD)/lib/libprorl.so: $(wildcard Sources/*/*.swift Sources/*/*/*.swift Sources/CProRLAPI/*.c Sources/CProRLAPI/include/*.h) $(KERNEL_DEPS) | deps
	@mkdir -p $(BUILD)/lib
	printf '{ global: prorl_*; local: *; };\n' > $(BUILD)/prorl.map
	$(SWIFT) build -c release --product prorl-embed --scratch-path .build-embed -Xlinker --version-script=$(abspath $(BUILD)/prorl.map)
	cp .build-embed/release/libprorl-embed.so $@

$(BUILD)/include/prorl.h: Sources/CProRLAPI/include/prorl.h
	@mkdir -p $(BUILD)/include
	cp $< $@

$(BUILD)/lib/pkgconfig/prorl.pc: Makefile
	@mkdir -p $(BUILD)/lib/pkgconfig
	@printf 'prefix=%s\nincludedir=$${prefix}/include\nlibdir=$${prefix}/lib\n\nName: prorl\nDescription: ProRL proactive recommendation engine (C API)\nVersion: %s\nCflags: -I$${includedir}\nLibs: -L$${libdir} -Wl,-rpath,$${libdir} -lprorl\n' \
	  "$(abspath $(BUILD))" "$$(sed -n 's/.*version = "\(.*\)".*/\1/p' Sources/ProRL/ProRL.swift)" > $@

install: lib
	install -d $(PREFIX)/include $(PREFIX)/lib/pkgconfig
	install -m 644 $(BUILD)/include/prorl.h $(BUILD)/include/prorl_kernels.h $(PREFIX)/include/
	install -m 755 $(BUILD)/lib/libprorl.so $(PREFIX)/lib/
	install -m 644 $(BUILD)/lib/libprorl_kernels.a $(PREFIX)/lib/
	sed 's|^prefix=.*|prefix=$(PREFIX)|' $(BUILD)/lib/pkgconfig/prorl.pc > $(PREFIX)/lib/pkgconfig/prorl.pc

$(BUILD)/lib/libprorl_kernels.a: $(KERNEL_DEPS) | deps
	@mkdir -p $(BUILD)/obj $(BUILD)/lib
	@for f in $(KERNEL_SRC); do \
	  $(KCC) $(KCFLAGS) $(OMP_CFLAGS) -c $$f -o $(BUILD)/obj/$$(basename $$f .c).o || exit 1; done
	ar rcs $@ $(BUILD)/obj/*.o

$(BUILD)/include/prorl_kernels.h: CKernels/include/prorl_kernels.h
	@mkdir -p $(BUILD)/include
	cp $< $@

# ---- MPI (data-parallel training) ------------------------------------------

# The MPI plugin: the engine's collectives over the system's MPI, compiled
# by its mpicc and opened by the engine at run time when `mpirun` started it
# (the engine itself never links MPI). Installs Open MPI from Debian when
# mpicc is missing. The copy beside .build/release/prorl is what a plain
# `mpirun -np N .build/release/prorl …` finds.
mpi: $(BUILD)/lib/libprorl_mpi.so .build/release/libprorl_mpi.so
$(BUILD)/.deps-mpi:
	@mkdir -p $(BUILD)
	@if ! command -v mpicc >/dev/null 2>&1 || ! command -v mpirun >/dev/null 2>&1; then \
	  echo "installing openmpi-bin libopenmpi-dev (Open MPI)"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq openmpi-bin libopenmpi-dev >/dev/null; \
	fi
	@touch $@
$(BUILD)/lib/libprorl_mpi.so: Sources/MPIPlugin/prorl_mpi.c | $(BUILD)/.deps-mpi
	@mkdir -p $(BUILD)/lib
	mpicc -std=c11 -O2 -Wall -Wextra -Werror -fPIC -shared -fvisibility=hidden $< -o $@
.build/release/libprorl_mpi.so: $(BUILD)/lib/libprorl_mpi.so
	@mkdir -p .build/release
	cp $< $@

# ---- tests --------------------------------------------------------------

test: test-kernels test-kernels-asan test-kernels-serial test-swift test-capi test-fuzz test-python test-mpi build-plain
	@echo "all tests passed"

# C-only: the test program links the static library and nothing else.
# (Compile and link are separate steps: clang links -fopenmp objects against
# `-lomp`, which Debian ships as libomp5.)
$(BUILD)/kernel_tests: Tests/CKernelsTests/kernel_tests.c $(BUILD)/lib/libprorl_kernels.a
	$(KCC) $(KCFLAGS) $(OMP_CFLAGS) -I$(BUILD)/include -c $< -o $@.o
	$(KCC) $@.o -L$(BUILD)/lib -lprorl_kernels $(OMP_LIBS) -lm -lpthread -o $@

test-kernels: $(BUILD)/kernel_tests
	$(BUILD)/kernel_tests
	PRORL_PRECISION=bf16 $(BUILD)/kernel_tests --quick

# AddressSanitizer + UndefinedBehaviorSanitizer, threaded, reduced sizes.
$(BUILD)/kernel_tests_asan: Tests/CKernelsTests/kernel_tests.c $(KERNEL_DEPS) | deps
	@mkdir -p $(BUILD)/obj-asan
	@for f in $(KERNEL_SRC) $<; do \
	  $(KCC) -std=c11 -Wall -Wextra -Werror -ICKernels/include $(SAN_FLAGS) $(OMP_CFLAGS) \
	    -c $$f -o $(BUILD)/obj-asan/$$(basename $$f .c).o || exit 1; done
	$(KCC) $(SAN_FLAGS) -fuse-ld=bfd $(BUILD)/obj-asan/*.o $(OMP_LIBS) -lm -lpthread -o $@

test-kernels-asan: $(BUILD)/kernel_tests_asan
	ASAN_OPTIONS=detect_leaks=1 $(BUILD)/kernel_tests_asan --quick

# Without OpenMP, compiled by gcc: the kernels build and pass single-threaded.
$(BUILD)/kernel_tests_serial: Tests/CKernelsTests/kernel_tests.c $(KERNEL_DEPS)
	@mkdir -p $(BUILD)
	gcc -std=c11 -O2 -Wall -Wextra -Werror -Wno-unknown-pragmas -ICKernels/include \
	  $(KERNEL_SRC) $< -lm -lpthread -o $@

test-kernels-serial: $(BUILD)/kernel_tests_serial
	$(BUILD)/kernel_tests_serial --quick

# The Swift tests twice: at the default fp32 products, and with bf16
# products as every thread's default (PRORL_PRECISION=bf16; fp32 where the
# CPU lacks AVX512-BF16). Tests against fp32 references then allow bf16's
# error, and the few that need exact fp32 arithmetic say so and pin it.
test-swift: deps
	$(SWIFT) test -c release
	PRORL_PRECISION=bf16 $(SWIFT) test -c release

# The C API with the system C compiler: the header compiles as strict C99 and
# as C++; the error-status tests and the example run against a small run
# made by `prorl demo --quick`.
CAPI_RUN := $(BUILD)/capi-run
CC_SYS ?= cc
$(BUILD)/capi_tests: Tests/CAPITests/capi_tests.c lib
	$(CC_SYS) -std=c99 -Wall -Wextra -Werror -pedantic -I$(BUILD)/include $< -L$(BUILD)/lib -Wl,-rpath,$(abspath $(BUILD)/lib) -lprorl -lm -o $@
$(BUILD)/guide: Examples/c/guide.c lib
	$(CC_SYS) -std=c99 -Wall -Wextra -Werror -pedantic $$(PKG_CONFIG_PATH=$(BUILD)/lib/pkgconfig pkg-config --cflags prorl 2>/dev/null || echo -I$(BUILD)/include) \
	  $< -L$(BUILD)/lib -Wl,-rpath,$(abspath $(BUILD)/lib) -lprorl -lm -o $@

test-capi: $(BUILD)/capi_tests $(BUILD)/guide
	echo '#include "prorl.h"' | $(KCC) -x c++ -std=c++11 -Wall -Wextra -Werror -pedantic -fsyntax-only -I$(BUILD)/include -
	rm -rf $(CAPI_RUN) && mkdir -p $(CAPI_RUN)/scratch
	$(SWIFT) build -c release --product prorl
	.build/release/prorl demo --quick --out $(CAPI_RUN)/demo > $(CAPI_RUN)/demo.log
	$(BUILD)/capi_tests $(CAPI_RUN)/demo/prorl $(CAPI_RUN)/scratch
	@ids=$$(head -1 $(CAPI_RUN)/demo/tasks/test.jsonl | python3 -c 'import json,sys; t=json.loads(sys.stdin.readline()); print(t["proc_path"][-1], *t["inters"])'); \
	  $(BUILD)/guide $(CAPI_RUN)/demo/prorl $$ids | tee $(CAPI_RUN)/guide.out; \
	  grep -q '3 paths toward' $(CAPI_RUN)/guide.out && grep -q 'step 1 ' $(CAPI_RUN)/guide.out \
	  || { echo "the example's output is not what it should be"; exit 1; }
	@$(BUILD)/guide /nonexistent 1 2 2>&1 | grep -q 'PRORL_ERR_NOT_FOUND' || { echo "the example should report a missing run"; exit 1; }

# The hostile-input corpus (tools/fuzz/fuzz.py): malformed files of every
# format and out-of-range flags of every subcommand, run through the real
# binary against the run test-capi made; no crash, no hang, a one-line error
# naming the file or flag, nothing left behind. Then kill -9 a training run
# at random moments and resume it: the result must equal the uninterrupted run.
test-fuzz: test-capi
	rm -rf $(CAPI_RUN)/fuzz
	python3 tools/fuzz/fuzz.py .build/release/prorl $(CAPI_RUN)/demo $(CAPI_RUN)/fuzz
	python3 tools/fuzz/kill_resume.py .build/release/prorl $(CAPI_RUN)/demo/prorl $(CAPI_RUN)/kill

# Data-parallel training under Open MPI (tools/mpi/mpi_tests.py): mpirun -np 2
# against one process on the same global batch (RL, pretraining, simulator),
# resume under mpirun, kill -9 of one rank, and the refusals; against the run
# test-capi made.
test-mpi: test-capi mpi
	python3 tools/mpi/mpi_tests.py .build/release/prorl $(CAPI_RUN)/demo $(CAPI_RUN)/mpi

# The Python bindings (python/, ctypes over libprorl): installed into a fresh
# venv with pip, as a user would, and tested against the run test-capi made.
PYVENV := $(BUILD)/pyvenv
test-python: test-capi
	rm -rf $(PYVENV)
	@python3 -m venv $(PYVENV) 2>/dev/null || { echo "installing python3-venv"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq python3-venv >/dev/null && python3 -m venv $(PYVENV); }
	$(PYVENV)/bin/pip install --quiet --disable-pip-version-check ./python
	cd $(BUILD) && PRORL_LIBRARY=$(abspath $(BUILD)/lib/libprorl.so) PRORL_TEST_RUN=$(abspath $(CAPI_RUN)/demo/prorl) \
	  $(abspath $(PYVENV))/bin/python -m unittest discover -s $(abspath python/tests) -v

# The package must also build as a plain dependency would: no OpenMP, no
# unsafe flags.
build-plain:
	env -u PRORL_OPENMP $(SWIFT) build --scratch-path .build-plain --product prorl

# ---- benchmarks ---------------------------------------------------------

$(BUILD)/kernel_bench: Benchmarks/kernels/kernel_bench.c $(BUILD)/lib/libprorl_kernels.a
	$(KCC) $(KCFLAGS) $(OMP_CFLAGS) -I$(BUILD)/include -c $< -o $@.o
	$(KCC) $@.o -L$(BUILD)/lib -lprorl_kernels $(OMP_LIBS) -lm -lpthread -o $@

bench-kernels: $(BUILD)/kernel_bench
	$(BUILD)/kernel_bench

# The engine's workloads (pretraining step, sampling, simulator step,
# rewards, RL step) as JSON lines, each in a fresh process (after the
# 0.9 GB pretraining workload the allocator's heap slows the others).
bench-engine: deps
	$(SWIFT) build -c release --product prorl
	for w in pretrain sample simulator rewards rl; do .build/release/prorl bench $$w || exit 1; done

bench: bench-kernels bench-engine

# ---- main job -----------------------------------------------------------

# The whole pipeline on the embedded synthetic world, into runs/demo.
demo: deps
	$(SWIFT) build -c release --product prorl
	rm -rf runs/demo
	.build/release/prorl demo --out runs/demo

clean:
	rm -rf $(BUILD) .build .build-plain .build-embed
