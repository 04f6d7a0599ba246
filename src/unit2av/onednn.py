"""oneDNN matrix products on the CPU (float32 inference), shared by the transformer model families.

PyTorch's ``F.linear`` on the CPU goes to MKL's GEMM. For the products of transformer inference
oneDNN is faster on this project's CPUs: 1.2-1.8x for the mAV-HuBERT encoder's long sequences
(``linear(..., onednn=True)``; about 5 % more with prepacked weights), and for the few rows of a
beam-search decoding step (5 rows, one weight read per step: memory bound) 2.5x with the weights
unpacked and 3.5-4x with the weights *prepacked* once into oneDNN's blocked layout (``pack``,
``Linear``). Same function, float rounding apart (|Δ| ~1e-6 per product).

These go through ``torch.ops.mkldnn`` operators that PyTorch uses internally (``_linear_pointwise``,
``_reorder_linear_weight``); ``available()`` checks they exist, and every caller falls back to
``F.linear`` without them, off the CPU, for other dtypes, or when autograd is recording.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def available() -> bool:
    """True when PyTorch has oneDNN's fused CPU linear (``torch.ops.mkldnn._linear_pointwise``)."""
    try:
        return torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_linear_pointwise")
    except (AttributeError, RuntimeError):
        return False


def packing_available() -> bool:
    """True when oneDNN weight prepacking (``torch.ops.mkldnn._reorder_linear_weight``) exists too."""
    try:
        return available() and hasattr(torch.ops.mkldnn, "_reorder_linear_weight")
    except (AttributeError, RuntimeError):
        return False


def usable(x: torch.Tensor) -> bool:
    """True when a product on ``x`` may run in oneDNN: float32 on the CPU, no gradient wanted."""
    return x.device.type == "cpu" and x.dtype == torch.float32 and not (torch.is_grad_enabled() and x.requires_grad)


def linear(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, gelu: bool = False, onednn: bool = False
) -> torch.Tensor:
    """``x (..., K) -> (..., N)``, optionally followed by exact GELU.

    Args:
        x: input. weight: ``(N, K)`` (dense, or from ``pack`` with ``onednn``).
        bias: ``(N,)`` or None. gelu: apply exact GELU after the product.
        onednn: run the product in oneDNN with the GELU fused into it (CPU float32 inference only).
    """
    if onednn:
        y = torch.ops.mkldnn._linear_pointwise(
            x.reshape(-1, x.shape[-1]),
            weight.detach(),
            None if bias is None else bias.detach(),
            "gelu" if gelu else "none",
            [],
            "none" if gelu else "",
        )
        return y.view(*x.shape[:-1], y.shape[-1])
    y = F.linear(x, weight, bias)
    return F.gelu(y) if gelu else y


