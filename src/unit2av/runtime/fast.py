"""Fast inference paths: the same functions as the eager models, computed with fewer passes over memory.

    from unit2av.runtime.fast import fast_face_renderer, fast_vocoder
    vocoder = fast_vocoder(vocoder)      # still a UnitVocoder: same forward, same outputs (max |Δ| ~1e-7)
    face = fast_face_renderer(face)      # still a FaceRenderer

Backends: ``"folded"`` runs the folded modules of ``unit2av.runtime.fold`` (weight norm and
BatchNorm folded, fewer passes) with the eager layout, ``"torch"`` the same with channels-last
convolutions, ``"eager"`` the model unchanged. Which is fastest depends on the processor, so the
default ``"auto"`` picks among these three by timing them once per machine and model shape
(``unit2av.runtime.calibrate``; cached; ``UNIT2AV_CALIBRATE=0``: ``"folded"``). ``"compile"`` adds
``torch.compile`` (inductor, frozen weights; slow to compile, opt-in) and ``"onnx"`` runs ONNX
Runtime (CPU only); both fall back to ``"torch"`` when unavailable.
"""

from __future__ import annotations

import logging

import torch
from torch import nn

from ..face.model import FACE_CHANNELS, FaceRenderer
from ..timing import FACE_SIZE, FRAMES_PER_WINDOW, UNITS_PER_WINDOW
from ..vocoder.model import UnitVocoder
from . import calibrate
from . import onnx as ort  # ONNX export and ONNX Runtime modules (through the module: tests patch it)
from .fold import FastFaceRenderer, FastGenerator, FastVocoder

log = logging.getLogger(__name__)

BACKENDS = ("auto", "torch", "folded", "compile", "onnx", "eager")  # "eager" = the model unchanged
AUTO_CANDIDATES = ("eager", "folded", "torch")  # what "auto" chooses among (calibrate.BASELINE first)
CALIBRATION_UNITS = 64  # vocoder calibration input: 64 units (1.28 s of speech)


def fast_vocoder(model: UnitVocoder, backend: str = "auto", threads: int | None = None) -> UnitVocoder:
    """An inference-only vocoder computing the same function as ``model`` (eval mode), faster.

    Args:
        model: an eager ``UnitVocoder`` (left unchanged; its weights are copied for the body).
        backend: one of ``BACKENDS``; an unavailable one falls back to ``"torch"`` with a warning.
        threads: CPU threads of an ONNX Runtime session (``None``: torch's current setting).

    Returns:
        A ``UnitVocoder`` (``FastVocoder``) for ``torch.inference_mode()`` use, or ``model`` for ``"eager"``
        (also when ``"auto"`` measured eager fastest).
    """
    backend = _check_backend(backend)
    device = next(model.parameters()).device
    if backend == "auto":
        backend = calibrate.choose(
            "vocoder", model, lambda: _vocoder_candidates(model, device), device, AUTO_CANDIDATES
        )
    if backend == "eager":
        return model
    body: nn.Module = FastGenerator(model, channels_last=backend != "folded").eval()
    example = torch.randn(1, model.conv_pre.in_channels, 8, device=device)  # (B, C, T) for warm-up and export
    if backend == "onnx" and getattr(model, "f0_source", False):
        log.warning("the ONNX body takes no f0 excitation: this f0_source vocoder runs on the torch backend")
    elif backend == "onnx":
        body = _onnx_or(body, lambda: _onnx_vocoder_body(model, threads), device)
    elif backend == "compile":
        body = _compiled_or(body, (example,))
    return FastVocoder(model, body)


