"""Building blocks of the unit vocoder (``vocoder.model.UnitVocoder``), with their fairseq state-dict names.

Here live HiFi-GAN's residual block (``ResBlock``: ``resblocks.N.convs{1,2}.M``), fairseq's duration
predictor (``DurationPredictor``: ``dur_predictor.{conv1.0,ln1,conv2.0,ln2,proj}``), our f0 predictor
for ``f0_source`` models (``F0Predictor``), the body's leaky-ReLU slope, and two small tensor helpers:
``predicted_durations`` (log-duration to frames) and ``fit_length`` (crop or pad the time axis).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..weightnorm import weight_norm
from .config import DurPredictorParams

LRELU_SLOPE = 0.1  # HiFi-GAN body slope; the activation before conv_post uses torch's default 0.01


def _padding(kernel: int, dilation: int = 1) -> int:
    return (kernel * dilation - dilation) // 2


class ResBlock(nn.Module):
    """HiFi-GAN residual block type 1: pairs (dilated conv, plain conv) with skip connections.

    Shapes: (B, C, T) -> (B, C, T).
    """

    def __init__(self, channels: int, kernel_size: int, dilations: list[int]):
        super().__init__()
        self.convs1 = nn.ModuleList(
            weight_norm(nn.Conv1d(channels, channels, kernel_size, 1, dilation=d, padding=_padding(kernel_size, d)))
            for d in dilations
        )
        self.convs2 = nn.ModuleList(
            weight_norm(nn.Conv1d(channels, channels, kernel_size, 1, dilation=1, padding=_padding(kernel_size)))
            for _ in dilations
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for c1, c2 in zip(self.convs1, self.convs2):
            xt = c2(F.leaky_relu(c1(F.leaky_relu(x, LRELU_SLOPE)), LRELU_SLOPE))
            x = xt + x
        return x


class DurationPredictor(nn.Module):
    """fairseq ``VariancePredictor``: (Conv1d, ReLU, LayerNorm, Dropout) x 2, Linear.

    Predicts log(duration + 1) per unit. Shapes: (B, T, C) -> (B, T).
    """

    def __init__(self, params: DurPredictorParams):
        super().__init__()
        k, h = params.var_pred_kernel_size, params.var_pred_hidden_dim
        # The original hard-codes padding=1 in conv2: (k - 1) // 2 is the same for k = 3 and right otherwise.
        self.conv1 = nn.Sequential(nn.Conv1d(params.encoder_embed_dim, h, k, padding=(k - 1) // 2), nn.ReLU())
        self.ln1 = nn.LayerNorm(h)
        self.conv2 = nn.Sequential(nn.Conv1d(h, h, k, padding=(k - 1) // 2), nn.ReLU())
        self.ln2 = nn.LayerNorm(h)
        self.dropout = nn.Dropout(params.var_pred_dropout)
        self.proj = nn.Linear(h, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.dropout(self.ln1(self.conv1(x.transpose(1, 2)).transpose(1, 2)))  # (B, T, H)
        x = self.dropout(self.ln2(self.conv2(x.transpose(1, 2)).transpose(1, 2)))  # (B, T, H)
        return self.proj(x).squeeze(2)  # (B, T)


class F0Predictor(nn.Module):
    """Frame-level f0 from the generator's input features (units + speaker): log-f0 and a voicing logit.

    Shapes: (B, C, T) -> (B, 2, T). Ours (``f0_source`` configs); fairseq has no counterpart.
    """

    def __init__(self, in_dim: int, hidden: int = 128, kernel: int = 5):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv1d(in_dim, hidden, kernel, padding=kernel // 2),
            nn.LeakyReLU(LRELU_SLOPE),
            nn.Conv1d(hidden, hidden, kernel, padding=kernel // 2),
            nn.LeakyReLU(LRELU_SLOPE),
            nn.Conv1d(hidden, 2, 1),
        )
        with torch.no_grad():
            self.net[-1].bias.copy_(torch.tensor([math.log(150.0), 0.0]))  # start at 150 Hz, undecided voicing

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def predicted_durations(log_dur: torch.Tensor) -> torch.Tensor:
    """Frames per unit from predicted log(d + 1): ``max(1, round(exp(x) - 1))`` (long)."""
    return torch.clamp(torch.round(torch.exp(log_dur) - 1).long(), min=1)


def fit_length(x: torch.Tensor, frames: int) -> torch.Tensor:
    """Crop or pad (repeating the last step) the last dimension of x to ``frames``."""
    n = x.shape[-1]
    if n >= frames:
        return x[..., :frames]
    return torch.cat([x, x[..., -1:].expand(*x.shape[:-1], frames - n)], dim=-1)


__all__ = ["LRELU_SLOPE", "DurationPredictor", "F0Predictor", "ResBlock", "fit_length", "predicted_durations"]
