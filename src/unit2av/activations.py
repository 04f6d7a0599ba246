"""fairseq's activation functions by their ``activation_fn`` names (one table for every model family).

``gelu`` is the exact (erf) form; ``gelu_accurate`` and its deprecated alias ``gelu_fast`` are the tanh
approximation; ``swish`` is SiLU; ``linear`` is the identity.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

ACTIVATIONS = {
    "relu": F.relu,
    "gelu": F.gelu,
    "gelu_accurate": lambda x: F.gelu(x, approximate="tanh"),
    "gelu_fast": lambda x: F.gelu(x, approximate="tanh"),
    "tanh": torch.tanh,
    "linear": lambda x: x,
    "swish": F.silu,
}


def activation(name: str):
    """The activation called ``name``; ValueError naming the known ones for any other."""
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation_fn {name!r} ({', '.join(ACTIVATIONS)})")
    return ACTIVATIONS[name]


__all__ = ["ACTIVATIONS", "activation"]
