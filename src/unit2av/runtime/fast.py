"""Fast inference paths: the same functions as the eager models, computed with fewer passes over memory.

    from unit2av.runtime.fast import fast_face_renderer, fast_vocoder
    vocoder = fast_vocoder(vocoder)      # still a UnitVocoder: same forward, same outputs (max |Δ| ~1e-7)
    face = fast_face_renderer(face)      # still a FaceRenderer

What the default ``"torch"`` backend does (measured on a 2-core AVX2 CPU, see benchmarks/):
- vocoder: weight norm folded; the three parallel residual blocks of a stage share their first
  leaky ReLU; in-place activations and residual adds; the ``/ num_kernels`` of each stage folded
  into the next convolution's weights (leaky ReLU is positively homogeneous); every Conv1d run as a
  (1, k) Conv2d on channels-last tensors, which oneDNN runs without layout reorders.
- face renderer: BatchNorm folded into the preceding (transposed) convolution, in-place ReLU and
  residual adds, channels-last weights and activations.
``"compile"`` adds ``torch.compile`` (inductor, frozen weights; slow to compile, opt-in) and
``"onnx"`` runs ONNX Runtime (CPU only). Both fall back to ``"torch"`` when unavailable.
"""

from __future__ import annotations

import copy
import logging

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from ..face.model import ConvBlock, FaceRenderer, UpBlock
from ..vocoder.model import LRELU_SLOPE, UnitVocoder, fit_length

log = logging.getLogger(__name__)

BACKENDS = ("auto", "torch", "compile", "onnx", "eager")  # "auto" = "torch"; "eager" = the model unchanged
POST_SLOPE = 0.01  # slope of the activation before conv_post (torch's default, as the original)
# UnitVocoder children that FastGenerator replaces
VOCODER_BODY = ("conv_pre", "ups", "resblocks", "conv_post", "source_downs")
FACE_BODY = ("face_encoder_blocks", "face_decoder_blocks", "output_block")  # FaceRenderer children folded


# ------------------------------------------------------------------------------ vocoder
def _as_2d(conv: nn.Module, scale: float = 1.0) -> nn.Module:
    """A folded Conv1d / ConvTranspose1d as the equivalent (1, k) 2-D layer, weights channels-last.

    Args:
        conv: the layer (with or without weight norm: ``conv.weight`` is the effective weight either way).
        scale: multiply the weight (not the bias) by this.
    """
    with torch.no_grad():
        w = (conv.weight.detach() * scale).unsqueeze(2)  # (out, in, k) -> (out, in, 1, k) (transposed: in, out)
    k, d, p = conv.kernel_size[0], conv.dilation[0], conv.padding[0]
    if isinstance(conv, nn.ConvTranspose1d):
        layer = nn.ConvTranspose2d(conv.in_channels, conv.out_channels, (1, k), (1, conv.stride[0]), (0, p),
                                   (0, conv.output_padding[0]), dilation=(1, d))
    else:
        layer = nn.Conv2d(conv.in_channels, conv.out_channels, (1, k), (1, conv.stride[0]), (0, p), (1, d))
    layer = layer.to(device=w.device, dtype=w.dtype)
    with torch.no_grad():
        layer.weight.copy_(w)
        layer.bias.copy_(conv.bias.detach())
    layer.requires_grad_(False)
    return layer.to(memory_format=torch.channels_last)


class FastGenerator(nn.Module):
    """``UnitVocoder.generate`` (the HiFi-GAN body) with fewer memory passes; the same function.

    Args:
        model: the vocoder whose body to copy (weight norm folded or not; it is not modified: removing
            a parametrization from a deep copy would strip the shared class of the original too).
    """

    def __init__(self, model: UnitVocoder):
        super().__init__()
        k = model.num_kernels
        self.num_kernels = k
        self.conv_pre = _as_2d(model.conv_pre)
        # A stage's input is (sum of K blocks) / K: the 1/K moves into the next layer's weights.
        self.ups = nn.ModuleList(_as_2d(u, 1.0 if i == 0 else 1.0 / k) for i, u in enumerate(model.ups))
        self.blocks = nn.ModuleList(
            nn.ModuleList(nn.ModuleList([_as_2d(c1), _as_2d(c2)]) for c1, c2 in zip(rb.convs1, rb.convs2))
            for rb in model.resblocks)
        self.conv_post = _as_2d(model.conv_post, 1.0 / k)
        self.source_downs = (nn.ModuleList(_as_2d(d) for d in model.source_downs)
                             if getattr(model, "f0_source", False) else None)

    def _stage(self, x: torch.Tensor, blocks: nn.ModuleList) -> torch.Tensor:
        """Sum (not mean) of the parallel residual blocks over x (B, C, 1, T)."""
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
        x = self.conv_pre(x.unsqueeze(2).contiguous(memory_format=torch.channels_last))  # (B, C, 1, T)
        if source is not None:
            source = source.unsqueeze(2).contiguous(memory_format=torch.channels_last)  # (B, 1, 1, T * hop)
        for i, up in enumerate(self.ups):
            x = up(F.leaky_relu(x, LRELU_SLOPE))
            if source is not None:
                x += fit_length(self.source_downs[i](source), x.shape[-1])
            x = self._stage(x, self.blocks[i * self.num_kernels:(i + 1) * self.num_kernels])
        x = torch.tanh_(self.conv_post(F.leaky_relu_(x, POST_SLOPE)))  # (B, 1, 1, T * hop)
        return x.squeeze(2).contiguous()


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


