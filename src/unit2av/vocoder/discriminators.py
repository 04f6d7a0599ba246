"""HiFi-GAN discriminators: multi-period (MPD) and multi-scale (MSD).

Module names follow HiFi-GAN / speech-resynthesis so that their ``do_`` checkpoints load
key for key: ``mpd.discriminators.N.convs.M.weight_g`` / ``weight_v`` (weight norm) and
``msd.discriminators.0.convs.M.weight_orig`` / ``weight_u`` / ``weight_v`` (the first scale
uses spectral norm). ``legacy_state_dict`` writes those names back.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import spectral_norm

from ..weightnorm import to_legacy_keys, weight_norm

LRELU_SLOPE = 0.1  # leaky ReLU slope of every discriminator layer
MPD_PERIODS = (2, 3, 5, 7, 11)  # periods of the multi-period discriminator
MPD_CHANNELS = (32, 128, 512, 1024, 1024)  # output channels of the period convs
MPD_KERNEL, MPD_STRIDE = 5, 3  # period conv kernel and stride along time
# (in, out, kernel, stride, groups) of the scale discriminator's convs
MSD_LAYERS = (
    (1, 128, 15, 1, 1),
    (128, 128, 41, 2, 4),
    (128, 256, 41, 2, 16),
    (256, 512, 41, 4, 16),
    (512, 1024, 41, 4, 16),
    (1024, 1024, 41, 1, 16),
    (1024, 1024, 5, 1, 1),
)
MSD_SCALES = 3  # raw audio, then twice average-pooled
MSD_POOL = (4, 2, 2)  # AvgPool1d kernel, stride, padding between scales

FeatureMaps = list[torch.Tensor]


def _width(channels: int, width: float) -> int:
    """Channels scaled by ``width`` (1.0 = the released size), at least 1."""
    return max(1, round(channels * width))


def _norm(module: nn.Module, spectral: bool) -> nn.Module:
    """Weight norm (parametrization) or legacy spectral norm (``weight_orig/_u/_v`` keys)."""
    return spectral_norm(module) if spectral else weight_norm(module)


class PeriodDiscriminator(nn.Module):
    """Looks at audio folded into ``(T / period, period)`` columns with 2-D convs.

    Args:
        period: folding period in samples.
        spectral: use spectral instead of weight norm.
        width: channel multiplier (1.0 = HiFi-GAN's sizes; smaller only for tests and demos).
    """

    def __init__(self, period: int, spectral: bool = False, width: float = 1.0):
        super().__init__()
        self.period = period
        pad = (MPD_KERNEL - 1) // 2
        chans = (1, *(_width(c, width) for c in MPD_CHANNELS))
        self.convs = nn.ModuleList(
            _norm(
                nn.Conv2d(
                    chans[i],
                    chans[i + 1],
                    (MPD_KERNEL, 1),
                    (MPD_STRIDE if i < len(MPD_CHANNELS) - 1 else 1, 1),
                    padding=(pad, 0),
                ),
                spectral,
            )
            for i in range(len(MPD_CHANNELS))
        )
        self.conv_post = _norm(nn.Conv2d(chans[-1], 1, (3, 1), 1, padding=(1, 0)), spectral)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, FeatureMaps]:
        """Args: x (B, 1, T). Returns: scores (B, N) and the feature map of every layer."""
        b, c, t = x.shape
        if t % self.period:
            n_pad = self.period - t % self.period
            x = F.pad(x, (0, n_pad), "reflect")
            t += n_pad
        x = x.view(b, c, t // self.period, self.period)  # (B, 1, T/p, p)
        return _conv_stack(self.convs, self.conv_post, x)


def _conv_stack(convs: nn.ModuleList, post: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, FeatureMaps]:
    """convs with leaky ReLU, then ``post``; returns flattened scores (B, N) and every layer's output."""
    fmap = []
    for conv in convs:
        x = F.leaky_relu(conv(x), LRELU_SLOPE)
        fmap.append(x)
    x = post(x)
    fmap.append(x)
    return torch.flatten(x, 1, -1), fmap


class ScaleDiscriminator(nn.Module):
    """Strided, grouped 1-D convs over raw (or pooled) audio.

    Args:
        spectral: use spectral instead of weight norm (the first scale does).
        width: channel multiplier (1.0 = HiFi-GAN's sizes); groups shrink to divide the channels.
    """

    def __init__(self, spectral: bool = False, width: float = 1.0):
        super().__init__()
        layers = []
        for i, o, k, s, g in MSD_LAYERS:
            i = 1 if i == 1 else _width(i, width)
            o = _width(o, width)
            layers.append(_norm(nn.Conv1d(i, o, k, s, groups=math.gcd(g, i, o), padding=(k - 1) // 2), spectral))
        self.convs = nn.ModuleList(layers)
        self.conv_post = _norm(nn.Conv1d(_width(MSD_LAYERS[-1][1], width), 1, 3, 1, padding=1), spectral)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, FeatureMaps]:
        """Args: x (B, 1, T). Returns: scores (B, N) and the feature map of every layer."""
        return _conv_stack(self.convs, self.conv_post, x)


DiscOutput = tuple[list[torch.Tensor], list[torch.Tensor], list[FeatureMaps], list[FeatureMaps]]


class MultiPeriodDiscriminator(nn.Module):
    """One ``PeriodDiscriminator`` per period in ``periods`` (``width``: channel multiplier)."""

    def __init__(self, periods: tuple[int, ...] = MPD_PERIODS, width: float = 1.0):
        super().__init__()
        self.discriminators = nn.ModuleList(PeriodDiscriminator(p, width=width) for p in periods)

    def forward(self, y: torch.Tensor, y_hat: torch.Tensor) -> DiscOutput:
        """Args: real y and generated y_hat, (B, 1, T).

        Returns:
            ``(real scores, fake scores, real feature maps, fake feature maps)``, one per discriminator.
        """
        out: DiscOutput = ([], [], [], [])
        for d in self.discriminators:
            (r, fr), (g, fg) = d(y), d(y_hat)
            for lst, v in zip(out, (r, g, fr, fg)):
                lst.append(v)
        return out


class MultiScaleDiscriminator(nn.Module):
    """``scales`` scale discriminators (first with spectral norm), average-pooled in between.

    Args:
        scales: number of scales.
        width: channel multiplier (1.0 = HiFi-GAN's sizes).
    """

    def __init__(self, scales: int = MSD_SCALES, width: float = 1.0):
        super().__init__()
        self.discriminators = nn.ModuleList(ScaleDiscriminator(spectral=i == 0, width=width) for i in range(scales))
        self.meanpools = nn.ModuleList(nn.AvgPool1d(*MSD_POOL) for _ in range(scales - 1))

    def forward(self, y: torch.Tensor, y_hat: torch.Tensor) -> DiscOutput:
        """Args: real y and generated y_hat, (B, 1, T). Returns: as ``MultiPeriodDiscriminator``."""
        out: DiscOutput = ([], [], [], [])
        for i, d in enumerate(self.discriminators):
            if i:
                y, y_hat = self.meanpools[i - 1](y), self.meanpools[i - 1](y_hat)
            (r, fr), (g, fg) = d(y), d(y_hat)
            for lst, v in zip(out, (r, g, fr, fg)):
                lst.append(v)
        return out


def legacy_state_dict(module: nn.Module) -> dict[str, torch.Tensor]:
    """``module.state_dict()`` with weight-norm keys renamed to ``weight_g``/``weight_v`` (CPU tensors).

    Such a state dict loads into HiFi-GAN / speech-resynthesis code and back into ours (the
    parametrization converts legacy keys on load).
    """
    inner = getattr(module, "module", module)  # unwrap DDP
    return {k: v.detach().cpu() for k, v in to_legacy_keys(inner.state_dict()).items()}


__all__ = [
    "MultiPeriodDiscriminator",
    "MultiScaleDiscriminator",
    "PeriodDiscriminator",
    "ScaleDiscriminator",
    "legacy_state_dict",
]
