#!/usr/bin/env python3
"""Check that a policy checkpoint written by the engine loads in HF
transformers and gives the engine's log-probabilities.

Run by hand (needs torch, transformers, safetensors from PyPI):

    tools/hf_policy_check.py --policy runs/x/policy.safetensors \
        --simulator runs/x/simulator.safetensors --catalog runs/x/tasks/catalog.json \
        --task-file runs/x/tasks/validation.jsonl [--tasks 5]

For each task, `prorl generate --path ... --json` explains the task's
reference path (its tokens and the engine's per-item log-probs); the script
builds T5ForConditionalGeneration from the checkpoint's own config and
tensors (HF names; the tied embeddings appear once, as shared.weight), runs
the same tokens, and compares per-item log-probs. Exits non-zero on a
mismatch.
"""
import argparse
import json
import subprocess
import sys

import torch
from safetensors import safe_open
from safetensors.torch import load_file
from transformers import T5Config, T5ForConditionalGeneration


def hf_model(path):
    with safe_open(path, framework="pt") as f:
        meta = f.metadata()
    c = json.loads(meta["config"])
    cfg = T5Config(
        vocab_size=c["vocabulary"], d_model=c["modelWidth"], d_ff=c["ffWidth"], num_heads=c["heads"],
        d_kv=c["headWidth"], num_layers=c["encoderLayers"], num_decoder_layers=c["decoderLayers"],
        relative_attention_num_buckets=c["buckets"], relative_attention_max_distance=c["maxDistance"],
        dropout_rate=0.0, layer_norm_epsilon=c["layerNormEps"], feed_forward_proj="relu",
        tie_word_embeddings=True, decoder_start_token_id=c["decoderStartToken"], pad_token_id=0,
        eos_token_id=c["eosToken"])
    model = T5ForConditionalGeneration(cfg).eval()
    missing, unexpected = model.load_state_dict(load_file(path), strict=False)
    tied = {"encoder.embed_tokens.weight", "decoder.embed_tokens.weight", "lm_head.weight"}
    if unexpected or set(missing) - tied:
        sys.exit(f"tensor names do not match HF: missing {sorted(set(missing) - tied)}, unexpected {sorted(unexpected)}")
    model.tie_weights()
    return model


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--policy", required=True)
    ap.add_argument("--simulator", required=True)
    ap.add_argument("--catalog", required=True)
    ap.add_argument("--task-file", required=True)
    ap.add_argument("--tasks", type=int, default=5)
    ap.add_argument("--prorl", default=".build/release/prorl")
    args = ap.parse_args()

    model = hf_model(args.policy)
    worst = 0.0
    with open(args.task_file) as f:
        tasks = [json.loads(line) for line, _ in zip(f, range(args.tasks))]
    for t in tasks:
        path, target = t["proc_path"][:-1], t["proc_path"][-1]
        if not path:
            continue
        out = subprocess.run([args.prorl, "generate", "--policy", args.policy, "--simulator", args.simulator,
                              "--catalog", args.catalog, "--history", ",".join(t["inters"]), "--target", target,
                              "--path", ",".join(path), "--json"], check=True, capture_output=True, text=True).stdout
        e = json.loads(out.splitlines()[0])
        enc = torch.tensor([e["encoderTokens"]])
        dec = torch.tensor([e["decoderTokens"]])
        with torch.no_grad():
            logits = model(input_ids=enc, labels=dec).logits
        logp = torch.log_softmax(logits.double(), -1)[0].gather(1, dec[0].unsqueeze(1)).squeeze(1)
        k = (len(e["decoderTokens"]) - 1) // len(path)
        for i, step in enumerate(e["steps"][1:]):
            hf = float(logp[i * k:(i + 1) * k].sum())
            worst = max(worst, abs(hf - step["policyLogProb"]))
    print(f"{len(tasks)} tasks: largest |log p(engine) − log p(HF)| per item = {worst:.2e}")
    sys.exit(0 if worst < 1e-3 else 1)


if __name__ == "__main__":
    main()
