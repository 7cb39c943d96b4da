#!/usr/bin/env bash
# Does a simulator agree with the synthetic world's truth about path length?
# For each simulator trained on Data/synthetic, the greedy heuristic's test
# paths (best next item among the 20 most acceptable, by p(target)) are
# scored at one item and at the task's reference length (2.67 items on
# average): the simulator's IoI against the world's true gain.
#
#   [WORLD=Data/synthetic] [CONFIGS="sasrec gru4rec"] tools/experiments/simulator_length.sh TASKS OUT [PRORL]
#
# TASKS: a task directory of the world WORLD (e.g. runs/synthetic/tasks);
# CONFIGS picks simulators from the list below (default: all of them).
# Each simulator trains in seconds; the whole script takes a few minutes.
set -euo pipefail
cd "$(dirname "$0")/../.."
TASKS=${1:?usage: simulator_length.sh TASKS OUT [PRORL]}
OUT=${2:?usage: simulator_length.sh TASKS OUT [PRORL]}
P=${3:-.build/release/prorl}
WORLD=${WORLD:-Data/synthetic}
mkdir -p "$OUT/len1"
cp "$TASKS/catalog.json" "$TASKS/train.jsonl" "$TASKS/validation.jsonl" "$OUT/len1/"
# the same test tasks with a one-item reference path (proc_path is path + target)
python3 -c '
import json, sys
with open(sys.argv[2], "w") as out:
    for line in open(sys.argv[1]):
        t = json.loads(line); t["proc_path"] = [t["proc_path"][0], t["proc_path"][-1]]; out.write(json.dumps(t) + "\n")
' "$TASKS/test.jsonl" "$OUT/len1/test.jsonl"
# NAME FLAGS…
configs=(
  "sasrec:--architecture sasrec"
  "sasrec-b:--architecture sasrec --seed 77 --hidden 96 --layers 3"
  "sasrec-patient:--architecture sasrec --patience 50"
  "sasrec-d0.2:--architecture sasrec --dropout 0.2 --patience 50"
  "gru4rec:--architecture gru4rec --patience 50"
)
printf '| simulator | valid NDCG@10 | greedy, 1 item: IoI | true gain | greedy, reference length: IoI | true gain |\n|---|---:|---:|---:|---:|---:|\n' > "$OUT/summary.md"
for c in "${configs[@]}"; do
  name=${c%%:*}; flags=${c#*:}
  [ -z "${CONFIGS:-}" ] || [[ " $CONFIGS " == *" $name "* ]] || continue
  [ -f "$OUT/$name/simulator.safetensors" ] || $P simulator train --inter "$WORLD/synthetic.inter" --item "$WORLD/synthetic.item" \
      --out "$OUT/$name" --threads 1 $flags > "$OUT/$name.log" 2>&1
  for t in len1:"$OUT/len1" ref:"$TASKS"; do
    [ -f "$OUT/eval-$name-${t%%:*}/results.json" ] || $P eval --simulator "$OUT/$name/simulator.safetensors" --tasks "${t#*:}" --split test \
        --beams 1 --baselines greedy --out "$OUT/eval-$name-${t%%:*}" --threads 1 --world "$WORLD" > "$OUT/eval-$name-${t%%:*}.log" 2>&1
  done
  python3 - "$OUT" "$name" >> "$OUT/summary.md" <<'PY'
import json, sys, re
out, name = sys.argv[1:]
ndcg = re.search(r"best validation: HR@10 \S+  NDCG@10 (\S+)", open(f"{out}/{name}.log").read()).group(1)
def greedy(kind):
    r = json.load(open(f"{out}/eval-{name}-{kind}/results.json"))
    top = [m for m in r["rows"] if m["method"] == "greedy"][0]["top"]
    return top["ioi"], top["truth_gain"]
(i1, g1), (il, gl) = greedy("len1"), greedy("ref")
print(f"| {name} | {ndcg} | {i1:+.4f} | {g1:.4f} | {il:+.4f} | {gl:.4f} |")
PY
done
cat "$OUT/summary.md"
