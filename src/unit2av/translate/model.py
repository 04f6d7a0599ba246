"""fairseq's BART/mBART transformer (encoder-decoder), inference only, with an incremental decoder.

Module and parameter names are fairseq's (``encoder.layers.0.self_attn.q_proj.weight`` ...), so a
checkpoint's state dict loads key for key (see ``translate.checkpoint``). Semantics, as fairseq
computes them in eval mode:

- token embeddings times ``embed_scale`` (sqrt(dim), or 1 with ``no_scale_embedding``) plus learned
  positions whose first real token sits at index padding_idx + 1 = 2; then ``layernorm_embedding``;
- pre- or post-LayerNorm layers (per side); with pre-norm a final ``layer_norm`` after the last layer;
- the layers (attention, FFN) in ``translate.layers``; output projection without bias.

Batches are sentence-major: decoder row ``n = b * beam + k`` is beam ``k`` of sentence ``b``. The
encoder-decoder attention keys/values are computed once per sentence (not per beam): the ``beam``
rows of a sentence attend to them as extra query positions. On the CPU, ``fuse_`` prepacks the
decoder's weights for oneDNN (see ``unit2av.onednn``): one decoding step then reads them 3-4x faster.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from ..onednn import Linear
from .layers import DecoderLayer, EncoderLayer

PAD = 1  # fairseq's padding index: also the positions' padding row


@dataclass
class BartConfig:
    """Sizes and switches of a fairseq BART/mBART model (read from ``cfg.model`` and the weights)."""

    vocab_size: int  # rows of the token embedding table
    encoder_layers: int = 12
    decoder_layers: int = 12
    encoder_embed_dim: int = 1024
    decoder_embed_dim: int = 1024
    encoder_ffn_embed_dim: int = 4096
    decoder_ffn_embed_dim: int = 4096
    encoder_attention_heads: int = 16
    decoder_attention_heads: int = 16
    encoder_normalize_before: bool = True  # pre-norm (mBART); BART-large is post-norm
    decoder_normalize_before: bool = True
    layernorm_embedding: bool = True
    scale_embedding: bool = True  # not no_scale_embedding: multiply token embeddings by sqrt(dim)
    activation_fn: str = "gelu"
    max_source_positions: int = 1024
    max_target_positions: int = 1024
    share_all_embeddings: bool = True  # one token table for encoder, decoder and output projection
    share_decoder_input_output_embed: bool = True


class _Side(nn.Module):
    """Embedding front shared by encoder and decoder: scaled tokens + learned positions (+ LayerNorm)."""

    def _init_side(self, embed_tokens, dim, max_positions, layernorm_embedding, normalize_before, scale):
        self.embed_tokens = embed_tokens
        self.embed_scale = math.sqrt(dim) if scale else 1.0
        self.embed_positions = nn.Embedding(max_positions + PAD + 1, dim, padding_idx=PAD)
        self.layernorm_embedding = nn.LayerNorm(dim) if layernorm_embedding else None
        self.layer_norm = nn.LayerNorm(dim) if normalize_before else None
        self.register_buffer("version", torch.tensor([3.0]))

    def _embed(self, tokens: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        x = self.embed_scale * self.embed_tokens(tokens) + self.embed_positions(positions)
        return self.layernorm_embedding(x) if self.layernorm_embedding is not None else x

    def _final(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer_norm(x) if self.layer_norm is not None else x


class Encoder(_Side):
    def __init__(self, cfg: BartConfig, embed_tokens: nn.Embedding):
        super().__init__()
        d = cfg.encoder_embed_dim
        self._init_side(
            embed_tokens,
            d,
            cfg.max_source_positions,
            cfg.layernorm_embedding,
            cfg.encoder_normalize_before,
            cfg.scale_embedding,
        )
        self.layers = nn.ModuleList(
            EncoderLayer(
                d,
                cfg.encoder_ffn_embed_dim,
                cfg.encoder_attention_heads,
                cfg.encoder_normalize_before,
                cfg.activation_fn,
            )
            for _ in range(cfg.encoder_layers)
        )

    def forward(self, src_tokens: torch.Tensor, pad_mask: torch.Tensor) -> torch.Tensor:
        """src_tokens (B, S) int64, pad_mask (B, S) bool (True at padding) -> (B, S, E)."""
        real = ~pad_mask
        positions = torch.cumsum(real, dim=1) * real + PAD  # first real token at 2, padding at 1
        x = self._embed(src_tokens, positions)
        mask = None
        if bool(pad_mask.any()):
            x = x * real.unsqueeze(-1).to(x.dtype)
            mask = real[:, None, None, :]
        for layer in self.layers:
            x = layer(x, mask)
        return self._final(x)


class Decoder(_Side):
    def __init__(self, cfg: BartConfig, embed_tokens: nn.Embedding):
        super().__init__()
        d = cfg.decoder_embed_dim
        self._init_side(
            embed_tokens,
            d,
            cfg.max_target_positions,
            cfg.layernorm_embedding,
            cfg.decoder_normalize_before,
            cfg.scale_embedding,
        )
        self.layers = nn.ModuleList(
            DecoderLayer(
                d,
                cfg.decoder_ffn_embed_dim,
                cfg.decoder_attention_heads,
                cfg.decoder_normalize_before,
                cfg.activation_fn,
                cfg.encoder_embed_dim,
            )
            for _ in range(cfg.decoder_layers)
        )
        self.output_projection = Linear(d, cfg.vocab_size, bias=False)
        if cfg.share_decoder_input_output_embed:
            self.output_projection.weight = embed_tokens.weight

    def cross_keys_values(self, enc: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Per layer, the encoder-decoder attention keys/values of enc (B, S, E): each (B, H, S, Dh)."""
        return [layer.encoder_attn.keys_values(enc) for layer in self.layers]

    def forward(self, tokens, cross_kv, cross_mask, cache=None, step: int = 0) -> torch.Tensor:
        """Log-probabilities of the next token after each row's last token.

        Args:
            tokens: (N, T) the whole prefix (no cache), or (N, 1) its last token (with a cache).
            cross_kv: ``cross_keys_values`` of the encoder output (per sentence).
            cross_mask: (B, 1, 1, S) bool or None.
            cache: ``DecoderCache`` (incremental decoding) or None.
            step: position of ``tokens``' (last) token; the first decoder input is step 0.

        Returns:
            (N, V) float32 log-softmax.
        """
        t = tokens.shape[1]
        positions = torch.arange(step - t + 1, step + 1, device=tokens.device) + PAD + 1
        x = self._embed(tokens, positions.expand(tokens.shape[0], t))
        for i, layer in enumerate(self.layers):
            x = layer(x, cross_kv[i], cross_mask, None if cache is None else cache.self_kv[i], step)
        x = self._final(x[:, -1])
        return torch.log_softmax(self.output_projection(x).float(), dim=-1)


