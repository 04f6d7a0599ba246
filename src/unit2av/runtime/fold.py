"""Folded inference modules: the same functions as the eager models, computed with fewer passes over memory.

What they do (see benchmarks/):
- vocoder (``FastGenerator``, ``FastVocoder``): weight norm folded; the three parallel residual
  blocks of a stage share their first leaky ReLU; in-place activations and residual adds; the
  ``/ num_kernels`` of each stage folded into the next convolution's weights (leaky ReLU is
  positively homogeneous); with ``channels_last`` every Conv1d runs as a (1, k) Conv2d on
  channels-last tensors (oneDNN runs it without layout reorders), else as the eager ``Conv1d``.
- face renderer (``FastFaceRenderer``): BatchNorm folded into the preceding (transposed)
  convolution, in-place ReLU and residual adds, optionally channels-last weights and activations.

Which layout is faster depends on the CPU (channels-last gained 1.29x on an AVX2 AMD CPU and lost
about 12 % against plain eager on an AVX-512 Intel Xeon), so ``unit2av.runtime.calibrate`` times
them on the machine at first use.

The bottom of ``unit2av.runtime``: ``onnx`` exports through these modules and ``fast`` picks a
backend over both, so imports run fast -> onnx -> fold.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from ..face.model import ConvBlock, FaceRenderer, UpBlock
from ..vocoder.layers import LRELU_SLOPE, fit_length
from ..vocoder.model import UnitVocoder

POST_SLOPE = 0.01  # slope of the activation before conv_post (torch's default, as the original)
# UnitVocoder children that FastGenerator replaces
VOCODER_BODY = ("conv_pre", "ups", "resblocks", "conv_post", "source_downs")
FACE_BODY = ("face_encoder_blocks", "face_decoder_blocks", "output_block")  # FaceRenderer children folded


# ------------------------------------------------------------------------------ vocoder
def _folded(conv: nn.Module, scale: float = 1.0, two_d: bool = True) -> nn.Module:
    """A folded Conv1d / ConvTranspose1d: a plain 1-D copy, or the equivalent (1, k) 2-D layer, channels-last.

    Args:
        conv: the layer (with or without weight norm: ``conv.weight`` is the effective weight either way).
        scale: multiply the weight (not the bias) by this.
        two_d: the (1, k) 2-D layer with channels-last weights (else a plain ``Conv1d`` / ``ConvTranspose1d``).
    """
    with torch.no_grad():
        w = conv.weight.detach() * scale  # (out, in, k) (transposed: in, out, k)
    k, d, p, s = conv.kernel_size[0], conv.dilation[0], conv.padding[0], conv.stride[0]
    transposed = isinstance(conv, nn.ConvTranspose1d)
    if not two_d:
        layer = (
            nn.ConvTranspose1d(conv.in_channels, conv.out_channels, k, s, p, conv.output_padding[0], dilation=d)
            if transposed
            else nn.Conv1d(conv.in_channels, conv.out_channels, k, s, p, d)
        )
    elif transposed:
        layer = nn.ConvTranspose2d(
            conv.in_channels, conv.out_channels, (1, k), (1, s), (0, p), (0, conv.output_padding[0]), dilation=(1, d)
        )
        w = w.unsqueeze(2)  # (in, out, 1, k)
    else:
        layer = nn.Conv2d(conv.in_channels, conv.out_channels, (1, k), (1, s), (0, p), (1, d))
        w = w.unsqueeze(2)  # (out, in, 1, k)
    layer = layer.to(device=w.device, dtype=w.dtype)
    with torch.no_grad():
        layer.weight.copy_(w)
        layer.bias.copy_(conv.bias.detach())
    layer.requires_grad_(False)
    return layer.to(memory_format=torch.channels_last) if two_d else layer


class FastGenerator(nn.Module):
    """``UnitVocoder.generate`` (the HiFi-GAN body) with fewer memory passes; the same function.

    Args:
        model: the vocoder whose body to copy (weight norm folded or not; it is not modified: removing
            a parametrization from a deep copy would strip the shared class of the original too).
        channels_last: run every Conv1d as a (1, k) Conv2d on channels-last tensors (faster on some
            CPUs, slower on others: ``unit2av.runtime.calibrate`` measures); else plain ``Conv1d``
            layers on (B, C, T), the eager model's kernels with fewer passes around them.
    """

    def __init__(self, model: UnitVocoder, channels_last: bool = True):
        super().__init__()
        k = model.num_kernels
        self.num_kernels, self.channels_last = k, channels_last

        def fold(conv, scale=1.0):
            return _folded(conv, scale, channels_last)

        self.conv_pre = fold(model.conv_pre)
        # A stage's input is (sum of K blocks) / K: the 1/K moves into the next layer's weights.
        self.ups = nn.ModuleList(fold(u, 1.0 if i == 0 else 1.0 / k) for i, u in enumerate(model.ups))
        self.blocks = nn.ModuleList(
            nn.ModuleList(nn.ModuleList([fold(c1), fold(c2)]) for c1, c2 in zip(rb.convs1, rb.convs2))
            for rb in model.resblocks
        )
        self.conv_post = fold(model.conv_post, 1.0 / k)
        self.source_downs = (
            nn.ModuleList(fold(d) for d in model.source_downs) if getattr(model, "f0_source", False) else None
        )

    def _stage(self, x: torch.Tensor, blocks: nn.ModuleList) -> torch.Tensor:
        """Sum (not mean) of the parallel residual blocks over x (B, C, 1, T) or (B, C, T)."""
        first = F.leaky_relu(x, LRELU_SLOPE)  # shared by the K blocks
        total = None
        for pairs in blocks:
            y = x
            for j, (c1, c2) in enumerate(pairs):
                t = first if j == 0 else F.leaky_relu(y, LRELU_SLOPE)
                t = c2(F.leaky_relu_(c1(t), LRELU_SLOPE))
                t += y  # t is a fresh tensor: the skip connection in place
                y = t
            if total is None:
                total = y
            else:
                total += y
        return total

    def forward(self, x: torch.Tensor, source: torch.Tensor | None = None) -> torch.Tensor:
        """(B, model_in_dim, T) [+ excitation (B, 1, T * hop)] -> (B, 1, T * hop) in [-1, 1]."""
        if self.channels_last:
            x = x.unsqueeze(2).contiguous(memory_format=torch.channels_last)  # (B, C, 1, T)
            if source is not None:
                source = source.unsqueeze(2).contiguous(memory_format=torch.channels_last)  # (B, 1, 1, T * hop)
        x = self.conv_pre(x)
        for i, up in enumerate(self.ups):
            x = up(F.leaky_relu(x, LRELU_SLOPE))
            if source is not None:
                x += fit_length(self.source_downs[i](source), x.shape[-1])
            x = self._stage(x, self.blocks[i * self.num_kernels : (i + 1) * self.num_kernels])
        x = torch.tanh_(self.conv_post(F.leaky_relu_(x, POST_SLOPE)))  # (B, 1, [1,] T * hop)
        return x.squeeze(2).contiguous() if self.channels_last else x


def adopt(new: nn.Module, model: nn.Module, skip: tuple[str, ...] = ()) -> None:
    """Give ``new`` (a freshly initialised module) ``model``'s plain attributes and its children but ``skip``.

    The children are shared, not copied (inference only); plain attributes are e.g. ``config``,
    ``speaker`` or ``width``, whatever the model class defines.
    """
    for key, value in vars(model).items():
        if not key.startswith("_") and key != "training":
            setattr(new, key, value)
    for name, child in model.named_children():
        if name not in skip:
            setattr(new, name, child)


def _detached_copy(module: nn.Module) -> nn.Module:
    """A deep copy of ``module`` (weights cloned), so folding it leaves the original alone."""
    return copy.deepcopy(module)


class FastVocoder(UnitVocoder):
    """A ``UnitVocoder`` whose ``generate`` runs ``body``; embeddings and duration predictor are shared.

    Args:
        model: the eager vocoder (not modified; its embeddings, speaker projection and duration
            predictor are reused, not copied).
        body: a module computing ``model.generate`` (``FastGenerator``, a compiled or ONNX one).
    """

    def __init__(self, model: UnitVocoder, body: nn.Module):
        nn.Module.__init__(self)
        adopt(self, model, skip=VOCODER_BODY)
        self.body = body
        self.eval()

    def generate(self, x: torch.Tensor, source: torch.Tensor | None = None) -> torch.Tensor:
        """HiFi-GAN body. (B, model_in_dim, T) [+ excitation (B, 1, T * hop)] -> (B, 1, T * hop)."""
        return self.body(x) if source is None else self.body(x, source)


# ------------------------------------------------------------------------------ face renderer
class FoldedConv(nn.Module):
    """A Wav2Lip ``Conv2d`` / ``Conv2dTranspose`` block with BatchNorm folded into its convolution.

    Args:
        block: a ``ConvBlock`` or ``UpBlock`` in eval mode (not modified).
    """

    def __init__(self, block: ConvBlock | UpBlock):
        super().__init__()
        conv, bn = block.conv_block[0], block.conv_block[1]
        self.conv = fuse_conv_bn_eval(conv.eval(), bn.eval(), transpose=isinstance(conv, nn.ConvTranspose2d))
        self.conv.requires_grad_(False)
        self.residual = bool(getattr(block, "residual", False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C_in, H, W) -> (N, C_out, H', W'): relu(conv(x) [+ x])."""
        out = self.conv(x)
        if self.residual:
            out += x  # out is fresh: the residual add in place
        return out.relu_()


