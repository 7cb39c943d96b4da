# ProRL engine — build, test and benchmark.
#
#   make demo    the main job (see README)
#   make test    every test: C kernels (OpenMP, ASan+UBSan, no OpenMP),
#                the C-only library link, Swift tests, a plain `swift build`
#   make bench   kernel benchmarks (JSON lines) — see Benchmarks/README.md
#   make lib     build/lib/libprorl_kernels.a + build/include/prorl_kernels.h
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

.PHONY: all deps lib test test-kernels test-kernels-asan test-kernels-serial test-swift \
        build-plain bench bench-kernels demo clean

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

# ---- C library ----------------------------------------------------------

lib: $(BUILD)/lib/libprorl_kernels.a $(BUILD)/include/prorl_kernels.h

$(BUILD)/lib/libprorl_kernels.a: $(KERNEL_DEPS) | deps
	@mkdir -p $(BUILD)/obj $(BUILD)/lib
	@for f in $(KERNEL_SRC); do \
	  $(KCC) $(KCFLAGS) $(OMP_CFLAGS) -c $$f -o $(BUILD)/obj/$$(basename $$f .c).o || exit 1; done
	ar rcs $@ $(BUILD)/obj/*.o

$(BUILD)/include/prorl_kernels.h: CKernels/include/prorl_kernels.h
	@mkdir -p $(BUILD)/include
	cp $< $@

# ---- tests --------------------------------------------------------------

test: test-kernels test-kernels-asan test-kernels-serial test-swift build-plain
	@echo "all tests passed"

# C-only: the test program links the static library and nothing else.
# (Compile and link are separate steps: clang links -fopenmp objects against
# `-lomp`, which Debian ships as libomp5.)
$(BUILD)/kernel_tests: Tests/CKernelsTests/kernel_tests.c $(BUILD)/lib/libprorl_kernels.a
	$(KCC) $(KCFLAGS) $(OMP_CFLAGS) -I$(BUILD)/include -c $< -o $@.o
	$(KCC) $@.o -L$(BUILD)/lib -lprorl_kernels $(OMP_LIBS) -lm -lpthread -o $@

test-kernels: $(BUILD)/kernel_tests
	$(BUILD)/kernel_tests

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

test-swift: deps
	$(SWIFT) test -c release

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

bench: bench-kernels

# ---- main job -----------------------------------------------------------

demo: bench

clean:
	rm -rf $(BUILD) .build .build-plain
