"""Wav2Lip-style visual-quality discriminator on the mouth half of 96x96 faces."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..timing import FACE_SIZE

SLOPE = 0.2  # LeakyReLU slope


class QualityDiscriminator(nn.Module):
    """(N, 3, 96, 96) faces -> (N,) real/fake logits, judged on the lower half (48 x 96).

    Args:
        channels: width of the first layer (doubled at every stage, up to 8x).
    """

    def __init__(self, channels: int = 32):
        super().__init__()
        self.channels = channels
        c = [channels * min(2**i, 8) for i in range(5)]
        layers, cin = [], 3
        for cout in c:  # 48x96 -> 24x48 -> 12x24 -> 6x12 -> 3x6 -> 2x3
            layers += [nn.utils.spectral_norm(nn.Conv2d(cin, cout, 4, 2, 1)), nn.LeakyReLU(SLOPE)]
            cin = cout
        self.body = nn.Sequential(*layers)
        self.head = nn.Conv2d(cin, 1, 1)

    def forward(self, faces: torch.Tensor) -> torch.Tensor:
        h = self.body(faces[:, :, FACE_SIZE // 2 :])  # (N, C, 1, 3)
        return self.head(h).mean(dim=(1, 2, 3))  # (N,)


def disc_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Discriminator BCE: real -> 1, generated -> 0."""
    return F.binary_cross_entropy_with_logits(
        real_logits, torch.ones_like(real_logits)
    ) + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))


def adversarial_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """Generator's non-saturating loss: generated -> 1."""
    return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))


__all__ = ["QualityDiscriminator", "adversarial_loss", "disc_loss"]
