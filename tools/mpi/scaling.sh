#!/usr/bin/env bash
# Data-parallel throughput on this machine: RL rollouts/s and pretraining
# samples/s for one process (1 and 2 threads) and mpirun -np 2 (1 thread
# each: the same two cores), on the synthetic world's tasks, simulator and
# pretrained policy (tools/experiments/rl.sh synthetic makes them).
#
#   tools/mpi/scaling.sh RUNS OUT      (RUNS: e.g. runs/synthetic)
set -euo pipefail
cd "$(dirname "$0")/../.."
RUNS=${1:?usage: scaling.sh RUNS OUT}; OUT=${2:?usage: scaling.sh RUNS OUT}
P=$PWD/.build/release/prorl
MPI=(mpirun --oversubscribe --bind-to core -np 2); [ "$(id -u)" = 0 ] && MPI+=(--allow-run-as-root)
mkdir -p "$OUT"; rm -rf "$OUT"/rl-* "$OUT"/pre-*
RL=(train --tasks "$RUNS/tasks" --simulator "$RUNS/simulator/simulator.safetensors" --policy "$RUNS/pretrain-s1/policy-sft.safetensors"
    --steps 12 --prompts-per-step 64 --rollouts 16 --evaluate-every 0 --world Data/synthetic)
PRE=(pretrain --tasks "$RUNS/tasks" --epochs 1 --batch-size 256)
rl_rate() {  # median rollouts/s over steps 2..12
  python3 -c 'import json,sys,statistics; r=[json.loads(l)["rollouts_per_second"] for l in open(sys.argv[1])][1:]; print("%.0f" % statistics.median(r))' "$1/metrics.jsonl"
}
pre_rate() {  # tasks per second of the epoch (its line's seconds: training and the validation loss)
  python3 -c 'import json,sys; e=json.loads(open(sys.argv[1]).readline()); print("%.0f" % (25600 / e["seconds"]))' "$1/pretrain.jsonl"
}
echo "| configuration | RL rollouts/s (64 × 16) | pretraining tasks/s (batch 256) |" > "$OUT/scaling.md"
echo "|---|---:|---:|" >> "$OUT/scaling.md"
for c in "1 process, 1 thread:1:" "1 process, 2 threads:2:" "mpirun -np 2, 1 thread each:1:mpi"; do
  name=${c%%:*}; rest=${c#*:}; threads=${rest%%:*}; mode=${rest#*:}; tag=$(echo "$name" | tr -cd 'a-z0-9')
  launch=(); [ "$mode" = mpi ] && launch=("${MPI[@]}")
  "${launch[@]}" $P "${RL[@]}" --run "$OUT/rl-$tag" --threads "$threads" > "$OUT/rl-$tag.log" 2>&1
  "${launch[@]}" $P "${PRE[@]}" --out "$OUT/pre-$tag" --threads "$threads" > "$OUT/pre-$tag.log" 2>&1
  echo "| $name | $(rl_rate "$OUT/rl-$tag") | $(pre_rate "$OUT/pre-$tag") |" >> "$OUT/scaling.md"
done
for i in 1 2 3; do "${MPI[@]}" $P bench allreduce; done > "$OUT/allreduce.jsonl"
cat "$OUT/scaling.md" "$OUT/allreduce.jsonl"
