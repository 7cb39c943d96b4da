#!/usr/bin/env python3
"""Golden fixture for the engine's GRU4Rec: RecBole's own GRU4Rec class with
seeded random weights, a right-padded batch, and what RecBole computes from
them — the gathered sequence output, full-sort scores, the CE loss and the
gradients of that loss. Run by hand (needs torch and recbole from PyPI, e.g.
the venv of ../shared/peers/setup.sh recbole); writes
Tests/Fixtures/gru4rec_golden.safetensors, which the Swift tests read.

    python3 tools/golden_gru4rec.py
"""
import torch

import recbole_compat  # noqa: F401,E402  (before recbole)
from recbole.model.sequential_recommender.gru4rec import GRU4Rec  # noqa: E402

# two stacked layers, so the layer-to-layer path is covered too
N_ITEMS, EMBEDDING, HIDDEN, LAYERS, MAXLEN = 23, 12, 20, 2, 7


class FakeDataset:
    def num(self, field):
        return N_ITEMS


def main():
    torch.manual_seed(11)
    config = {
        "USER_ID_FIELD": "user_id", "ITEM_ID_FIELD": "item_id", "LIST_SUFFIX": "_list",
        "ITEM_LIST_LENGTH_FIELD": "item_length", "NEG_PREFIX": "neg_", "MAX_ITEM_LIST_LENGTH": MAXLEN,
        "device": "cpu", "embedding_size": EMBEDDING, "hidden_size": HIDDEN, "num_layers": LAYERS,
        "dropout_prob": 0.3, "loss_type": "CE",
    }
    model = GRU4Rec(config, FakeDataset())
    # larger random weights than the init, so the gates leave their linear range
    with torch.no_grad():
        for _, p in model.named_parameters():
            p.copy_(0.4 * torch.randn_like(p))
    seqs = [[3, 5, 7, 9, 11, 13, 15], [2, 4, 0, 0, 0, 0, 0], [21, 22, 1, 6, 0, 0, 0], [8, 0, 0, 0, 0, 0, 0],
            [4, 4, 10, 12, 14, 0, 0]]
    lengths = [7, 2, 4, 1, 5]
    targets = [17, 4, 0, 19, 2]
    config_meta = {"n_items": N_ITEMS, "embedding": EMBEDDING, "hidden": HIDDEN, "layers": LAYERS, "max_length": MAXLEN}
    recbole_compat.write_golden(model, seqs, lengths, targets, config_meta,
                                "recbole.model.sequential_recommender.gru4rec.GRU4Rec (RecBole 1.2.1), eval mode", "gru4rec_golden")


if __name__ == "__main__":
    main()
