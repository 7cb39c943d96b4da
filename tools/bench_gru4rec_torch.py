#!/usr/bin/env python3
"""PyTorch side of the GRU4Rec training-step benchmark: RecBole 1.2.1's
GRU4Rec layers (embedding 64, dropout 0.3, nn.GRU 64→128 without biases,
dense 128→64, CE over every item with the item table), Adam lr 1e-3, on the
shapes `prorl bench simulator --architecture gru4rec --items N` uses (batch
256 × length 50, random items), last-position and all-position loss. Prints
one JSON line per variant (median of --repeats after --warmup). Run by hand
with a PyTorch venv (../shared/peers/setup.sh), next to the engine's line:

    for n in 1682 3706; do
      .build/release/prorl bench simulator --architecture gru4rec --items $n --repetitions 7
      ../peers-venv/bin/python tools/bench_gru4rec_torch.py --items $n
    done
"""
import argparse
import json
import statistics
import time

import torch
from torch import nn


class GRU4Rec(nn.Module):
    def __init__(self, n_emb, embedding=64, hidden=128):
        super().__init__()
        self.item_embedding = nn.Embedding(n_emb, embedding, padding_idx=0)
        self.emb_dropout = nn.Dropout(0.3)
        self.gru_layers = nn.GRU(embedding, hidden, num_layers=1, bias=False, batch_first=True)
        self.dense = nn.Linear(hidden, embedding)

    def states(self, seq):
        out, _ = self.gru_layers(self.emb_dropout(self.item_embedding(seq)))
        return self.dense(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--items", type=int, default=3706)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--length", type=int, default=50)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: one per core)")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    torch.manual_seed(3)
    B, L, V = args.batch, args.length, args.items + 1
    model = GRU4Rec(V).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    seq = torch.randint(1, V, (B, L))
    last = torch.randint(1, V, (B,))
    every = torch.randint(1, V, (B, L))
    ce = nn.CrossEntropyLoss()
    variants = {
        "last": lambda: ce(model.states(seq)[:, -1] @ model.item_embedding.weight.t(), last),
        "all": lambda: ce((model.states(seq) @ model.item_embedding.weight.t()).reshape(B * L, V), every.reshape(-1)),
    }
    for name, loss_fn in variants.items():
        times = []
        for i in range(args.warmup + args.repeats):
            t0 = time.perf_counter()
            opt.zero_grad(set_to_none=True)
            loss_fn().backward()
            opt.step()
            if i >= args.warmup:
                times.append(1e3 * (time.perf_counter() - t0))
        print(json.dumps({"name": "simulator_train_step", "side": "pytorch",
                          "shape": f"gru4rec, batch {B} × length {L}, {args.items} items, {name}-position loss",
                          "median_ms": round(statistics.median(times), 2), "threads": torch.get_num_threads(),
                          "torch": torch.__version__}))


if __name__ == "__main__":
    main()
