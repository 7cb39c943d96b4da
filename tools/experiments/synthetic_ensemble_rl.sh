#!/usr/bin/env bash
# ProRL on the synthetic world against the mean reward of two simulators
# (SASRec, the training simulator, and GRU4Rec: `prorl train --ensemble`),
# seeds 1 and 3, then the test split under SASRec, the held-out SASRec and
# GRU4Rec, with the world's truth.
#
#   tools/experiments/synthetic_ensemble_rl.sh RUNS LENGTH OUT [PRORL]
#
# RUNS: tools/experiments/rl.sh synthetic's output; LENGTH:
# simulator_length.sh's output (gru4rec/). ≈ 15 min on two cores.
set -euo pipefail
cd "$(dirname "$0")/../.."
RUNS=${1:?usage: synthetic_ensemble_rl.sh RUNS LENGTH OUT [PRORL]}; LEN=${2:?}; OUT=${3:?}; P=${4:-.build/release/prorl}
mkdir -p "$OUT"
for s in 1 3; do
  [ -f "$OUT/ens-s$s/policy.safetensors" ] || { rm -rf "${OUT:?}/ens-s$s"; $P train --run "$OUT/ens-s$s" --tasks "$RUNS/tasks" \
      --simulator "$RUNS/simulator/simulator.safetensors" --ensemble "$LEN/gru4rec/simulator.safetensors" \
      --policy "$RUNS/pretrain-s$s/policy-sft.safetensors" --steps 400 --prompts-per-step 64 --evaluate-every 50 --time-limit 10 \
      --seed $((2024 + s)) --threads 1 --world Data/synthetic > "$OUT/ens-s$s.log" 2>&1; } &
done
wait
for sim in sasrec:$RUNS/simulator sasrec-b:$RUNS/simulator-b gru4rec:$LEN/gru4rec; do
  $P eval --simulator "${sim#*:}/simulator.safetensors" --tasks "$RUNS/tasks" --split test \
      --policy "pretrained-s1=$RUNS/pretrain-s1/policy-sft.safetensors" --policy "pretrained-s3=$RUNS/pretrain-s3/policy-sft.safetensors" \
      --policy "ens-s1=$OUT/ens-s1/policy.safetensors" --policy "ens-s3=$OUT/ens-s3/policy.safetensors" \
      --beams 1 --out "$OUT/eval-test-${sim%%:*}" --threads 1 --world Data/synthetic > "$OUT/eval-test-${sim%%:*}.log" 2>&1
done
grep -h "K=1" "$OUT"/eval-test-*.log