class BartModel(nn.Module):
    """Encoder + decoder with fairseq's names; ``encoder.embed_tokens`` is shared when the config says so."""

    def __init__(self, cfg: BartConfig):
        super().__init__()
        self.cfg = cfg
        enc_embed = nn.Embedding(cfg.vocab_size, cfg.encoder_embed_dim, padding_idx=PAD)
        dec_embed = (
            enc_embed
            if cfg.share_all_embeddings
            else nn.Embedding(cfg.vocab_size, cfg.decoder_embed_dim, padding_idx=PAD)
        )
        self.encoder = Encoder(cfg, enc_embed)
        self.decoder = Decoder(cfg, dec_embed)

    def fuse_(self, pack_rows: int | None = 8) -> BartModel:
        """Prepare for inference after loading and moving: pack every self-attention's q/k/v projections
        into one product (same numbers), and, for float32 weights on the CPU, prepack the decoder's
        per-step products for oneDNN (``pack_rows``: the typical beam rows; None: do not prepack;
        costs a second copy of the decoder's weights). Returns self."""
        for layer in [*self.encoder.layers, *self.decoder.layers]:
            layer.self_attn.fuse_()
        if pack_rows:
            for layer in self.decoder.layers:
                layer.pack_(pack_rows)
            self.decoder.output_projection.pack_(pack_rows)
        return self

    @property
    def max_decoder_positions(self) -> int:
        return self.cfg.max_target_positions


class DecoderCache:
    """Self-attention keys/values of every decoder layer, preallocated for ``max_steps`` positions.

    Beam reordering copies the filled part once into a spare set of buffers and swaps the two
    (no allocation per step).

    Args:
        model: the decoder's owner. rows: N = B * beam. max_steps: positions to hold.
    """

    def __init__(self, model: BartModel, rows: int, max_steps: int, device, dtype=torch.float32):
        cfg = model.cfg
        h = cfg.decoder_attention_heads
        self._shape = (h, max_steps, cfg.decoder_embed_dim // h)
        self._layers = cfg.decoder_layers
        self.self_kv = self._buffers(rows, device, dtype)  # per layer (k, v), each (N, H, Tmax, Dh)
        self._spare = self._buffers(rows, device, dtype)

    def _buffers(self, rows: int, device, dtype) -> list[tuple[torch.Tensor, torch.Tensor]]:
        return [
            (
                torch.empty((rows, *self._shape), device=device, dtype=dtype),
                torch.empty((rows, *self._shape), device=device, dtype=dtype),
            )
            for _ in range(self._layers)
        ]

    def reorder(self, rows: torch.Tensor, steps: int) -> None:
        """Keep rows ``rows`` (old row indices, one per new row) of the first ``steps`` positions."""
        k0 = self.self_kv[0][0]
        if rows.numel() == k0.shape[0] and bool((rows == torch.arange(rows.numel(), device=rows.device)).all()):
            return
        if self._spare[0][0].shape[0] != rows.numel():  # sentences finished: smaller buffers
            self._spare = self._buffers(rows.numel(), k0.device, k0.dtype)
        for (k, v), (sk, sv) in zip(self.self_kv, self._spare):
            torch.index_select(k[:, :, :steps], 0, rows, out=sk[:, :, :steps])
            torch.index_select(v[:, :, :steps], 0, rows, out=sv[:, :, :steps])
        self.self_kv, self._spare = self._spare, self.self_kv