def _fold(module: nn.Module) -> nn.Module:
    """A copy of ``module`` with every ConvBlock / UpBlock folded (containers rebuilt, leaves copied)."""
    if isinstance(module, (ConvBlock, UpBlock)):
        return FoldedConv(module)
    if isinstance(module, nn.Sequential):
        return nn.Sequential(*[_fold(m) for m in module])
    if isinstance(module, nn.ModuleList):
        return nn.ModuleList(_fold(m) for m in module)
    return _detached_copy(module).requires_grad_(False)


class FastFaceRenderer(FaceRenderer):
    """A ``FaceRenderer`` with folded BatchNorm (and channels-last convolutions); the same function.

    Args:
        model: the eager renderer (not modified; its unit embedding and transformer are shared).
        channels_last: channels-last weights and activations (else the eager model's NCHW layout).
    """

    def __init__(self, model: FaceRenderer, channels_last: bool = True):
        nn.Module.__init__(self)
        adopt(self, model, skip=FACE_BODY)
        self.channels_last = channels_last
        layout = torch.channels_last if channels_last else torch.contiguous_format
        for name in FACE_BODY:
            setattr(self, name, _fold(getattr(model, name)).to(memory_format=layout))
        self.eval()

    def forward(self, units: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
        """(W, 20) units, (W * 10, 6, 96, 96) faces -> (W * 10, 3, 96, 96); see ``FaceRenderer.forward``."""
        if faces.dim() == 4 and self.channels_last:
            faces = faces.contiguous(memory_format=torch.channels_last)
        return super().forward(units, faces).contiguous()


__all__ = ["FACE_BODY", "VOCODER_BODY", "FastFaceRenderer", "FastGenerator", "FastVocoder", "FoldedConv", "adopt"]
