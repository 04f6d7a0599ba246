"""The commands a job file may name: one ``BatchCommand`` entry per command.

Adding a command to ``unit2av batch`` is one entry in ``COMMANDS``: the Python function (by
import path, so that nothing heavy is imported until a worker runs it), which of its keyword
parameters are input paths (resolved against the job file's folder) and output paths
(resolved against ``--out-dir``), how an output is named when the job leaves it out, and,
optionally, how a worker's model cache feeds the function already-loaded models.
"""

from __future__ import annotations

import importlib
import inspect
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..errors import fail
from ..timing import UNIT_RATE


@dataclass(frozen=True)
class BatchCommand:
    """How ``unit2av batch`` runs one command.

    Args:
        name: the job's ``"command"``.
        function: ``"module:function"`` taking the job's keys as keyword parameters.
        inputs: parameters that are input paths (relative to the job file).
        outputs: parameters that are output paths (relative to ``--out-dir``).
        derive: ``(params) -> file name`` for an output the job leaves out, per output parameter.
        model_params: parameters that choose the models (jobs agreeing on them share a warm worker).
        hidden: parameters a job may not set (filled by the worker, e.g. ``models``).
        models: ``(cache, params) -> extra kwargs`` giving the function already-loaded models.
        summary: ``(returned value) -> dict`` of durations written, for the report.
        output_folders: other paths written (folders, side files; relative to ``--out-dir``) that do
            not mark a job done.
    """

    name: str
    function: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    derive: dict[str, Callable[[dict], str]]
    model_params: tuple[str, ...] = ()
    hidden: tuple[str, ...] = ()
    models: Callable[..., dict] | None = None
    summary: Callable[[object], dict] | None = None
    output_folders: tuple[str, ...] = ()  # other written paths (relative to --out-dir) that do not mark a job done

    def resolve(self) -> Callable:
        """Import and return the function."""
        module, _, attr = self.function.partition(":")
        return getattr(importlib.import_module(module), attr)

    def parameters(self) -> dict[str, inspect.Parameter]:
        """The function's keyword parameters a job may set (``hidden`` ones left out)."""
        sig = inspect.signature(self.resolve())
        return {
            k: p
            for k, p in sig.parameters.items()
            if k not in self.hidden and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        }


def _stem(params: dict, key: str) -> str:
    return Path(str(params.get(key) or "out")).stem


def _with_speaker_encoder(cache, params: dict, extra: dict) -> dict:
    """Add the worker's cached speaker encoder unless the job passes an encoder object of its own."""
    enc = params.get("speaker_encoder")
    if enc is None or isinstance(enc, (str, os.PathLike)):
        extra["speaker_encoder"] = cache.lazy_speaker_encoder(enc, params.get("device", "auto"))
    return extra


# ----------------------------------------------------------------------------- render
def _render_models(cache, params: dict) -> dict:
    """The worker's vocoder + face renderer and speaker encoder for ``render`` (loaded when first used)."""
    device = params.get("device", "auto")
    extra = {
        "models": cache.lazy_renderer(
            params["unit2av_path"], params.get("config"), params.get("tgt_lang"), device, params.get("backend", "auto")
        )
    }
    return _with_speaker_encoder(cache, params, extra)


def _render_summary(result) -> dict:
    return {
        "video_seconds": round(result.num_frames / 25.0, 3),
        "audio_seconds": round(result.num_samples / result.sample_rate, 3),
    }


RENDER = BatchCommand(
    name="render",
    function="unit2av.pipeline.render:render",
    inputs=("in_unit_path", "in_vid_path", "in_bbox_path", "unit2av_path", "config", "speaker_encoder", "speaker_wav"),
    outputs=("out_vid_path",),
    derive={"out_vid_path": lambda p: f"{_stem(p, 'in_vid_path')}.{p.get('tgt_lang') or 'dub'}.mp4"},
    model_params=("unit2av_path", "config", "tgt_lang", "device", "backend", "speaker_encoder"),
    hidden=("models",),
    models=_render_models,
    summary=_render_summary,
)


# ----------------------------------------------------------------------------- synth
def _synth_models(cache, params: dict) -> dict:
    device = params.get("device", "auto")
    extra = {
        "model": cache.vocoder(
            params["checkpoint"], params.get("config"), params.get("lang"), device, params.get("backend", "auto")
        )
    }
    return _with_speaker_encoder(cache, params, extra)


def _synth_summary(result) -> dict:
    return {"audio_seconds": round(result.num_samples / result.sample_rate, 3)}