class Packed:
    """A weight's oneDNN-prepacked copy (an opaque ``torch._mkldnn`` tensor in the blocked layout).

    It remembers which weight it was made from (storage and version counter): when that weight is
    changed in place (``copy_``, ``load_state_dict``) or replaced, ``of`` packs it again, so the
    copy never goes stale (weights made under ``torch.inference_mode`` have no version counter: for
    them only a replaced storage is noticed). A weight assembled from others (q/k/v packed into one matrix whose parts
    are views with their own version counters) names those parts as ``watch``.

    Args:
        weight: ``(N, K)`` float32 on the CPU. rows: the typical number of input rows (a blocking hint).
        watch: further tensors whose in-place changes also change ``weight``.
    """

    def __init__(self, weight: torch.Tensor, rows: int, watch: tuple[torch.Tensor, ...] = ()):
        self.rows = rows
        self.tensor, self._key = self._pack(weight), self._key_of(weight, watch)

    @staticmethod
    def _key_of(weight: torch.Tensor, watch: tuple[torch.Tensor, ...]) -> tuple[tuple[int, int], ...]:
        # inference tensors (made under torch.inference_mode) have no version counter: storage only
        return tuple((t.data_ptr(), -1 if t.is_inference() else t._version) for t in (weight, *watch))

    def _pack(self, weight: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return torch.ops.mkldnn._reorder_linear_weight(weight.detach(), self.rows)

    def __getstate__(self) -> dict:
        """Copies and pickles leave the opaque tensor out (it has no storage to copy); it is packed again
        from the weight at the first use."""
        return {"rows": self.rows, "tensor": None, "_key": None}

    def of(self, weight: torch.Tensor, watch: tuple[torch.Tensor, ...] = ()) -> torch.Tensor:
        """The packed copy of ``weight`` as it is now (packed again if it or ``watch`` changed since)."""
        key = self._key_of(weight, watch)
        if key != self._key:
            self.tensor, self._key = self._pack(weight), key
        return self.tensor


def pack(weight: torch.Tensor, rows: int, watch: tuple[torch.Tensor, ...] = ()) -> Packed | None:
    """``weight (N, K)`` prepacked for oneDNN, or None where packing is unavailable or the weight is
    not float32 on the CPU.

    Args:
        weight: the dense weight. rows: the typical number of input rows (a blocking hint; any count works).
        watch: see ``Packed``.
    """
    if not (packing_available() and weight.device.type == "cpu" and weight.dtype == torch.float32):
        return None
    return Packed(weight, rows, watch)


def packed_linear(
    x: torch.Tensor,
    packed: Packed | None,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    watch: tuple[torch.Tensor, ...] = (),
    gelu: bool = False,
) -> torch.Tensor:
    """``F.linear(x, weight, bias)``, through ``packed`` (from ``pack(weight, rows, watch)``) when it
    exists, ``weight`` is still on the CPU and ``x`` may use it (``usable``). ``x (..., K) -> (..., N)``.

    ``gelu``: exact GELU after the product (fused into the oneDNN product)."""
    if packed is not None and usable(x) and weight.device.type == "cpu":
        return linear(x, packed.of(weight, watch), bias, gelu=gelu, onednn=True)
    y = F.linear(x, weight, bias)
    return F.gelu(y) if gelu else y


def concat_linears(*linears: nn.Linear) -> tuple[torch.Tensor, torch.Tensor | None]:
    """One ``(sum N_i, K)`` weight (and bias) for several products of the same input (q/k/v).

    The layers' weights and biases become views of the result, so nothing is stored twice and
    their state-dict keys and values stay the same. Call after loading (a later ``load_state_dict``
    writes through the views into the fused weight).
    """
    with torch.no_grad():
        weight = torch.cat([lin.weight for lin in linears]).detach()
        bias = None if linears[0].bias is None else torch.cat([lin.bias for lin in linears]).detach()
    start = 0
    for lin in linears:
        n = lin.weight.shape[0]
        lin.weight.data = weight[start : start + n]
        if bias is not None:
            lin.bias.data = bias[start : start + n]
        start += n
    return weight, bias


class Linear(nn.Linear):
    """``nn.Linear`` (same parameters, same state-dict keys) that can carry a prepacked copy of its weight.

    ``pack_(rows)`` makes the copy (a ``Packed``); it is a plain attribute, not a buffer: it never enters
    a state dict, does not move with ``.to()`` and is used only while the weight is on the CPU and for
    float32 inputs without autograd, so the module behaves as ``nn.Linear`` everywhere else. It follows
    in-place changes of the weight (packed again at the next call) and costs a second copy of the
    weight in memory.
    """

    packed: Packed | None = None

    def pack_(self, rows: int) -> None:
        """Prepack the weight for about ``rows`` input rows (None where packing is unavailable)."""
        self.packed = pack(self.weight, rows)

    def forward(self, x: torch.Tensor, gelu: bool = False) -> torch.Tensor:
        """``x (..., K) -> (..., N)``; ``gelu``: exact GELU after the product (fused when packed)."""
        return packed_linear(x, self.packed, self.weight, self.bias, gelu=gelu)


__all__ = [
    "Linear",
    "Packed",
    "available",
    "concat_linears",
    "linear",
    "pack",
    "packed_linear",
    "packing_available",
    "usable",
]
