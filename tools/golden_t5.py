#!/usr/bin/env python3
"""Golden fixture for the engine's T5 policy: HF transformers'
T5ForConditionalGeneration (T5 v1.0: ReLU, tied embeddings) with seeded
random weights, a padded batch, and what HF computes — logits, the
token-mean cross-entropy and every parameter's gradient — plus the relative
position buckets of both directions. Run by hand (needs torch,
transformers, safetensors from PyPI); writes
Tests/Fixtures/t5_golden.safetensors, which the Swift tests read.

    python3 tools/golden_t5.py
"""
import json
import os

import torch
from safetensors.torch import save_file
from transformers import T5Config, T5ForConditionalGeneration
from transformers.models.t5.modeling_t5 import T5Attention

CFG = dict(vocab_size=29, d_model=16, d_ff=24, num_heads=2, d_kv=8, num_layers=2, num_decoder_layers=2,
           relative_attention_num_buckets=8, relative_attention_max_distance=20, dropout_rate=0.0,
           layer_norm_epsilon=1e-6, feed_forward_proj="relu", pad_token_id=0, eos_token_id=28,
           decoder_start_token_id=0, tie_word_embeddings=True)


def main():
    torch.manual_seed(11)
    model = T5ForConditionalGeneration(T5Config(**CFG))
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "layer_norm" in name:
                p.copy_(1 + 0.2 * torch.randn_like(p))
            else:
                p.copy_(0.4 * torch.randn_like(p))
    model.eval()
    enc = [[5, 6, 7, 8, 9, 10, 28], [11, 12, 13, 28, 0, 0, 0], [3, 3, 14, 15, 16, 17, 28]]
    enc_len = [7, 4, 7]
    lab = [[20, 21, 22, 28, -100], [23, 28, -100, -100, -100], [24, 25, 26, 27, 28]]
    input_ids = torch.tensor(enc)
    attention_mask = (torch.arange(7)[None, :] < torch.tensor(enc_len)[:, None]).long()
    labels = torch.tensor(lab)
    out = model(input_ids=input_ids, attention_mask=attention_mask, labels=labels)
    out.loss.backward()
    tensors = {f"weights.{k}": v.detach().clone().contiguous() for k, v in model.state_dict().items()}
    meta = {}
    tensors["logits"] = out.logits.detach().contiguous()
    tensors["loss"] = out.loss.detach().reshape(1)
    for name, p in model.named_parameters():
        if p.grad is not None:
            tensors[f"grad.{name}"] = p.grad.detach().clone().contiguous()
    # constrained beam search: items of 2 semantic codes (codebook 13; token
    # = code + 13·digit + 1, the engine's layout), at most 3 items, as the
    # engine constrains (item boundary: first tokens, plus EOS after one
    # item; inside an item: its continuations; after 3 items: EOS only)
    codes = [(2, 3), (2, 4), (5, 6), (7, 8), (7, 9), (10, 11), (12, 0), (0, 1), (1, 2), (3, 5)]
    items = [(a + 1, b + 14) for a, b in codes]
    eos, max_items = 28, 3

    def allowed(batch_id, prefix):
        gen = prefix.tolist()[1:]
        n_done, rest = divmod(len(gen), 2)
        if rest == 0:
            if n_done >= max_items:
                return [eos]
            return sorted({a for a, _ in items}) + ([eos] if n_done >= 1 else [])
        return sorted({b for a, b in items if a == gen[-1]})

    gen = model.generate(input_ids=input_ids, attention_mask=attention_mask, num_beams=3, num_return_sequences=3,
                         do_sample=False, early_stopping=True, length_penalty=1.0, eos_token_id=eos, pad_token_id=0,
                         max_length=1 + 2 * max_items + 1, prefix_allowed_tokens_fn=allowed,
                         return_dict_in_generate=True, output_scores=True)
    tensors["beam.sequences"] = gen.sequences.to(torch.float32).contiguous()
    tensors["beam.scores"] = gen.sequences_scores.detach().to(torch.float32).contiguous()
    meta["beam_codes"] = json.dumps(codes)
    rel = torch.arange(-150, 151)
    for bidirectional in (True, False):
        b = T5Attention._relative_position_bucket(rel, bidirectional=bidirectional, num_buckets=32, max_distance=128)
        tensors[f"buckets.{'bidirectional' if bidirectional else 'causal'}"] = b.to(torch.float32).contiguous()
    meta.update({"config": json.dumps(CFG), "encoder": json.dumps(enc), "encoder_lengths": json.dumps(enc_len),
                 "labels": json.dumps(lab), "bucket_positions": "-150..150, num_buckets 32, max_distance 128",
                 "source": "transformers.T5ForConditionalGeneration, eval mode"})
    out_path = os.path.join(os.path.dirname(__file__), "..", "Tests", "Fixtures", "t5_golden.safetensors")
    save_file(tensors, out_path, metadata=meta)
    print(f"wrote {out_path}: loss {out.loss.item():.6f}")


if __name__ == "__main__":
    main()
