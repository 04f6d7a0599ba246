"""One rule for picking a device: ``"auto"`` means CUDA when available, else the CPU."""

from __future__ import annotations

import torch

from .errors import fail


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """Turn a user's device choice into a ``torch.device``.

    Args:
        device: ``"auto"`` or ``None`` (CUDA when available, else CPU), or anything ``torch.device``
            accepts (``"cpu"``, ``"cuda"``, ``"cuda:1"``).

    Raises:
        Unit2AVError: an unknown device name, or CUDA asked for on a machine without it.
    """
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError) as e:
        raise fail(None, f"unknown device '{device}'") from e
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise fail(None, f"device '{device}' requested but CUDA is not available")
    return dev
