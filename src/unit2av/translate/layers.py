"""The layers of fairseq's BART/mBART transformer (inference): attention, encoder and decoder layers.

Semantics (fairseq, eval mode): attention q = q_proj(x) * head_dim**-0.5, softmax over keys in float32
(``scaled_dot_product_attention`` with scale 1 on the pre-scaled q); FFN ``fc2(act(fc1(x)))``; pre- or
post-LayerNorm residuals. Every projection is a ``unit2av.onednn.Linear``: an ``nn.Linear`` that, after
``pack_``, runs CPU float32 inference on a oneDNN-prepacked weight (the decoder's per-step products
read every weight once per step for a handful of beam rows, where that is 3-4x faster than MKL).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..activations import activation
from ..onednn import Linear, concat_linears, pack, packed_linear


class Attention(nn.Module):
    """fairseq ``MultiheadAttention`` with separate q/k/v/out projections (inference only).

    Args:
        dim: model width. heads: attention heads. kdim: width of the keys/values' input (encoder side).
    """

    def __init__(self, dim: int, heads: int, kdim: int | None = None):
        super().__init__()
        self.heads, self.head_dim = heads, dim // heads
        self.scaling = self.head_dim**-0.5
        self.k_proj = Linear(kdim or dim, dim)
        self.v_proj = Linear(kdim or dim, dim)
        self.q_proj = Linear(dim, dim)
        self.out_proj = Linear(dim, dim)
        self.register_buffer("qkv_weight", None, persistent=False)  # set by fuse_(): q/k/v packed, (3E, E)
        self.register_buffer("qkv_bias", None, persistent=False)
        self.qkv_packed = None  # set by pack_(): oneDNN copy of qkv_weight (a plain attribute, see onednn.Linear)

    def fuse_(self) -> None:
        """Pack the q/k/v projections into one (3E, E) matrix for self-attention; the three
        parameters become views of it (state-dict keys and values unchanged)."""
        self.qkv_weight, self.qkv_bias = concat_linears(self.q_proj, self.k_proj, self.v_proj)

    def pack_(self, rows: int, self_attention: bool) -> None:
        """Prepack the products run at every decoding step for about ``rows`` rows: the fused q/k/v
        (``self_attention``, after ``fuse_``) or the query (encoder-decoder attention), and out_proj."""
        if self_attention and self.qkv_weight is not None:
            self.qkv_packed = pack(self.qkv_weight, rows, self._qkv_parts())
        elif not self_attention:
            self.q_proj.pack_(rows)
        self.out_proj.pack_(rows)

    def _qkv_parts(self) -> tuple[torch.Tensor, ...]:
        """The q/k/v weights (views of ``qkv_weight`` after ``fuse_``, each with its own version counter)."""
        return self.q_proj.weight, self.k_proj.weight, self.v_proj.weight

    def self_qkv(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Scaled queries, keys and values of x (B, T, E): each (B, H, T, Dh)."""
        if self.qkv_weight is None:
            return (self.query(x), *self.keys_values(x))
        w, b, parts = self.qkv_weight, self.qkv_bias, self._qkv_parts()
        q, k, v = packed_linear(x, self.qkv_packed, w, b, parts).chunk(3, dim=-1)
        return self._split(q * self.scaling), self._split(k), self._split(v)

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, E) -> (B, H, T, Dh)."""
        return x.view(x.shape[0], x.shape[1], self.heads, self.head_dim).transpose(1, 2)

    def query(self, x: torch.Tensor) -> torch.Tensor:
        """Scaled queries, (B, T, E) -> (B, H, T, Dh)."""
        return self._split(self.q_proj(x) * self.scaling)

    def keys_values(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, S, E) -> k, v each (B, H, S, Dh)."""
        return self._split(self.k_proj(x)), self._split(self.v_proj(x))

    def attend(self, q, k, v, mask: torch.Tensor | None = None, causal: bool = False) -> torch.Tensor:
        """softmax(q k^T) v then out_proj: q (B, H, T, Dh), k/v (B, H, S, Dh), mask (B, 1, 1, S) bool
        (True = attend) -> (B, T, E)."""
        o = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal, scale=1.0)
        return self.out_proj(o.transpose(1, 2).reshape(q.shape[0], q.shape[2], -1))


