"""AV2AV's FaceRenderer: a Wav2Lip face U-Net driven by speech units instead of mel spectra.

The face encoder, decoder and output block have Wav2Lip's module names and shapes
(``face_encoder_blocks``, ``face_decoder_blocks``, ``output_block``); the audio encoder is
replaced by ``unit_embed`` (an embedding of the unit ids) and ``unit2lip`` (one transformer
encoder layer). State dicts of the released ``video`` entry load key for key.

Time layout (``unit2av.timing``): units run at 50 Hz, video at 25 fps. A window is 10 frames and
20 units; the 20 unit embeddings are linearly resampled to 10 (each output is the mean of a pair),
mixed by the transformer, and each frame's 512-vector becomes the U-Net's bottleneck. The timing
names are re-exported here for the face modules; they are defined only in ``unit2av.timing``.
"""

from __future__ import annotations

import logging

import torch
import torch.nn.functional as F
from torch import nn

from ..timing import FACE_SIZE, FRAMES_PER_WINDOW, UNITS_PER_FRAME, UNITS_PER_WINDOW

log = logging.getLogger(__name__)

FACE_CHANNELS = 6  # renderer input channels: the masked face and the reference face, BGR each
EMBED_DIM = 512  # unit embedding / bottleneck width of the released model
NUM_UNITS = 1000  # k-means clusters of the released model
FFN_RATIO = 2  # transformer feed-forward width / EMBED_DIM (1024 in the released model)
NUM_HEADS = 1  # transformer attention heads
MIN_CHANNELS = 8  # narrowest conv layer of a scaled-down (width < 512) renderer
# Channels of the released model (width 512); a narrower model scales them by width / 512.
ENCODER_CHANNELS = (16, 32, 64, 128, 256, 512, 512)  # output of each encoder stage (96 ... 1 px)
DECODER_CHANNELS = (512, 512, 512, 384, 256, 128, 64)  # output of each decoder stage (1 ... 96 px)
OUTPUT_CHANNELS = 32  # hidden channels of the output block


class ConvBlock(nn.Module):
    """Conv2d -> BatchNorm2d (-> + input) -> ReLU; Wav2Lip's ``Conv2d`` (keys ``conv_block.0/1``)."""

    def __init__(self, cin: int, cout: int, kernel_size: int, stride: int, padding: int, residual: bool = False):
        super().__init__()
        self.conv_block = nn.Sequential(nn.Conv2d(cin, cout, kernel_size, stride, padding), nn.BatchNorm2d(cout))
        self.residual = residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv_block(x)
        return F.relu(out + x if self.residual else out)


class UpBlock(nn.Module):
    """ConvTranspose2d -> BatchNorm2d -> ReLU; Wav2Lip's ``Conv2dTranspose``."""

    def __init__(self, cin: int, cout: int, kernel_size: int, stride: int, padding: int, output_padding: int = 0):
        super().__init__()
        self.conv_block = nn.Sequential(
            nn.ConvTranspose2d(cin, cout, kernel_size, stride, padding, output_padding), nn.BatchNorm2d(cout)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.conv_block(x))


def _res(ch: int, n: int) -> list[nn.Module]:
    """``n`` residual 3x3 blocks at ``ch`` channels."""
    return [ConvBlock(ch, ch, 3, 1, 1, residual=True) for _ in range(n)]


