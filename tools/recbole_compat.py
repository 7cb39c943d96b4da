"""What RecBole 1.2.1 needs from newer NumPy and PyTorch: the NumPy 1.x
aliases it uses (np.float_ …) and torch.load without the weights_only
default (its checkpoints hold a Config object). Import before recbole."""
import numpy as np
import torch

for _name, _alias in (("float_", np.float64), ("bool8", np.bool_), ("int_", np.int64), ("unicode_", np.str_),
                      ("complex_", np.complex128), ("object_", np.object_)):
    if not hasattr(np, _name):
        setattr(np, _name, _alias)

_load = torch.load
torch.load = lambda *a, **k: _load(*a, **{**k, "weights_only": False})


def write_golden(model, seqs, lengths, targets, config, source, name):
    """Runs a RecBole sequential model (eval mode: dropout off, autograd on)
    on right-padded `seqs` and writes Tests/Fixtures/NAME.safetensors: its
    state_dict (`weights.*`), the gathered sequence output, the full-sort
    scores, the CE loss and every parameter's gradient (`grad.*`); the config,
    batch and `source` ride in the metadata (what the Swift golden tests read)."""
    import json
    import os

    from safetensors.torch import save_file

    model.eval()
    item_seq = torch.tensor(seqs, dtype=torch.long)
    item_len = torch.tensor(lengths, dtype=torch.long)
    inter = {"item_id_list": item_seq, "item_length": item_len, "item_id": torch.tensor(targets)}
    output = model.forward(item_seq, item_len)
    scores = model.full_sort_predict(inter)
    loss = model.calculate_loss(inter)
    loss.backward()
    tensors = {f"weights.{k}": v.detach().clone().contiguous() for k, v in model.state_dict().items()}
    tensors["output"] = output.detach().contiguous()
    tensors["scores"] = scores.detach().contiguous()
    tensors["loss"] = loss.detach().reshape(1)
    for pname, p in model.named_parameters():
        tensors[f"grad.{pname}"] = p.grad.detach().clone().contiguous()
    meta = {"config": json.dumps(config), "sequences": json.dumps(seqs), "lengths": json.dumps(lengths),
            "targets": json.dumps(targets), "source": source}
    out = os.path.join(os.path.dirname(__file__), "..", "Tests", "Fixtures", f"{name}.safetensors")
    save_file(tensors, out, metadata=meta)
    print(f"wrote {out}: loss {loss.item():.6f}")
