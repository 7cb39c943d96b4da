#!/usr/bin/env bash
# The ML-1M pretraining of docs/RESULTS.md: the official ProRL ml-1m
# validation split, split by user into train and validation parts, items as
# their 4-token semantic IDs, then teacher-forced pretraining. (ProRL's ML-1M
# interaction log is not public, so there is no ML-1M simulator and no RL.)
#
#   tools/experiments/ml1m.sh [OUT=runs/ml1m] [EPOCHS=20]
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${1:-runs/ml1m}
EPOCHS=${2:-20}
SPLITS=${PRORL_DATA_DIR:-../shared/data}/prorl-splits/ml-1m
P=.build/release/prorl
export PRORL_OPENMP=1
swift build -c release --product prorl >/dev/null

mkdir -p "$OUT"
[ -f "$OUT/tasks/tokenizer.json" ] || $P data import-splits "$SPLITS/ml-1m.val" --datamaps "$SPLITS/ml-1m.datamaps" \
    --sem-ids "$SPLITS/qwen3-embedding-8b-pca.sem_ids" --out "$OUT/tasks"
[ -f "$OUT/pretrain/policy-sft.safetensors" ] || $P pretrain --tasks "$OUT/tasks" --out "$OUT/pretrain" \
    --tokenizer "tokenizer:$OUT/tasks/tokenizer.json" --epochs "$EPOCHS"
