"""A SyncNet-style unit <-> mouth sync expert (Wav2Lip's ``SyncNet_color`` idea, driven by units).

Two encoders map a window's 20 units (50 Hz) and its 10 mouth crops (the lower halves of the
96x96 faces, stacked on the channel axis) to unit vectors; their cosine similarity says how well
the mouth moves with the units. Trained with binary cross-entropy on ``SCALE * cosine`` logits for
in-sync (label 1) and shifted (label 0) pairs, then used, frozen, as the renderer's sync loss.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..timing import FACE_SIZE, FRAMES_PER_WINDOW

SCALE = 5.0  # logit = SCALE * cosine similarity (cosine 0 = undecided)
UNIT_EMBED = 64  # unit embedding size of the unit encoder


def _conv2d(cin: int, cout: int, stride) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1), nn.BatchNorm2d(cout), nn.ReLU())


class SyncExpert(nn.Module):
    """Units (W, 20) and mouths (W, 30, 48, 96) -> cosine similarity (W,).

    Args:
        num_embeddings: unit vocabulary size.
        dim: size of the shared embedding space.
        channels: width of the first mouth conv layer (doubled at every stride-2 stage, up to ``dim``).
    """

    def __init__(self, num_embeddings: int = 1000, dim: int = 128, channels: int = 16):
        super().__init__()
        self.num_embeddings, self.dim, self.channels = num_embeddings, dim, channels
        self.unit_embed = nn.Embedding(num_embeddings, UNIT_EMBED)
        self.unit_encoder = nn.Sequential(
            nn.Conv1d(UNIT_EMBED, dim, 3, 1, 1),
            nn.ReLU(),  # 20 steps
            nn.Conv1d(dim, dim, 3, 2, 1),
            nn.ReLU(),  # 10 (one per frame)
            nn.Conv1d(dim, dim, 3, 2, 1),
            nn.ReLU(),  # 5
            nn.Conv1d(dim, dim, 5, 1, 0),
        )  # 1
        c = [min(dim, channels * 2**i) for i in range(5)]
        self.mouth_encoder = nn.Sequential(
            _conv2d(3 * FRAMES_PER_WINDOW, c[0], (1, 2)),  # 48 x 48
            _conv2d(c[0], c[1], 2),
            _conv2d(c[1], c[1], 1),  # 24
            _conv2d(c[1], c[2], 2),
            _conv2d(c[2], c[2], 1),  # 12
            _conv2d(c[2], c[3], 2),  # 6
            _conv2d(c[3], c[4], 2),  # 3
            nn.Conv2d(c[4], dim, 3, 1, 0),
        )  # 1

    def config(self) -> dict:
        return {"num_embeddings": self.num_embeddings, "dim": self.dim, "channels": self.channels}

    def embed_units(self, units: torch.Tensor) -> torch.Tensor:
        """(W, 20) long -> (W, dim) unit-norm."""
        h = self.unit_encoder(self.unit_embed(units).transpose(1, 2))  # (W, dim, 1)
        return F.normalize(h.flatten(1), dim=1)

    def embed_mouths(self, mouths: torch.Tensor) -> torch.Tensor:
        """(W, 30, 48, 96) float in [0, 1] -> (W, dim) unit-norm."""
        return F.normalize(self.mouth_encoder(mouths).flatten(1), dim=1)

    def forward(self, units: torch.Tensor, mouths: torch.Tensor) -> torch.Tensor:
        return (self.embed_units(units) * self.embed_mouths(mouths)).sum(dim=1)


def mouth_stack(faces: torch.Tensor) -> torch.Tensor:
    """(W * 10, 3, 96, 96) faces (window-major) -> (W, 30, 48, 96) lower halves stacked per window."""
    lower = faces[:, :, FACE_SIZE // 2 :]  # (W * 10, 3, 48, 96)
    return lower.reshape(-1, FRAMES_PER_WINDOW * 3, *lower.shape[2:])


def sync_loss(cosine: torch.Tensor, in_sync: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy of ``SCALE * cosine`` logits; ``in_sync`` (W,) float 1 / 0."""
    return F.binary_cross_entropy_with_logits(SCALE * cosine, in_sync)


__all__ = ["SCALE", "SyncExpert", "mouth_stack", "sync_loss"]
