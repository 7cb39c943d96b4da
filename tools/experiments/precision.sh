#!/usr/bin/env bash
# Mixed precision against fp32 on the synthetic world: 3 pretraining seeds
# (3 epochs) and 3 RL seeds (100 steps of 64 × 16) at each precision, one
# core per job, two jobs at a time; then the curves side by side.
#
#   tools/experiments/precision.sh RUNS OUT [PRORL]    (RUNS: rl.sh synthetic's output)
set -euo pipefail
cd "$(dirname "$0")/../.."
RUNS=${1:?usage: precision.sh RUNS OUT [PRORL]}; OUT=${2:?}; P=${3:-.build/release/prorl}
mkdir -p "$OUT"
running=0
job() { "$@" & running=$((running + 1)); if [ "$running" -ge 2 ]; then wait -n; running=$((running - 1)); fi; }
for prec in fp32 bf16; do
  for s in 1 2 3; do
    [ -f "$OUT/pretrain-$prec-s$s/pretrain.jsonl" ] || job sh -c "$P pretrain --tasks $RUNS/tasks --out $OUT/pretrain-$prec-s$s \
        --epochs 3 --seed $((2023 + s)) --precision $prec --threads 1 > $OUT/pretrain-$prec-s$s.log 2>&1"
    [ -f "$OUT/rl-$prec-s$s/policy-last.safetensors" ] || job sh -c "rm -rf $OUT/rl-$prec-s$s; $P train --run $OUT/rl-$prec-s$s \
        --tasks $RUNS/tasks --simulator $RUNS/simulator/simulator.safetensors --policy $RUNS/pretrain-s1/policy-sft.safetensors \
        --steps 100 --prompts-per-step 64 --evaluate-every 25 --seed $((2024 + s)) --precision $prec --threads 1 > $OUT/rl-$prec-s$s.log 2>&1"
  done
done
wait
runs=(); for prec in fp32 bf16; do for s in 1 2 3; do runs+=(--run "$prec-s$s=$OUT/rl-$prec-s$s"); done; done
$P report "${runs[@]}" --title "RL at fp32 and bf16 products, 3 seeds each" --out "$OUT/curves" > /dev/null
python3 - "$OUT" <<'PY'
import json, statistics as st, sys
out = sys.argv[1]
print("| precision | pretraining: valid loss after epochs 1 / 2 / 3 (mean ± std of 3 seeds) | RL: path reward, steps 81–100 | RL: validation IoI at step 100 | RL: s per step |")
print("|---|---|---:|---:|---:|")
for prec in ["fp32", "bf16"]:
    losses = [[json.loads(l)["validation_loss"] for l in open(f"{out}/pretrain-{prec}-s{s}/pretrain.jsonl")] for s in (1, 2, 3)]
    per_epoch = " / ".join(f"{st.mean(e):.4f} ± {st.stdev(e):.4f}" for e in zip(*losses))
    rewards, ioi, secs = [], [], []
    for s in (1, 2, 3):
        m = [json.loads(l) for l in open(f"{out}/rl-{prec}-s{s}/metrics.jsonl")]
        rewards.append(st.mean(x["path_reward"] for x in m[80:]))
        secs.append(st.median(x["seconds"] for x in m[1:]))
        v = [json.loads(l) for l in open(f"{out}/rl-{prec}-s{s}/validation.jsonl")]
        ioi.append([x for x in v if x["step"] == 100][0]["ioi"])
    print(f"| {prec} | {per_epoch} | {st.mean(rewards):.3f} ± {st.stdev(rewards):.3f} | {st.mean(ioi):+.4f} ± {st.stdev(ioi):.4f} | {st.mean(secs):.3f} |")
PY
