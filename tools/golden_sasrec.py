#!/usr/bin/env python3
"""Golden fixture for the engine's SASRec: RecBole's own SASRec class with
seeded random weights, a right-padded batch, and what RecBole computes from
them — the gathered sequence output, full-sort scores, the CE loss and the
gradients of that loss. Run by hand (needs torch and recbole from PyPI);
writes Tests/Fixtures/sasrec_golden.safetensors, which the Swift tests read.

    python3 tools/golden_sasrec.py
"""
import torch

import recbole_compat  # noqa: F401,E402  (before recbole)
from recbole.model.sequential_recommender.sasrec import SASRec  # noqa: E402

N_ITEMS, HIDDEN, HEADS, INNER, LAYERS, MAXLEN = 23, 16, 2, 24, 2, 7


class FakeDataset:
    def num(self, field):
        return N_ITEMS


def main():
    torch.manual_seed(7)
    config = {
        "USER_ID_FIELD": "user_id", "ITEM_ID_FIELD": "item_id", "LIST_SUFFIX": "_list",
        "ITEM_LIST_LENGTH_FIELD": "item_length", "NEG_PREFIX": "neg_", "MAX_ITEM_LIST_LENGTH": MAXLEN,
        "device": "cpu", "n_layers": LAYERS, "n_heads": HEADS, "hidden_size": HIDDEN, "inner_size": INNER,
        "hidden_dropout_prob": 0.5, "attn_dropout_prob": 0.5, "hidden_act": "gelu", "layer_norm_eps": 1e-12,
        "initializer_range": 0.02, "loss_type": "CE",
    }
    model = SASRec(config, FakeDataset())
    # larger random weights than the 0.02 init, so every term matters
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "LayerNorm.weight" in name:
                p.copy_(1 + 0.2 * torch.randn_like(p))
            else:
                p.copy_(0.3 * torch.randn_like(p))
    seqs = [[3, 5, 7, 9, 11, 13, 15], [2, 4, 0, 0, 0, 0, 0], [21, 22, 1, 6, 0, 0, 0], [8, 0, 0, 0, 0, 0, 0]]
    lengths = [7, 2, 4, 1]
    targets = [17, 4, 0, 19]
    config_meta = {"n_items": N_ITEMS, "hidden": HIDDEN, "heads": HEADS, "inner": INNER, "layers": LAYERS, "max_length": MAXLEN}
    recbole_compat.write_golden(model, seqs, lengths, targets, config_meta,
                                "recbole.model.sequential_recommender.sasrec.SASRec (RecBole 1.2.1), eval mode", "sasrec_golden")


if __name__ == "__main__":
    main()
