#!/usr/bin/env bash
# The RL experiment of docs/RESULTS.md: does RL make guidance paths better
# than the pretrained policy, on held-out users, over seeds, under an
# evaluator that did not train them?
#
#   tools/experiments/rl.sh ml100k    [OUT=runs/ml100k]    [STEPS=800] [PROMPTS=64]
#   tools/experiments/rl.sh synthetic [OUT=runs/synthetic] [STEPS=800] [PROMPTS=64]
#   tools/experiments/rl.sh synthetic:DIR [OUT] …   a world `prorl data synth --out DIR` made
#
# ml100k reads ../shared/data/ml-100k (or $PRORL_DATA_DIR/ml-100k); synthetic
# is the engine's own world in Data/synthetic, whose ground truth (true
# acceptance, true gain in target interest) the evaluation also reports.
# Stages (each skipped when its output exists, so a stopped run continues):
#   tasks        every user's windows for training (TASKS_PER_USER draws per
#                user, default 64), EVAL_TASKS_PER_USER (24) per validation /
#                test user (disjoint users)
#   simulators   the training simulator (SASRec, RecBole's setup) and a
#                second SASRec that no policy trains against (other seed,
#                width and depth): the held-out evaluator
#   pretrain     3 seeds, checkpoint selected on validation IoI@1
#   RL           per pretraining seed: the engine's default ProRL, the same
#                with rollouts at temperature 0.5, and the paper-faithful
#                preset (--preset reference); on seed 1 only:
#                REINFORCE, GRPO, ProRL without centering and without
#                position-specific advantages, and REINFORCE on each reward
#                component alone (the paper's Figure 2)
#   eval         validation (selection) and test (read once), K = 1 (and 10
#                on test), under both simulators, of each run's checkpoint
#                selected on validation and of its last one (NAME-last);
#                tools/experiments/summarise.py makes the tables with paired
#                bootstrap intervals
# ABLATIONS=0 skips the single-seed estimators, Figure 2 and the T = 0.5 runs.
# SEEDS: the pretraining seeds (default "1 2 3"; e.g. SEEDS=1 for a quick
# confirmation of seed 1's rows).
# PRORL_BIN: a prorl binary to use instead of building .build/release/prorl
# (a copy keeps a long run safe from rebuilds).
# Threads: each job runs on one core; JOBS jobs run at once (default 2). Every
# RL run has STEPS steps or MINUTES minutes (default 14), whichever ends first.
set -euo pipefail
cd "$(dirname "$0")/../.."
DATASET=${1:?usage: rl.sh ml100k|synthetic [OUT] [STEPS] [PROMPTS]}
OUT=${2:-runs/${DATASET%%:*}}
STEPS=${3:-800}
PROMPTS=${4:-64}
JOBS=${JOBS:-2}
MINUTES=${MINUTES:-14}  # every RL run stops by this wall-clock budget (one core)
ABLATIONS=${ABLATIONS:-1}  # 0: only the pretrained policy, ProRL and the reference preset
SEEDS=${SEEDS:-1 2 3}
case $DATASET in
  ml100k) INTER=${PRORL_DATA_DIR:-../shared/data}/ml-100k/ml-100k.inter; ITEM=${INTER%.inter}.item; WORLD=() ;;
  synthetic) INTER=Data/synthetic/synthetic.inter; ITEM=Data/synthetic/synthetic.item; WORLD=(--world Data/synthetic) ;;
  synthetic:*) W=${DATASET#synthetic:}; INTER=$W/synthetic.inter; ITEM=$W/synthetic.item; WORLD=(--world "$W")
     [ -f "$W/world.json" ] || { echo "rl.sh: $W/world.json not found (make it with prorl data synth --out $W)" >&2; exit 2; } ;;
  *) echo "rl.sh: unknown dataset '$DATASET' (ml100k, synthetic or synthetic:DIR)" >&2; exit 2 ;;
esac
P=${PRORL_BIN:-$PWD/.build/release/prorl}
export PRORL_OPENMP=1
[ -n "${PRORL_BIN:-}" ] || swift build -c release --product prorl >/dev/null
mkdir -p "$OUT"
T="$OUT/tasks" SIM="$OUT/simulator/simulator.safetensors" SIMB="$OUT/simulator-b/simulator.safetensors"

# run up to JOBS commands at once; `wait_all` waits for them
running=0
job() {
  local log=$1; shift
  ( "$@" > "$log" 2>&1 || echo "FAILED: $* (see $log)" >&2 ) &
  running=$((running + 1))
  if [ "$running" -ge "$JOBS" ]; then wait -n || true; running=$((running - 1)); fi
}
wait_all() { wait; running=0; }

[ -f "$T/catalog.json" ] || $P data tasks --inter "$INTER" --item "$ITEM" --out "$T" \
    --tasks-per-user "${TASKS_PER_USER:-64}" --evaluation-tasks-per-user "${EVAL_TASKS_PER_USER:-24}"
