#!/usr/bin/env python3
"""Convert a RecBole checkpoint (.pth, as RecBole's trainer saves it) of
SASRec or GRU4Rec into a simulator checkpoint the engine loads. Run by hand;
needs torch, safetensors and recbole (e.g. the venv of
../shared/peers/setup.sh recbole). Tests and CI never run it.

    python3 tools/recbole_to_safetensors.py runs/recbole/GRU4Rec-….pth sim.safetensors

By default the dataset the checkpoint was trained on is rebuilt with RecBole
(from the data_path in the checkpoint's config, or --data-path) to read its
item-id order, and the output carries the engine's metadata (architecture,
config, item ids): every `prorl` command reads it as is. With --bare only the
tensors are written (what `safetensors.torch.save_file(model.state_dict())`
gives); `prorl simulator import --checkpoint … --inter … --time-order
recbole` then adds the metadata from the log.
"""
import argparse
import json

import torch

import recbole_compat  # noqa: F401,E402  (before recbole)
from safetensors.torch import save_file  # noqa: E402


def engine_config(model, cfg, n_items):
    """The engine's config JSON (SASRecConfig / GRU4RecConfig field names)."""
    if model == "SASRec":
        return {"itemVocabulary": n_items, "hidden": cfg["hidden_size"], "heads": cfg["n_heads"],
                "inner": cfg["inner_size"], "layers": cfg["n_layers"], "maxLength": cfg["MAX_ITEM_LIST_LENGTH"],
                "hiddenDropout": cfg["hidden_dropout_prob"], "attentionDropout": cfg["attn_dropout_prob"],
                "layerNormEps": cfg["layer_norm_eps"], "initializerRange": cfg["initializer_range"]}
    if model == "GRU4Rec":
        return {"itemVocabulary": n_items, "embedding": cfg["embedding_size"], "hidden": cfg["hidden_size"],
                "layers": cfg["num_layers"], "maxLength": cfg["MAX_ITEM_LIST_LENGTH"], "dropout": cfg["dropout_prob"]}
    raise SystemExit(f"error: {model} is not an architecture the engine has (SASRec, GRU4Rec)")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("checkpoint", help="RecBole .pth")
    p.add_argument("out", help="safetensors file to write")
    p.add_argument("--bare", action="store_true", help="tensors only, no metadata")
    p.add_argument("--data-path", help="RecBole data_path, if not the one in the checkpoint's config")
    args = p.parse_args()
    ckpt = torch.load(args.checkpoint, map_location="cpu", weights_only=False)
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt:
        raise SystemExit(f"error: {args.checkpoint}: not a RecBole checkpoint (no 'state_dict')")
    tensors = {k: v.detach().float().contiguous() for k, v in ckpt["state_dict"].items()}
    meta = None
    if not args.bare:
        cfg = ckpt["config"]
        model = cfg["model"]
        if args.data_path:
            cfg["data_path"] = args.data_path
        from recbole.data import create_dataset
        dataset = create_dataset(cfg)
        ids = [str(t) for t in dataset.field2id_token[cfg["ITEM_ID_FIELD"]]]
        n_items = tensors["item_embedding.weight"].shape[0]
        if len(ids) != n_items:
            raise SystemExit(f"error: the dataset has {len(ids)} item ids, the item table {n_items} rows")
        meta = {"format": "prorl-simulator", "architecture": model.lower(),
                "config": json.dumps(engine_config(model, cfg, n_items)), "item_ids": json.dumps(ids),
                "converted_from": args.checkpoint}
    save_file(tensors, args.out, metadata=meta)
    print(f"wrote {args.out}: {len(tensors)} tensors" + ("" if args.bare else f", {meta['architecture']}, {len(ids) - 1} items"))


if __name__ == "__main__":
    main()
