#!/usr/bin/env bash
# RL on the synthetic world against the GRU4Rec simulator (the one that
# agrees with the world's truth about path length; see
# simulator_length.sh), one seed, two temperatures; then the test split
# scored by GRU4Rec and by the SASRec simulator, with the world's truth.
#
#   tools/experiments/synthetic_gru4rec_rl.sh RUNS LENGTH OUT [PRORL]
#
# RUNS: tools/experiments/rl.sh synthetic's output (tasks, pretrain-s1,
# simulator); LENGTH: simulator_length.sh's output (gru4rec/); each RL run
# 400 steps of 64 × 16 or 10 minutes on one core, both at once.
set -euo pipefail
cd "$(dirname "$0")/../.."
RUNS=${1:?usage: synthetic_gru4rec_rl.sh RUNS LENGTH OUT [PRORL]}; LEN=${2:?}; OUT=${3:?}; P=${4:-.build/release/prorl}
GRU=$LEN/gru4rec/simulator.safetensors
mkdir -p "$OUT"
rl() {
  local name=$1; shift
  [ -f "$OUT/$name/policy.safetensors" ] || { rm -rf "${OUT:?}/$name"; $P train --run "$OUT/$name" --tasks "$RUNS/tasks" --simulator "$GRU" \
      --policy "$RUNS/pretrain-s1/policy-sft.safetensors" --steps 400 --prompts-per-step 64 --evaluate-every 25 --time-limit 10 \
      --seed 2025 --threads 1 --world Data/synthetic "$@" > "$OUT/$name.log" 2>&1; }
}
rl gru-t0.25-s1 &
rl gru-t1k50-s1 --temperature 1 --top-k 50 &
wait
for sim in gru4rec:$GRU sasrec:$RUNS/simulator/simulator.safetensors; do
  $P eval --simulator "${sim#*:}" --tasks "$RUNS/tasks" --split test --policy "pretrained-s1=$RUNS/pretrain-s1/policy-sft.safetensors" \
      --policy "gru-t0.25-s1=$OUT/gru-t0.25-s1/policy.safetensors" --policy "gru-t1k50-s1=$OUT/gru-t1k50-s1/policy.safetensors" \
      --beams 1 --baselines greedy --out "$OUT/eval-test-${sim%%:*}" --threads 1 --world Data/synthetic > "$OUT/eval-test-${sim%%:*}.log" 2>&1 &
done
wait
grep -h "K=1" "$OUT"/eval-test-*.log