[ -f "$SIM" ] || job "$OUT/simulator.log" $P simulator train --inter "$INTER" --item "$ITEM" \
    --out "$OUT/simulator" --threads 1
[ -f "$SIMB" ] || job "$OUT/simulator-b.log" $P simulator train --inter "$INTER" --item "$ITEM" \
    --out "$OUT/simulator-b" --seed 77 --hidden 96 --layers 3 --threads 1
wait_all

for s in $SEEDS; do
  [ -f "$OUT/pretrain-s$s/policy-sft.safetensors" ] || job "$OUT/pretrain-s$s.log" $P pretrain --tasks "$T" \
      --out "$OUT/pretrain-s$s" --epochs 8 --seed $((2023 + s)) --select ioi --simulator "$SIM" --threads 1
done
wait_all

# NAME SEED FLAGS…: an RL run from pretraining seed SEED
rl() {
  local name=$1 seed=$2; shift 2
  local dir="$OUT/$name"
  grep -q "best validation" "$dir.log" 2>/dev/null && return 0  # finished (all steps, or its time limit)
  rm -rf "$dir"
  job "$dir.log" $P train --run "$dir" --tasks "$T" --simulator "$SIM" --policy "$OUT/pretrain-s$seed/policy-sft.safetensors" \
      --steps "$STEPS" --prompts-per-step "$PROMPTS" --evaluate-every 50 --time-limit "$MINUTES" --seed $((2024 + seed)) --threads 1 "${WORLD[@]}" "$@"
}
for s in $SEEDS; do
  rl "prorl-s$s" $s --algo prorl
  rl "reference-s$s" $s --algo prorl --preset reference
  if [ "$ABLATIONS" = 1 ]; then rl "prorl-t0.5-s$s" $s --algo prorl --temperature 0.5; fi
done
if [ "$ABLATIONS" = 1 ]; then
  # at T = 0.5, beside prorl-t0.5 (the default when they were measured)
  for algo in reinforce grpo prorl-no-centering prorl-no-psae; do rl "$algo-s1" 1 --algo $algo --temperature 0.5; done
  for w in ctr:1,0,0 ioi:0,1,0 ior:0,0,1; do
    rl "reinforce-${w%%:*}-s1" 1 --algo reinforce --weights "${w#*:}" --temperature 0.5
  done
fi
wait_all

# evaluation: every policy, both splits, both simulators
policies=()
for s in $SEEDS; do
  policies+=(--policy "pretrained-s$s=$OUT/pretrain-s$s/policy-sft.safetensors")
  for name in prorl reference prorl-t0.5; do
    [ -f "$OUT/$name-s$s/policy.safetensors" ] || continue
    policies+=(--policy "$name-s$s=$OUT/$name-s$s/policy.safetensors" --policy "$name-last-s$s=$OUT/$name-s$s/policy-last.safetensors")
  done
done
for name in reinforce grpo prorl-no-centering prorl-no-psae; do
  [ -f "$OUT/$name-s1/policy.safetensors" ] && policies+=(--policy "$name-s1=$OUT/$name-s1/policy.safetensors")
done
# K = 1 everywhere; K = 10 (best of K) on the test split under the training simulator
for split in validation test; do  # checkpoints were selected on validation; test is read once, here
  for sim in simulator simulator-b; do
    beams=1; [ "$split/$sim" = test/simulator ] && beams=1,10
    [ -f "$OUT/eval-$split-$sim/results.json" ] || job "$OUT/eval-$split-$sim.log" $P eval \
        --simulator "$OUT/$sim/simulator.safetensors" --tasks "$T" --split $split "${policies[@]}" --beams $beams \
        --baselines random,popular,greedy,reference --out "$OUT/eval-$split-$sim" --threads 1 "${WORLD[@]}"
  done
done
wait_all
# the paper's Figure 2: REINFORCE on each reward component alone, next to ProRL
runs=(--run "prorl=$OUT/prorl-s1" --run "reference=$OUT/reference-s1")
if [ "$ABLATIONS" = 1 ]; then
  $P report --run "prorl-t0.5=$OUT/prorl-t0.5-s1" --run "reinforce-ctr=$OUT/reinforce-ctr-s1" --run "reinforce-ioi=$OUT/reinforce-ioi-s1" \
      --run "reinforce-ior=$OUT/reinforce-ior-s1" --title "REINFORCE on one reward component, and ProRL" --out "$OUT/figure2" >/dev/null
  runs+=(--run "prorl-t0.5=$OUT/prorl-t0.5-s1" --run "reinforce=$OUT/reinforce-s1" --run "grpo=$OUT/grpo-s1" --run "prorl-no-centering=$OUT/prorl-no-centering-s1"
         --run "prorl-no-psae=$OUT/prorl-no-psae-s1")
fi
$P report "${runs[@]}" --title "Training curves, seed 1" --out "$OUT/curves" >/dev/null
python3 tools/experiments/summarise.py "$OUT" > "$OUT/summary.md"
echo "wrote $OUT/summary.md, $OUT/figure2/training.svg, $OUT/curves/training.svg"