def fast_face_renderer(model: FaceRenderer, backend: str = "auto", threads: int | None = None) -> FaceRenderer:
    """An inference-only face renderer computing the same function as ``model`` (eval mode), faster.

    Args:
        model: an eager ``FaceRenderer`` (left unchanged).
        backend: one of ``BACKENDS``; an unavailable one falls back to ``"torch"`` with a warning.
        threads: CPU threads of an ONNX Runtime session (``None``: torch's current setting).

    Returns:
        A ``FaceRenderer`` (``FastFaceRenderer`` or an ONNX one), or ``model`` for ``"eager"`` (also when
        ``"auto"`` measured eager fastest).
    """
    backend = _check_backend(backend)
    device = next(model.parameters()).device
    if backend == "auto":
        backend = calibrate.choose("face", model, lambda: _face_candidates(model, device), device, AUTO_CANDIDATES)
    if backend == "eager":
        return model
    fast: FaceRenderer = FastFaceRenderer(model, channels_last=backend != "folded")
    if backend == "onnx":
        fast = _onnx_or(fast, lambda: _onnx_face(model, threads), device)
    elif backend == "compile":
        units = torch.zeros(1, UNITS_PER_WINDOW, dtype=torch.long, device=device)  # one window of units
        faces = torch.rand(FRAMES_PER_WINDOW, FACE_CHANNELS, FACE_SIZE, FACE_SIZE, device=device)  # its frames
        fast.forward = _compiled_or(fast.forward, (units, faces))
    return fast


# ------------------------------------------------------------------------------ backends
def _check_backend(backend: str) -> str:
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend '{backend}' (choose {', '.join(BACKENDS)})")
    return backend


def _vocoder_candidates(model: UnitVocoder, device: torch.device) -> dict:
    """``AUTO_CANDIDATES`` -> a call of that vocoder body on ``CALIBRATION_UNITS`` frames of random features."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, model.conv_pre.in_channels, CALIBRATION_UNITS, generator=g).to(device)  # (1, C, T)
    folded, last = FastGenerator(model, channels_last=False).eval(), FastGenerator(model).eval()
    return {"eager": lambda: model.generate(x), "folded": lambda: folded(x), "torch": lambda: last(x)}


def _face_candidates(model: FaceRenderer, device: torch.device) -> dict:
    """``AUTO_CANDIDATES`` -> a call of that face renderer on one window (10 frames) of random faces."""
    g = torch.Generator().manual_seed(0)
    units = torch.randint(0, model.num_embeddings, (1, UNITS_PER_WINDOW), generator=g).to(device)  # (1, 20)
    faces = torch.rand(FRAMES_PER_WINDOW, FACE_CHANNELS, FACE_SIZE, FACE_SIZE, generator=g).to(device)  # (10, 6, H, W)
    folded, last = FastFaceRenderer(model, channels_last=False), FastFaceRenderer(model)
    return {
        "eager": lambda: model(units, faces),
        "folded": lambda: folded(units, faces),
        "torch": lambda: last(units, faces),
    }


def _compiled_or(fn, example: tuple):
    """``torch.compile(fn)`` (frozen weights) if it compiles and runs ``example``, else ``fn``."""
    try:
        compiled = torch.compile(fn, options={"freezing": True})
        with torch.inference_mode():
            compiled(*example)
        return compiled
    except Exception as e:  # no C++ compiler, unsupported platform, ...: the eager path still works
        log.warning(
            "torch.compile unavailable (%s: %s); using the folded eager path",
            type(e).__name__,
            str(e).splitlines()[0][:200] if str(e) else "",
        )
        return fn


def _onnx_or(fallback: nn.Module, build, device: torch.device) -> nn.Module:
    """``build()`` (an ONNX Runtime module) on the CPU when onnxruntime is installed, else ``fallback``."""
    if device.type != "cpu":
        log.warning("the onnx backend runs on the CPU only; using the folded torch path on %s", device)
        return fallback
    if not ort.onnxruntime_available():
        log.warning("onnxruntime is not installed (pip install 'unit2av[onnx]'); using the folded torch path")
        return fallback
    return build()


def _onnx_vocoder_body(model: UnitVocoder, threads: int | None) -> nn.Module:
    return ort.OrtModule(ort.vocoder_onnx_bytes(model, body=True), threads)


def _onnx_face(model: FaceRenderer, threads: int | None) -> FaceRenderer:
    return ort.OrtFaceRenderer(model, ort.face_onnx_bytes(model), threads)


__all__ = ["AUTO_CANDIDATES", "BACKENDS", "fast_face_renderer", "fast_vocoder"]
