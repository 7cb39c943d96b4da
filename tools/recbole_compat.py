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
