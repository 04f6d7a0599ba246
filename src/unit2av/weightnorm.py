"""The one weight-norm helper: apply, remove, and translate checkpoint key layouts.

Released checkpoints use the legacy names ``<module>.weight_g`` / ``<module>.weight_v``;
PyTorch's parametrization API names them ``<module>.parametrizations.weight.original0/1``.
We load either (and plain folded ``weight``), and write the legacy names back so that
fairseq / speech-resynthesis / AV2AV can load our checkpoints.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import weight_norm as _weight_norm

_G, _V = ".parametrizations.weight.original0", ".parametrizations.weight.original1"


def weight_norm(module: nn.Module) -> nn.Module:
    """Apply weight norm over dim 0 (HiFi-GAN's choice for Conv1d and ConvTranspose1d)."""
    return _weight_norm(module, name="weight", dim=0)


def remove_weight_norm(model: nn.Module) -> nn.Module:
    """Fold every weight-norm parametrization into a plain ``weight``; safe to call twice."""
    for m in model.modules():
        if parametrize.is_parametrized(m, "weight") and hasattr(m.parametrizations, "weight"):
            parametrize.remove_parametrizations(m, "weight", leave_parametrized=True)
    return model


def to_legacy_keys(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename parametrization keys to ``weight_g`` / ``weight_v`` (the released layout)."""
    out = {}
    for k, v in state.items():
        if k.endswith(_G):
            k = k[: -len(_G)] + ".weight_g"
        elif k.endswith(_V):
            k = k[: -len(_V)] + ".weight_v"
        out[k] = v
    return out


def _norm_except_dim0(w: torch.Tensor) -> torch.Tensor:
    return w.flatten(1).norm(dim=1).view(-1, *([1] * (w.dim() - 1)))


def from_any_keys(state: dict[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    """Translate a checkpoint's weight keys to the layout ``model`` has now.

    Accepts legacy ``weight_g/weight_v``, parametrization ``original0/1`` and folded ``weight``
    keys, whichever way the model currently holds them.
    """
    target = set(model.state_dict().keys())
    out: dict[str, torch.Tensor] = {}
    for k, v in state.items():
        if k in target:
            out[k] = v
            continue
        base = None
        for suffix in (".weight_g", ".weight_v", _G, _V):
            if k.endswith(suffix):
                base, kind = k[: -len(suffix)], "g" if suffix in (".weight_g", _G) else "v"
                break
        if base is not None and base + ".weight" in target:  # model folded: fold g * v / |v|
            if kind == "v":
                g = state.get(base + ".weight_g", state.get(base + _G))
                out[base + ".weight"] = v * (g / _norm_except_dim0(v)) if g is not None else v
            continue
        if base is not None and base + _G in target:
            out[base + (_G if kind == "g" else _V)] = v
            continue
        if k.endswith(".weight") and k[: -len(".weight")] + _G in target:  # folded -> parametrized
            base = k[: -len(".weight")]
            out[base + _G], out[base + _V] = _norm_except_dim0(v), v
            continue
        out[k] = v  # unknown: let load_state_dict report it
    return out
