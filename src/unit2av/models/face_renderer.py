"""AV2AV's FaceRenderer: a Wav2Lip face U-Net driven by speech units instead of mel spectra.

The face encoder, decoder and output block have Wav2Lip's module names and shapes
(``face_encoder_blocks``, ``face_decoder_blocks``, ``output_block``); the audio encoder is
replaced by ``unit_embed`` (an embedding of the unit ids) and ``unit2lip`` (one transformer
encoder layer). State dicts of the released ``video`` entry load key for key.

Time layout: units run at 50 Hz, video at 25 fps. A window is 10 frames and 20 units; the 20
unit embeddings are linearly resampled to 10 (each output is the mean of a pair), mixed by the
transformer, and each frame's 512-vector becomes the U-Net's bottleneck.
"""

from __future__ import annotations

import logging

import torch
import torch.nn.functional as F
from torch import nn

log = logging.getLogger(__name__)

FACE_SIZE = 96  # pixels: the renderer's square input and output size
FRAMES_PER_WINDOW = 10  # video frames per window (0.4 s at 25 fps)
UNITS_PER_FRAME = 2  # 50 Hz units per 25 fps frame
UNITS_PER_WINDOW = FRAMES_PER_WINDOW * UNITS_PER_FRAME
EMBED_DIM = 512  # unit embedding / bottleneck width
NUM_UNITS = 1000  # k-means clusters of the released model
FFN_DIM = 1024  # transformer feed-forward width
NUM_HEADS = 1  # transformer attention heads


class ConvBlock(nn.Module):
    """Conv2d -> BatchNorm2d (-> + input) -> ReLU; Wav2Lip's ``Conv2d`` (keys ``conv_block.0/1``)."""

    def __init__(self, cin: int, cout: int, kernel_size: int, stride: int, padding: int,
                 residual: bool = False):
        super().__init__()
        self.conv_block = nn.Sequential(nn.Conv2d(cin, cout, kernel_size, stride, padding), nn.BatchNorm2d(cout))
        self.residual = residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv_block(x)
        return F.relu(out + x if self.residual else out)


class UpBlock(nn.Module):
    """ConvTranspose2d -> BatchNorm2d -> ReLU; Wav2Lip's ``Conv2dTranspose``."""

    def __init__(self, cin: int, cout: int, kernel_size: int, stride: int, padding: int,
                 output_padding: int = 0):
        super().__init__()
        self.conv_block = nn.Sequential(
            nn.ConvTranspose2d(cin, cout, kernel_size, stride, padding, output_padding), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.conv_block(x))


def _res(ch: int, n: int) -> list[nn.Module]:
    """``n`` residual 3x3 blocks at ``ch`` channels."""
    return [ConvBlock(ch, ch, 3, 1, 1, residual=True) for _ in range(n)]


def _encoder() -> nn.ModuleList:
    """96x96x6 -> 1x1x512 in seven stages (spatial sizes in the comments)."""
    return nn.ModuleList([
        nn.Sequential(ConvBlock(6, 16, 7, 1, 3)),  # 96
        nn.Sequential(ConvBlock(16, 32, 3, 2, 1), *_res(32, 2)),  # 48
        nn.Sequential(ConvBlock(32, 64, 3, 2, 1), *_res(64, 3)),  # 24
        nn.Sequential(ConvBlock(64, 128, 3, 2, 1), *_res(128, 2)),  # 12
        nn.Sequential(ConvBlock(128, 256, 3, 2, 1), *_res(256, 2)),  # 6
        nn.Sequential(ConvBlock(256, 512, 3, 2, 1), *_res(512, 1)),  # 3
        nn.Sequential(ConvBlock(512, 512, 3, 1, 0), ConvBlock(512, 512, 1, 1, 0)),  # 1
    ])


def _decoder() -> nn.ModuleList:
    """Bottleneck 1x1x512 -> 96x96x80; each stage's input is concatenated with the encoder skip."""
    return nn.ModuleList([
        nn.Sequential(ConvBlock(512, 512, 1, 1, 0)),  # 1
        nn.Sequential(UpBlock(1024, 512, 3, 1, 0), *_res(512, 1)),  # 3
        nn.Sequential(UpBlock(1024, 512, 3, 2, 1, 1), *_res(512, 2)),  # 6
        nn.Sequential(UpBlock(768, 384, 3, 2, 1, 1), *_res(384, 2)),  # 12
        nn.Sequential(UpBlock(512, 256, 3, 2, 1, 1), *_res(256, 2)),  # 24
        nn.Sequential(UpBlock(320, 128, 3, 2, 1, 1), *_res(128, 2)),  # 48
        nn.Sequential(UpBlock(160, 64, 3, 2, 1, 1), *_res(64, 2)),  # 96
    ])


class FaceRenderer(nn.Module):
    """Units + masked/reference face windows -> generated faces.

    Args:
        num_embeddings: rows of the unit embedding (1000 for the released model).
    """

    def __init__(self, num_embeddings: int = NUM_UNITS):
        super().__init__()
        self.face_encoder_blocks = _encoder()
        self.unit_embed = nn.Embedding(num_embeddings, EMBED_DIM)
        self.unit2lip = nn.TransformerEncoderLayer(EMBED_DIM, NUM_HEADS, dim_feedforward=FFN_DIM,
                                                   activation="relu", norm_first=False, batch_first=False)
        self.face_decoder_blocks = _decoder()
        self.output_block = nn.Sequential(ConvBlock(80, 32, 3, 1, 1), nn.Conv2d(32, 3, 1, 1, 0), nn.Sigmoid())

    @property
    def num_embeddings(self) -> int:
        return self.unit_embed.num_embeddings

    def unit_features(self, units: torch.Tensor) -> torch.Tensor:
        """Units of each window -> one bottleneck vector per frame.

        Args:
            units: (W, 20) LongTensor, 20 units (50 Hz) for each window of 10 frames.

        Returns:
            (W * 10, 512, 1, 1), window-major.
        """
        emb = self.unit_embed(units)  # (W, 20, 512)
        emb = F.interpolate(emb.transpose(1, 2), scale_factor=1 / UNITS_PER_FRAME, mode="linear")  # (W, 512, 10)
        seq = self.unit2lip(emb.permute(2, 0, 1))  # (10, W, 512), sequence first
        return seq.transpose(0, 1).reshape(-1, EMBED_DIM, 1, 1)  # (W * 10, 512, 1, 1)

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

    def load_released(self, state: dict[str, torch.Tensor]) -> None:
        """Load a released ``video`` state dict; a smaller unit table is grown by copying its last row.

        AV2AV's checkpoints hold 1000 unit rows; a model built for more (e.g. 1024, the vocoder's
        table with special symbols) gets the extra rows as copies of the last one. Every other key
        must match exactly.

        Raises:
            KeyError / RuntimeError: missing, unexpected or mis-shaped keys (callers add the file name).
        """
        state = dict(state)
        table = state.get("unit_embed.weight")
        if table is not None and table.dim() == 2 and table.shape[0] < self.num_embeddings:
            extra = self.num_embeddings - table.shape[0]
            log.info("unit table has %d rows; copying the last row into %d more", table.shape[0], extra)
            state["unit_embed.weight"] = torch.cat([table, table[-1:].expand(extra, -1)], dim=0)
        self.load_state_dict(state, strict=True)


__all__ = ["FACE_SIZE", "FRAMES_PER_WINDOW", "UNITS_PER_FRAME", "UNITS_PER_WINDOW", "FaceRenderer"]
