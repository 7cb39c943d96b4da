#!/usr/bin/env bash
# Cross-evaluation of the RL experiment (issue 13): the test paths of every
# seed's pretrained, ProRL and reference-preset policies (K = 1) and of the
# baselines, generated once and scored by every simulator at hand — the one
# the policies trained against, the held-out engine SASRec, an engine GRU4Rec
# and RecBole's own GRU4Rec — one results table (with paired intervals to the
# pretrained policy) per evaluator.
#
#   tools/experiments/cross_eval.sh runs/ml100k NAME=CKPT...   (e.g. gru4rec=runs/sasrec/gru-last-b2048/simulator.safetensors)
#
# Needs the outputs of tools/experiments/rl.sh ml100k in OUT.
set -euo pipefail
OUT=${1:?experiment directory (tools/experiments/rl.sh output)}
shift
P=${P:-.build/release/prorl}
evaluators=(--evaluator "simulator-b=$OUT/simulator-b/simulator.safetensors")
for e in "$@"; do evaluators+=(--evaluator "$e"); done
policies=()
for s in 1 2 3; do
  policies+=(--policy "pretrained-s$s=$OUT/pretrain-s$s/policy-sft.safetensors")
  for name in prorl reference; do policies+=(--policy "$name-s$s=$OUT/$name-s$s/policy.safetensors"); done
done
$P eval --simulator "$OUT/simulator/simulator.safetensors" "${evaluators[@]}" --tasks "$OUT/tasks" --split test \
    "${policies[@]}" --beams 1 --baselines random,popular,greedy,reference --out "$OUT/eval-test-cross" --threads "${THREADS:-1}"