def fast_vocoder(model: UnitVocoder, backend: str = "auto", threads: int | None = None) -> UnitVocoder:
    """An inference-only vocoder computing the same function as ``model`` (eval mode), faster.

    Args:
        model: an eager ``UnitVocoder`` (left unchanged; its weights are copied for the body).
        backend: one of ``BACKENDS``; an unavailable one falls back to ``"torch"`` with a warning.
        threads: CPU threads of an ONNX Runtime session (``None``: torch's current setting).

    Returns:
        A ``UnitVocoder`` (``FastVocoder``) for ``torch.inference_mode()`` use, or ``model`` for ``"eager"``.
    """
    backend = _check_backend(backend)
    if backend == "eager":
        return model
    device = next(model.parameters()).device
    body: nn.Module = FastGenerator(model).eval()
    example = torch.randn(1, model.conv_pre.in_channels, 8, device=device)  # (B, C, T) for warm-up and export
    if backend == "onnx" and getattr(model, "f0_source", False):
        log.warning("the ONNX body takes no f0 excitation: this f0_source vocoder runs on the torch backend")
    elif backend == "onnx":
        body = _onnx_or(body, lambda: _onnx_vocoder_body(model, threads), device)
    elif backend == "compile":
        body = _compiled_or(body, (example,))
    return FastVocoder(model, body)


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
    """A ``FaceRenderer`` with folded BatchNorm and channels-last convolutions; the same function.

    Args:
        model: the eager renderer (not modified; its unit embedding and transformer are shared).
    """

    def __init__(self, model: FaceRenderer):
        nn.Module.__init__(self)
        adopt(self, model, skip=FACE_BODY)
        for name in FACE_BODY:
            setattr(self, name, _fold(getattr(model, name)).to(memory_format=torch.channels_last))
        self.eval()

    def forward(self, units: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
        """(W, 20) units, (W * 10, 6, 96, 96) faces -> (W * 10, 3, 96, 96); see ``FaceRenderer.forward``."""
        if faces.dim() == 4:
            faces = faces.contiguous(memory_format=torch.channels_last)
        return super().forward(units, faces).contiguous()


def fast_face_renderer(model: FaceRenderer, backend: str = "auto", threads: int | None = None) -> FaceRenderer:
    """An inference-only face renderer computing the same function as ``model`` (eval mode), faster.

    Args:
        model: an eager ``FaceRenderer`` (left unchanged).
        backend: one of ``BACKENDS``; an unavailable one falls back to ``"torch"`` with a warning.
        threads: CPU threads of an ONNX Runtime session (``None``: torch's current setting).
    """
    backend = _check_backend(backend)
    if backend == "eager":
        return model
    fast: FaceRenderer = FastFaceRenderer(model)
    device = next(model.parameters()).device
    if backend == "onnx":
        fast = _onnx_or(fast, lambda: _onnx_face(model, threads), device)
    elif backend == "compile":
        units = torch.zeros(1, 20, dtype=torch.long, device=device)  # one window of units
        fast.forward = _compiled_or(fast.forward, (units, torch.rand(10, 6, 96, 96, device=device)))
    return fast


# ------------------------------------------------------------------------------ backends
def _check_backend(backend: str) -> str:
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend '{backend}' (choose {', '.join(BACKENDS)})")
    return "torch" if backend == "auto" else backend


def _compiled_or(fn, example: tuple):
    """``torch.compile(fn)`` (frozen weights) if it compiles and runs ``example``, else ``fn``."""
    try:
        compiled = torch.compile(fn, options={"freezing": True})
        with torch.inference_mode():
            compiled(*example)
        return compiled
    except Exception as e:  # no C++ compiler, unsupported platform, ...: the eager path still works
        log.warning("torch.compile unavailable (%s: %s); using the folded eager path", type(e).__name__,
                    str(e).splitlines()[0][:200] if str(e) else "")
        return fn


def _onnx_or(fallback: nn.Module, build, device: torch.device) -> nn.Module:
    """``build()`` (an ONNX Runtime module) on the CPU when onnxruntime is installed, else ``fallback``."""
    from .onnx import onnxruntime_available

    if device.type != "cpu":
        log.warning("the onnx backend runs on the CPU only; using the folded torch path on %s", device)
        return fallback
    if not onnxruntime_available():
        log.warning("onnxruntime is not installed (pip install 'unit2av[onnx]'); using the folded torch path")
        return fallback
    return build()


def _onnx_vocoder_body(model: UnitVocoder, threads: int | None) -> nn.Module:
    from .onnx import OrtModule, vocoder_onnx_bytes

    return OrtModule(vocoder_onnx_bytes(model, body=True), threads)


def _onnx_face(model: FaceRenderer, threads: int | None) -> FaceRenderer:
    from .onnx import OrtFaceRenderer, face_onnx_bytes

    return OrtFaceRenderer(model, face_onnx_bytes(model), threads)


__all__ = ["BACKENDS", "FastFaceRenderer", "FastGenerator", "FastVocoder", "adopt", "fast_face_renderer",
           "fast_vocoder"]