def scaled(channels: int, width: int) -> int:
    """A released layer's channel count scaled to a renderer of bottleneck ``width`` (identity at 512)."""
    return channels if width == EMBED_DIM else max(MIN_CHANNELS, channels * width // EMBED_DIM)


def _encoder(width: int) -> nn.ModuleList:
    """96x96x6 -> 1x1xC in seven stages (spatial sizes in the comments); C = 512 at width 512."""
    c = [scaled(ch, width) for ch in ENCODER_CHANNELS]
    return nn.ModuleList(
        [
            nn.Sequential(ConvBlock(FACE_CHANNELS, c[0], 7, 1, 3)),  # 96
            nn.Sequential(ConvBlock(c[0], c[1], 3, 2, 1), *_res(c[1], 2)),  # 48
            nn.Sequential(ConvBlock(c[1], c[2], 3, 2, 1), *_res(c[2], 3)),  # 24
            nn.Sequential(ConvBlock(c[2], c[3], 3, 2, 1), *_res(c[3], 2)),  # 12
            nn.Sequential(ConvBlock(c[3], c[4], 3, 2, 1), *_res(c[4], 2)),  # 6
            nn.Sequential(ConvBlock(c[4], c[5], 3, 2, 1), *_res(c[5], 1)),  # 3
            nn.Sequential(ConvBlock(c[5], c[6], 3, 1, 0), ConvBlock(c[6], c[6], 1, 1, 0)),  # 1
        ]
    )


def _decoder(width: int) -> nn.ModuleList:
    """Bottleneck 1x1xwidth -> 96x96; each stage's output is concatenated with the encoder skip."""
    e = [scaled(ch, width) for ch in ENCODER_CHANNELS]
    d = [scaled(ch, width) for ch in DECODER_CHANNELS]
    return nn.ModuleList(
        [
            nn.Sequential(ConvBlock(width, d[0], 1, 1, 0)),  # 1
            nn.Sequential(UpBlock(d[0] + e[6], d[1], 3, 1, 0), *_res(d[1], 1)),  # 3
            nn.Sequential(UpBlock(d[1] + e[5], d[2], 3, 2, 1, 1), *_res(d[2], 2)),  # 6
            nn.Sequential(UpBlock(d[2] + e[4], d[3], 3, 2, 1, 1), *_res(d[3], 2)),  # 12
            nn.Sequential(UpBlock(d[3] + e[3], d[4], 3, 2, 1, 1), *_res(d[4], 2)),  # 24
            nn.Sequential(UpBlock(d[4] + e[2], d[5], 3, 2, 1, 1), *_res(d[5], 2)),  # 48
            nn.Sequential(UpBlock(d[5] + e[1], d[6], 3, 2, 1, 1), *_res(d[6], 2)),  # 96
        ]
    )


class FaceRenderer(nn.Module):
    """Units + masked/reference face windows -> generated faces.

    Args:
        num_embeddings: rows of the unit embedding (1000 for the released model).
        width: unit embedding / bottleneck size; 512 is the released layout (36.1 M parameters),
            smaller values scale every conv layer by ``width / 512`` (128: a 2.3 M-parameter demo model).
    """

    def __init__(self, num_embeddings: int = NUM_UNITS, width: int = EMBED_DIM):
        super().__init__()
        self._build(num_embeddings, width)

    def _build(self, num_embeddings: int, width: int) -> None:
        """(Re)create every layer for a unit table of ``num_embeddings`` rows and bottleneck ``width``."""
        self.width = int(width)
        self.face_encoder_blocks = _encoder(self.width)
        self.unit_embed = nn.Embedding(num_embeddings, self.width)
        self.unit2lip = nn.TransformerEncoderLayer(
            self.width,
            NUM_HEADS,
            dim_feedforward=FFN_RATIO * self.width,
            activation="relu",
            norm_first=False,
            batch_first=False,
        )
        self.face_decoder_blocks = _decoder(self.width)
        skip = scaled(DECODER_CHANNELS[-1], self.width) + scaled(ENCODER_CHANNELS[0], self.width)
        hidden = scaled(OUTPUT_CHANNELS, self.width)
        self.output_block = nn.Sequential(ConvBlock(skip, hidden, 3, 1, 1), nn.Conv2d(hidden, 3, 1, 1, 0), nn.Sigmoid())

    @property
    def num_embeddings(self) -> int:
        return self.unit_embed.num_embeddings

    def unit_features(self, units: torch.Tensor) -> torch.Tensor:
        """Units of each window -> one bottleneck vector per frame.

        Args:
            units: (W, 20) LongTensor, 20 units (50 Hz) for each window of 10 frames.

        Returns:
            (W * 10, C, 1, 1), window-major; C = ``width`` (512 for the released model).
        """
        emb = self.unit_embed(units)  # (W, 20, C)
        emb = F.interpolate(emb.transpose(1, 2), scale_factor=1 / UNITS_PER_FRAME, mode="linear")  # (W, C, 10)
        seq = self.unit2lip(emb.permute(2, 0, 1))  # (10, W, C), sequence first
        return seq.transpose(0, 1).reshape(-1, self.width, 1, 1)  # (W * 10, C, 1, 1)

    def forward(self, units: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
        """Render the mouth for every frame of a batch of windows.

        Args:
            units: (W, 20) LongTensor unit ids.
            faces: (W * 10, 6, 96, 96) float in [0, 1], BGR: channels 0-2 the masked face (lower half
                zero), 3-5 the reference face. (W, 6, 10, 96, 96) is accepted too.

        Returns:
            (W * 10, 3, 96, 96) BGR faces in [0, 1].
        """
        if faces.dim() == 5:  # (W, 6, 10, H, W) -> (W * 10, 6, H, W)
            faces = faces.permute(0, 2, 1, 3, 4).reshape(-1, *faces.shape[1:2], *faces.shape[3:])
        x = self.unit_features(units)
        if x.shape[0] != faces.shape[0]:
            raise ValueError(f"{units.shape[0]} windows of units need {x.shape[0]} faces, got {faces.shape[0]}")
        skips = []
        h = faces
        for block in self.face_encoder_blocks:
            h = block(h)
            skips.append(h)
        for block in self.face_decoder_blocks:
            x = torch.cat((block(x), skips.pop()), dim=1)
        return self.output_block(x)


__all__ = [
    "EMBED_DIM",
    "FACE_CHANNELS",
    "FACE_SIZE",
    "FRAMES_PER_WINDOW",
    "NUM_UNITS",
    "UNITS_PER_FRAME",
    "UNITS_PER_WINDOW",
    "FaceRenderer",
]
