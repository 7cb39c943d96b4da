#!/usr/bin/env bash
# The ML-100K experiment of docs/RESULTS.md: tasks, simulator, pretraining,
# then the five RL estimators from the same pretrained policy with the same
# budget, evaluation tables on validation and test, and the report.
#
#   tools/experiments/ml100k.sh [OUT=runs/ml100k] [STEPS=300]
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${1:-runs/ml100k}
STEPS=${2:-300}
DATA=${PRORL_DATA_DIR:-../shared/data}/ml-100k
P=.build/release/prorl
export PRORL_OPENMP=1
swift build -c release --product prorl >/dev/null

mkdir -p "$OUT"
[ -f "$OUT/tasks/catalog.json" ] || $P data tasks --inter "$DATA/ml-100k.inter" --item "$DATA/ml-100k.item" --out "$OUT/tasks"
[ -f "$OUT/simulator/simulator.safetensors" ] || $P simulator train --inter "$DATA/ml-100k.inter" --item "$DATA/ml-100k.item" \
    --out "$OUT/simulator" | tail -3
[ -f "$OUT/pretrain/policy-sft.safetensors" ] || $P pretrain --tasks "$OUT/tasks" --out "$OUT/pretrain" --epochs 30 | tail -3
for algo in prorl reinforce grpo prorl-no-centering prorl-no-psae; do
  [ -f "$OUT/$algo/policy.safetensors" ] && [ "$(wc -l < "$OUT/$algo/metrics.jsonl")" -ge "$STEPS" ] && continue
  if [ -f "$OUT/$algo/state.safetensors" ]; then
    $P train --run "$OUT/$algo" --resume | tail -2
  else
    rm -rf "${OUT:?}/$algo"
    $P train --run "$OUT/$algo" --algo "$algo" --tasks "$OUT/tasks" --simulator "$OUT/simulator/simulator.safetensors" \
      --policy "$OUT/pretrain/policy-sft.safetensors" --steps "$STEPS" --evaluate-every 50 | tail -2
  fi
done
policies=(--policy "pretrained=$OUT/pretrain/policy-sft.safetensors")
for algo in prorl reinforce grpo prorl-no-centering prorl-no-psae; do policies+=(--policy "$algo=$OUT/$algo/policy.safetensors"); done
for split in validation test; do  # checkpoints were selected on validation; test is read once, here
  $P eval --simulator "$OUT/simulator/simulator.safetensors" --tasks "$OUT/tasks" --split $split "${policies[@]}" \
    --out "$OUT/eval-$split" | tail -1
done
runs=()
for algo in prorl reinforce grpo prorl-no-centering prorl-no-psae; do runs+=(--run "$algo=$OUT/$algo"); done
$P report "${runs[@]}" --results "$OUT/eval-validation/results.json" --results "$OUT/eval-test/results.json" --title "ML-100K: ProRL and the estimators it fixes" --out "$OUT"
