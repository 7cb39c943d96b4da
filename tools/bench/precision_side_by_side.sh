#!/usr/bin/env bash
# The engine at fp32 and at bf16 products, and the PyTorch baseline
# (../shared/peers/pytorch, glibc-tuned), alternating per workload in one
# window, two rounds; JSON lines with "side" = engine-fp32 | engine-bf16 | peer.
#
#   tools/bench/precision_side_by_side.sh .build/release/prorl > sbs.jsonl            # all four workloads (≈ 5 min)
#   PROMPTS=64 REPS=3 tools/bench/precision_side_by_side.sh .build/release/prorl rl   # the RL step at 64 × 16 (≈ 7 min)
#
# WORKLOADS (after the binary): any of rl pretrain sample simulator (default:
# all). PROMPTS: prompts of the RL step, both sides (default: each side's
# own, 8). REPS: timed repetitions per side (default 7; below 7 the PyTorch
# side warms up once instead of its scripts' two or three).
set -uo pipefail
BIN=$(realpath "${1:?prorl binary}")
shift
WORKLOADS=${*:-rl pretrain sample simulator}
REPS=${REPS:-7}
PEERS=$(cd "$(dirname "$0")/../../../shared/peers/pytorch" && pwd)
PY=${PY:-$(cd "$PEERS/../../.." && pwd)/peers-venv/bin/python}
TUNED=(env MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=68719476736 MALLOC_TOP_PAD_=268435456)
WARMUP=(); [ "$REPS" -lt 7 ] && WARMUP=(BENCH_WARMUP=1)  # else each script's own warm-up
declare -A SCRIPT=([rl]=bench_rl_step.py [pretrain]=bench_pretrain.py [sample]=bench_generate.py [simulator]=bench_sasrec.py)
for round in 1 2; do
  for w in $WORKLOADS; do
    p=${SCRIPT[$w]:?unknown workload $w (rl, pretrain, sample, simulator)}
    prompts=()  # the same flag on both sides
    if [ "$w" = rl ] && [ -n "${PROMPTS:-}" ]; then prompts=(--prompts "$PROMPTS"); fi
    for prec in fp32 bf16; do
      echo "=== round $round $w engine $prec $(date +%T)" >&2
      "$BIN" bench "$w" --repetitions "$REPS" --precision "$prec" "${prompts[@]}" \
        | sed "s/^{/{\"side\":\"engine-$prec\",\"round\":$round,/"
    done
    echo "=== round $round $w peer $(date +%T)" >&2
    (cd "$PEERS" && "${TUNED[@]}" BENCH_REPEATS="$REPS" "${WARMUP[@]}" "$PY" "$p" "${prompts[@]}" 2>/dev/null) \
      | grep '^{' | sed "s/^{/{\"side\":\"peer\",\"round\":$round,/"
  done
done
