"""ONNX export of the vocoder and the face renderer, and ONNX Runtime sessions that run them.

    unit2av export --format onnx --checkpoint unit_av_renderer.pt --lang en --what vocoder --out voc.onnx

Graphs (opset 17, every batch and length axis dynamic):
- ``vocoder``: ``code`` (B, T) int64 [+ ``spkr`` (B, 1, embedder_dim) float32, or (B, 1) int64 ids]
  -> ``wav`` (B, 1, T * hop). Units must already carry their durations (expand them with the
  duration predictor first, e.g. ``unit2av.vocoder.speech.expand_durations``).
- ``vocoder-body``: ``x`` (B, model_in_dim, T) float32 -> ``wav`` (B, 1, T * hop) (``UnitVocoder.generate``).
- ``face``: ``units`` (W, 20) int64 + ``faces`` (W * 10, 6, 96, 96) float32 BGR in [0, 1]
  -> ``out`` (W * 10, 3, 96, 96).
Exports need the ``onnx`` extra (``pip install 'unit2av[onnx]'``: onnx + onnxruntime).
"""

from __future__ import annotations

import copy
import importlib.util
import io
import logging
import os
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..errors import fail
from ..face.checkpoint import load_face_renderer
from ..face.model import FACE_CHANNELS, FaceRenderer
from ..io.safe import write_bytes_atomic
from ..timing import FACE_SIZE, FRAMES_PER_WINDOW, UNITS_PER_WINDOW
from ..vocoder.checkpoint import load_vocoder
from ..vocoder.model import UnitVocoder
from .fold import FACE_BODY, FastGenerator, FastVocoder, adopt

log = logging.getLogger(__name__)

OPSET = 17  # ONNX opset: ONNX Runtime >= 1.17 runs it; the newest the TorchScript exporter handles well
WHAT = ("vocoder", "vocoder-body", "face")  # graphs ``export_checkpoint`` can write
EXAMPLE_UNITS = 12  # units in the tracing example (any length works at run time)


def onnxruntime_available() -> bool:
    """True when ``onnxruntime`` can be imported."""
    return importlib.util.find_spec("onnxruntime") is not None


class VocoderGraph(nn.Module):
    """Units (+ speaker) -> waveform, the traceable part of ``UnitVocoder.forward`` (no duration prediction).

    Args:
        model: an eval-mode vocoder (weight norm folded).
    """

    def __init__(self, model: UnitVocoder):
        super().__init__()
        self.model = model

    def forward(self, code: torch.Tensor, spkr: torch.Tensor | None = None) -> torch.Tensor:
        """code (B, T) int64, spkr (B, 1, D) float / (B, 1) int64 -> (B, 1, T * hop)."""
        return self.model(code=code, spkr=spkr)[0]


class BodyGraph(nn.Module):
    """``UnitVocoder.generate``: (B, model_in_dim, T) -> (B, 1, T * hop)."""

    def __init__(self, model: UnitVocoder):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.generate(x)


def _onnx_bytes(module: nn.Module, args: tuple, inputs: list[str], outputs: list[str], axes: dict) -> bytes:
    """Trace ``module`` on ``args`` (CPU, eval) into an ONNX model held in memory."""
    buf = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # tracer warnings about shape checks and the deprecated exporter
        torch.onnx.export(
            module.eval(),
            args,
            buf,
            dynamo=False,
            opset_version=OPSET,
            input_names=inputs,
            output_names=outputs,
            dynamic_axes=axes,
            do_constant_folding=True,
        )
    return buf.getvalue()


def _cpu_plain(model: UnitVocoder) -> UnitVocoder:
    """An equivalent vocoder on the CPU without weight-norm parametrizations (``model`` is not modified).

    The body is a ``FastGenerator`` (folded weights, the same function); deep-copying ``model`` and
    removing weight norm from the copy would also strip it from the original (they share a class).
    """
    return copy.deepcopy(FastVocoder(model, FastGenerator(model))).cpu().eval()


def vocoder_onnx_bytes(model: UnitVocoder, body: bool = False) -> bytes:
    """ONNX bytes of the vocoder (``code`` [+ ``spkr``] -> ``wav``), or of its body (``x`` -> ``wav``).

    Args:
        model: the vocoder (not modified).
        body: export ``generate`` only.
    """
    if body and model.f0_source:
        raise ValueError("the body graph takes no f0 excitation: export the whole f0_source vocoder")
    model = _cpu_plain(model)
    if body:
        x = torch.randn(1, model.body.conv_pre.in_channels, EXAMPLE_UNITS)  # (B, C, T)
        return _onnx_bytes(
            BodyGraph(model), (x,), ["x"], ["wav"], {"x": {0: "batch", 2: "frames"}, "wav": {0: "batch", 2: "samples"}}
        )
    code = torch.randint(0, model.dict.num_embeddings, (1, EXAMPLE_UNITS))  # (B, T)
    axes = {"code": {0: "batch", 1: "frames"}, "wav": {0: "batch", 2: "samples"}}
    if model.speaker is None:
        return _onnx_bytes(VocoderGraph(model), (code,), ["code"], ["wav"], axes)
    if model.speaker == "id":
        spkr = torch.zeros(1, 1, dtype=torch.long)  # (B, 1) ids
    else:
        spkr = torch.randn(1, 1, model.spkr.in_features)  # (B, 1, D)
    axes["spkr"] = {0: "batch"}
    return _onnx_bytes(VocoderGraph(model), (code, spkr), ["code", "spkr"], ["wav"], axes)


