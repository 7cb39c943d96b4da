#!/usr/bin/env bash
# The engine at fp32 and at bf16 products, and the PyTorch baseline
# (../shared/peers/pytorch, glibc-tuned), alternating per workload in one
# window, two rounds; JSON lines with "side" = engine-fp32 | engine-bf16 | peer.
#
#   tools/bench/precision_side_by_side.sh .build/release/prorl > sbs.jsonl
set -uo pipefail
BIN=$(realpath "${1:?prorl binary}")
PEERS=$(cd "$(dirname "$0")/../../../shared/peers/pytorch" && pwd)
PY=${PY:-$(cd "$PEERS/../../.." && pwd)/peers-venv/bin/python}
TUNED=(env MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=68719476736 MALLOC_TOP_PAD_=268435456)
for round in 1 2; do
  for pair in "rl:bench_rl_step.py" "pretrain:bench_pretrain.py" "sample:bench_generate.py" "simulator:bench_sasrec.py"; do
    w=${pair%%:*}; p=${pair#*:}
    for prec in fp32 bf16; do
      echo "=== round $round $w engine $prec $(date +%T)" >&2
      "$BIN" bench "$w" --repetitions 7 --precision "$prec" | sed "s/^{/{\"side\":\"engine-$prec\",\"round\":$round,/"
    done
    echo "=== round $round $w peer $(date +%T)" >&2
    (cd "$PEERS" && "${TUNED[@]}" BENCH_REPEATS=7 "$PY" "$p" 2>/dev/null) | grep '^{' | sed "s/^{/{\"side\":\"peer\",\"round\":$round,/"
  done
done
