"""Speech for rendering: duration prediction on the whole utterance, then chunked vocoding.

The vocoder is fully convolutional, so an utterance can be synthesised in chunks of units, each
with enough context on both sides to cover the generator's receptive field, and the chunks'
centres joined: the result equals one pass over the whole utterance (up to float rounding)
while memory stays that of one chunk, however long the speech.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .config import VocoderConfig
from .model import UnitVocoder

CHUNK_UNITS = 500  # units voiced per vocoder pass (10 s at 50 Hz)
CONV_HALF_WIDTH = 3  # conv_pre / conv_post are kernel-7 convolutions


def receptive_units(cfg: VocoderConfig) -> int:
    """Units of context on each side that the generator's output at one sample can depend on (bound)."""
    total = CONV_HALF_WIDTH  # conv_pre at the unit rate
    rate = 1
    for up, kernel in zip(cfg.upsample_rates, cfg.upsample_kernel_sizes):
        rate *= up
        reach = max(
            (k - 1) // 2 * (sum(d) + len(d)) for k, d in zip(cfg.resblock_kernel_sizes, cfg.resblock_dilation_sizes)
        )
        total += (kernel + reach) / rate  # transposed conv + the stage's widest residual block
    total += CONV_HALF_WIDTH / rate  # conv_post at the sample rate
    return math.ceil(total) + 1


@torch.inference_mode()
def expand_durations(vocoder: UnitVocoder, code: torch.Tensor) -> torch.Tensor:
    """Repeat each unit by its predicted duration.

    Args:
        code: (T,) deduplicated unit ids.

    Returns:
        (T',) expanded ids, T' = sum of durations (each >= 1).
    """
    device = next(vocoder.parameters()).device
    return vocoder.expand_durations(code.view(1, -1).to(device))[1].cpu()


@torch.inference_mode()
def synthesize_chunked(
    vocoder: UnitVocoder,
    code: torch.Tensor,
    spkr: torch.Tensor | None,
    dur_prediction: bool = True,
    chunk_units: int = CHUNK_UNITS,
) -> tuple[np.ndarray, torch.Tensor]:
    """Units -> waveform with bounded memory.

    Args:
        vocoder: eval-mode ``UnitVocoder`` (``vocoder.config`` set).
        code: (T,) unit ids (deduplicated when ``dur_prediction``).
        spkr: (1, 1, embedder_dim) / (1, 1) speaker input, or None.
        dur_prediction: expand units by predicted durations first.
        chunk_units: units voiced per pass.

    Returns:
        ``(wav (T' * code_hop_size,) float32, expanded codes (T',))``.
    """
    codes = expand_durations(vocoder, code) if dur_prediction else code.view(-1).cpu()
    hop = vocoder.hop  # samples per unit
    context = receptive_units(vocoder.config)
    device = next(vocoder.parameters()).device
    spkr = None if spkr is None else spkr.to(device)
    pieces = []
    for start in range(0, codes.numel(), chunk_units):
        end = min(codes.numel(), start + chunk_units)
        lo, hi = max(0, start - context), min(codes.numel(), end + context)
        wav, _ = vocoder(code=codes[lo:hi].view(1, -1).to(device), spkr=spkr)  # (1, 1, (hi - lo) * hop)
        pieces.append(wav.view(-1)[(start - lo) * hop : (end - lo) * hop].float().cpu().numpy())
    return np.concatenate(pieces), codes


__all__ = ["expand_durations", "receptive_units", "synthesize_chunked"]