def face_onnx_bytes(model: FaceRenderer) -> bytes:
    """ONNX bytes of the face renderer (``units``, ``faces`` -> ``out``); the model is not modified."""
    model = copy.deepcopy(model).cpu().eval()
    units = torch.randint(0, model.num_embeddings, (1, UNITS_PER_WINDOW))  # (W, 20)
    faces = torch.rand(FRAMES_PER_WINDOW, FACE_CHANNELS, FACE_SIZE, FACE_SIZE)  # (W * 10, 6, 96, 96)
    axes = {"units": {0: "windows"}, "faces": {0: "frames"}, "out": {0: "frames"}}
    return _onnx_bytes(model, (units, faces), ["units", "faces"], ["out"], axes)


def ort_session(model: bytes | str | os.PathLike, threads: int | None = None):
    """An ONNX Runtime CPU session.

    Args:
        model: ONNX bytes or a path.
        threads: intra-op threads (``None``: ``torch.get_num_threads()``, so both libraries agree).
    """
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = int(threads or torch.get_num_threads())
    opts.inter_op_num_threads = 1  # the graphs are chains: no parallel branches worth a second pool
    opts.log_severity_level = 3  # errors only
    source = model if isinstance(model, bytes) else str(model)
    return ort.InferenceSession(source, opts, providers=["CPUExecutionProvider"])


class OrtModule(nn.Module):
    """Runs a one-input ONNX graph (the vocoder body) as a module: tensor in, tensor out (CPU)."""

    def __init__(self, model: bytes | str | os.PathLike, threads: int | None = None):
        super().__init__()
        self.session = ort_session(model, threads)
        self.input = self.session.get_inputs()[0].name

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.session.run(None, {self.input: np.ascontiguousarray(x.detach().cpu().numpy())})[0]
        return torch.from_numpy(out)


class OrtFaceRenderer(FaceRenderer):
    """A ``FaceRenderer`` whose forward runs an ONNX Runtime session (the unit table is kept for checks)."""

    def __init__(self, model: FaceRenderer, onnx: bytes | str | os.PathLike, threads: int | None = None):
        nn.Module.__init__(self)
        adopt(self, model, skip=FACE_BODY + ("unit2lip",))  # the unit table stays: num_embeddings, device
        self.session = ort_session(onnx, threads)

    def forward(self, units: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
        """(W, 20) units, (W * 10, 6, 96, 96) faces -> (W * 10, 3, 96, 96)."""
        if faces.dim() == 5:  # (W, 6, 10, H, W) -> (W * 10, 6, H, W)
            faces = faces.permute(0, 2, 1, 3, 4).reshape(-1, *faces.shape[1:2], *faces.shape[3:])
        feeds = {
            "units": units.detach().cpu().long().numpy(),
            "faces": np.ascontiguousarray(faces.detach().cpu().float().numpy()),
        }
        return torch.from_numpy(self.session.run(None, feeds)[0])


def export_checkpoint(
    checkpoint: str | os.PathLike,
    out: str | os.PathLike,
    what: str = "vocoder",
    config: str | os.PathLike | None = None,
    lang: str | None = None,
) -> Path:
    """Export a checkpoint's vocoder, vocoder body or face renderer to ONNX, written atomically.

    Args:
        checkpoint: ``g_*`` / ``{"generator": sd}`` / AV2AV container (``face`` needs an AV2AV container).
        out: the ``.onnx`` file.
        what: one of ``WHAT``.
        config: vocoder config JSON (default: embedded / beside the checkpoint / AV2AV's).
        lang: language of an AV2AV container's vocoder.

    Raises:
        Unit2AVError: unreadable or unfitting checkpoint, unknown ``what``, missing exporter.
    """
    if what not in WHAT:
        raise fail(None, f"unknown export target '{what}' (choose {', '.join(WHAT)})")
    if importlib.util.find_spec("onnx") is None:
        raise fail(None, "ONNX export needs the onnx package: pip install 'unit2av[onnx]'")
    if what == "face":
        data = face_onnx_bytes(load_face_renderer(checkpoint))
    else:
        model = load_vocoder(checkpoint, config, lang=lang)
        if what == "vocoder-body" and model.f0_source:
            raise fail(
                checkpoint,
                "this vocoder has an f0 excitation (f0_source), which the body graph cannot take: "
                "export the whole vocoder (--what vocoder)",
            )
        data = vocoder_onnx_bytes(model, body=what == "vocoder-body")
    write_bytes_atomic(out, data)
    log.info("wrote %s (%s, %.1f MB)", out, what, len(data) / 2**20)
    return Path(out)


__all__ = [
    "WHAT",
    "OrtFaceRenderer",
    "OrtModule",
    "export_checkpoint",
    "face_onnx_bytes",
    "onnxruntime_available",
    "ort_session",
    "vocoder_onnx_bytes",
]
