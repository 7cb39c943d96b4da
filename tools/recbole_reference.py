#!/usr/bin/env python3
"""Train RecBole's own SASRec or GRU4Rec on a RecBole-format dataset with
the protocol the engine uses, and print its metrics — the reference the
engine's simulators are compared with. Run by hand; needs `pip install
recbole torch` (`../shared/peers/setup.sh recbole` makes such a venv).

    python3 tools/recbole_reference.py --model GRU4Rec --data-path ../shared/data --dataset ml-100k \
        --checkpoint-dir runs/recbole

The trained model is saved by RecBole as a `.pth` in --checkpoint-dir;
`tools/recbole_to_safetensors.py` turns it into a checkpoint the engine loads.

Protocol: leave-one-out by time (last item test, second last validation),
full ranking over all items, HR/NDCG/MRR@10, early stopping on validation
NDCG@10 with patience 10, RecBole's model defaults (SASRec: 2 layers, hidden
64, 2 heads, inner 256, dropout 0.5; GRU4Rec: embedding 64, 1-layer GRU of
128, dropout 0.3), max length 50, CE loss, Adam lr 1e-3, batch 2048.
"""
import argparse
import json
import time

import torch

import recbole_compat  # noqa: F401,E402  (before recbole)

from recbole.quick_start import run_recbole  # noqa: E402


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--data-path", required=True)
    p.add_argument("--dataset", default="ml-100k")
    p.add_argument("--model", default="SASRec", choices=["SASRec", "GRU4Rec"])
    p.add_argument("--checkpoint-dir", default="/tmp/recbole-saved")
    p.add_argument("--epochs", type=int, default=300)
    p.add_argument("--batch-size", type=int, default=2048)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--seed", type=int, default=2020)
    args = p.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    config = {
        "data_path": args.data_path,
        "load_col": {"inter": ["user_id", "item_id", "timestamp"]},
        "eval_args": {"split": {"LS": "valid_and_test"}, "order": "TO", "mode": "full"},
        "metrics": ["Hit", "NDCG", "MRR"],
        "topk": [10],
        "valid_metric": "NDCG@10",
        "stopping_step": 10,
        "epochs": args.epochs,
        "train_batch_size": args.batch_size,
        "train_neg_sample_args": None,
        "seed": args.seed,
        "device": "cpu",
        "show_progress": False,
        "checkpoint_dir": args.checkpoint_dir,
    }
    t0 = time.time()
    result = run_recbole(model=args.model, dataset=args.dataset, config_dict=config)
    print(json.dumps({"model": args.model, "best_valid": {k: float(v) for k, v in result["best_valid_result"].items()},
                      "test": {k: float(v) for k, v in result["test_result"].items()},
                      "seconds": round(time.time() - t0, 1)}))


if __name__ == "__main__":
    main()