SYNTH = BatchCommand(
    name="synth",
    function="unit2av.batch.synth_job:synth_one",
    inputs=("input_file", "checkpoint", "config", "speaker", "speaker_encoder"),
    outputs=("output_file",),
    derive={"output_file": lambda p: f"{_stem(p, 'input_file')}.wav"},
    model_params=("checkpoint", "config", "lang", "device", "backend", "speaker_encoder"),
    hidden=("model",),
    models=_synth_models,
    summary=_synth_summary,
)


# ----------------------------------------------------------------------------- dub
def _dub_models(cache, params: dict) -> dict:
    """The worker's mAV-HuBERT, UTUT and render models for ``dub`` (and the speaker encoder)."""
    device = params.get("device", "auto")
    renderer = cache.lazy_renderer(
        params["unit2av_path"], params.get("config"), params.get("tgt_lang"), device, params.get("backend", "auto")
    )
    translator = _translate_models(cache, params)["translator"]
    models = (cache.av2unit(params["av2unit_path"], device), translator, renderer)
    return _with_speaker_encoder(cache, params, {"models": models})


DUB = BatchCommand(
    name="dub",
    function="unit2av.pipeline.dub:dub",
    inputs=(
        "in_vid_path",
        "av2unit_path",
        "utut_path",
        "unit2av_path",
        "config",
        "in_bbox_path",
        "in_lip_path",
        "utut_dict",
        "speaker_encoder",
    ),
    outputs=("out_vid_path",),
    derive={"out_vid_path": lambda p: f"{_stem(p, 'in_vid_path')}.{p.get('tgt_lang') or 'dub'}.mp4"},
    model_params=(
        "av2unit_path",
        "utut_path",
        "utut_dict",
        "unit2av_path",
        "config",
        "tgt_lang",
        "device",
        "backend",
        "speaker_encoder",
    ),
    hidden=("models",),
    models=_dub_models,
    summary=lambda result: _render_summary(result.render),
    output_folders=("keep_intermediate",),
)


# ----------------------------------------------------------------------------- translate
def _translate_models(cache, params: dict) -> dict:
    """The worker's UTUT translator (loaded once per checkpoint, dictionary and device)."""
    return {"translator": cache.translator(params["utut_path"], params.get("utut_dict"), params.get("device", "auto"))}


TRANSLATE = BatchCommand(
    name="translate",
    function="unit2av.translate.files:translate_file",
    inputs=("in_unit_path", "utut_path", "utut_dict"),
    outputs=("out_unit_path",),
    derive={"out_unit_path": lambda p: f"{_stem(p, 'in_unit_path')}.{p.get('tgt_lang') or 'tgt'}.txt"},
    model_params=("utut_path", "utut_dict", "device"),
    hidden=("translator",),
    models=_translate_models,
    summary=lambda result: {"units": len(result.units)},
)


# ----------------------------------------------------------------------------- av2unit
def _av2unit_models(cache, params: dict) -> dict:
    """The worker's mAV-HuBERT (loaded once per checkpoint and device)."""
    return {"model": cache.av2unit(params["av2unit_path"], params.get("device", "auto"))}


def _av2unit_summary(result) -> dict:
    return {"units": result.num_units, "video_seconds": round(result.num_units / UNIT_RATE, 3)}


AV2UNIT = BatchCommand(
    name="av2unit",
    function="unit2av.av2unit.files:av2unit_file",
    inputs=("in_vid_path", "av2unit_path", "in_lip_path", "in_bbox_path"),
    outputs=("out_unit_path",),
    derive={"out_unit_path": lambda p: f"{_stem(p, 'in_vid_path')}.txt"},
    model_params=("av2unit_path", "device"),
    hidden=("model",),
    models=_av2unit_models,
    summary=_av2unit_summary,
    output_folders=("out_lip_path",),  # mouth crops made when no in_lip_path is given
)


COMMANDS: dict[str, BatchCommand] = {c.name: c for c in (RENDER, SYNTH, DUB, TRANSLATE, AV2UNIT)}


def get_command(name, where: str) -> BatchCommand:
    """The registry entry for ``name``; a one-line error naming ``where`` (the job's line) otherwise."""
    if name not in COMMANDS:
        raise fail(where, f"unknown command {name!r} (batch runs: {', '.join(sorted(COMMANDS))})")
    return COMMANDS[name]


__all__ = ["COMMANDS", "BatchCommand", "get_command"]