class _FFN(nn.Module):
    """Shared pieces of both layer kinds: the FFN and the pre/post-norm residual rule."""

    def _ffn(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))

    def _residual(self, x: torch.Tensor, norm: nn.LayerNorm, fn) -> torch.Tensor:
        if self.normalize_before:
            return x + fn(norm(x))
        return norm(x + fn(x))


class EncoderLayer(_FFN):
    """Self-attention and FFN with fairseq's names (``self_attn``, ``fc1``, ``fc2``, ``*_layer_norm``)."""

    def __init__(self, dim: int, ffn: int, heads: int, normalize_before: bool, act: str):
        super().__init__()
        self.self_attn = Attention(dim, heads)
        self.self_attn_layer_norm = nn.LayerNorm(dim)
        self.fc1, self.fc2 = Linear(dim, ffn), Linear(ffn, dim)
        self.final_layer_norm = nn.LayerNorm(dim)
        self.normalize_before, self.act = normalize_before, activation(act)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """x (B, S, E), mask (B, 1, 1, S) bool or None -> (B, S, E)."""

        def attn(y):
            return self.self_attn.attend(*self.self_attn.self_qkv(y), mask)

        x = self._residual(x, self.self_attn_layer_norm, attn)
        return self._residual(x, self.final_layer_norm, self._ffn)


class DecoderLayer(_FFN):
    """Self-attention, encoder-decoder attention (``encoder_attn``) and FFN with fairseq's names."""

    def __init__(self, dim: int, ffn: int, heads: int, normalize_before: bool, act: str, kdim: int):
        super().__init__()
        self.self_attn = Attention(dim, heads)
        self.self_attn_layer_norm = nn.LayerNorm(dim)
        self.encoder_attn = Attention(dim, heads, kdim)
        self.encoder_attn_layer_norm = nn.LayerNorm(dim)
        self.fc1, self.fc2 = Linear(dim, ffn), Linear(ffn, dim)
        self.final_layer_norm = nn.LayerNorm(dim)
        self.normalize_before, self.act = normalize_before, activation(act)

    def pack_(self, rows: int) -> None:
        """Prepack every product of a decoding step (call after ``fuse_``); see ``Attention.pack_``."""
        self.self_attn.pack_(rows, self_attention=True)
        self.encoder_attn.pack_(rows, self_attention=False)
        self.fc1.pack_(rows)
        self.fc2.pack_(rows)

    def forward(self, x, cross_kv, cross_mask, self_cache=None, step: int = 0) -> torch.Tensor:
        """One layer.

        Args:
            x: (N, T, E) decoder states, N = B * beam (T = 1 with a cache).
            cross_kv: encoder keys/values, each (B, H, S, Dh).
            cross_mask: (B, 1, 1, S) bool (True = real source token) or None.
            self_cache: (k, v) buffers (N, H, Tmax, Dh) to write this step into (incremental), or None
                (the whole prefix is given: causal self-attention).
            step: index of x's position (incremental only).
        """

        def self_attn(y):
            q, k, v = self.self_attn.self_qkv(y)
            if self_cache is None:
                return self.self_attn.attend(q, k, v, causal=y.shape[1] > 1)
            kb, vb = self_cache
            kb[:, :, step : step + 1] = k
            vb[:, :, step : step + 1] = v
            return self.self_attn.attend(q, kb[:, :, : step + 1], vb[:, :, : step + 1])

        def cross_attn(y):
            b = cross_kv[0].shape[0]
            n, t, e = y.shape
            q = self.encoder_attn.query(y.reshape(b, (n // b) * t, e))  # beams as extra queries
            return self.encoder_attn.attend(q, *cross_kv, cross_mask).reshape(n, t, e)

        x = self._residual(x, self.self_attn_layer_norm, self_attn)
        x = self._residual(x, self.encoder_attn_layer_norm, cross_attn)
        return self._residual(x, self.final_layer_norm, self._ffn)


__all__ = ["Attention", "DecoderLayer", "EncoderLayer"]
