"""Vocoder checkpoints: load a :class:`UnitVocoder` from any container, write ``g_`` files.

Read: speech-resynthesis / NetfLips ``{"generator": sd}`` (``g_XXXXXXXX``), AV2AV's
``{"audio": {lang: sd}, "video": sd}`` (and those ``unit2av pack`` writes) and bare state dicts,
with the config given, embedded in the file, beside it, or AV2AV's: one rule for every caller
(``synth``, ``render``, ``export``, the demo). Write: ``{"generator": sd}`` in the released key layout.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import torch

from ..devices import resolve_device
from ..io.checkpoints import (
    checkpoint_step,
    embedded_vocoder_config,
    load_state_checked,
    open_container,
    vocoder_state,
)
from ..io.safe import save_torch
from ..weightnorm import to_legacy_keys
from .config import VocoderConfig, config_from_dict, load_config
from .model import UnitVocoder

log = logging.getLogger(__name__)


def _config_for(checkpoint: Path, container: dict, config_path, lang: str | None) -> VocoderConfig:
    """The explicit config, else one embedded in the container, else config.json beside it, else AV2AV's."""
    if config_path is not None:
        return load_config(config_path)
    embedded = embedded_vocoder_config(container, lang)
    if embedded is not None:
        return config_from_dict(embedded, f"{checkpoint} (embedded config)")
    beside = checkpoint.parent / "config.json"
    if beside.is_file():
        log.info("using %s", beside)
        return load_config(beside)
    log.info("no config given: using the bundled AV2AV vocoder config")
    return load_config(None)


def vocoder_from_container(
    container: dict, path: str | os.PathLike, config_path: str | os.PathLike | None = None, lang: str | None = None
) -> UnitVocoder:
    """The vocoder of an opened container (``open_container``), on the CPU in eval mode.

    The config, in this order: ``config_path``; the one embedded in the container (``"config"``
    of a ``g_`` file, ``"vocoder_configs"[lang]`` of a packed container); ``config.json`` beside
    ``path``; AV2AV's.

    Args:
        container: what ``open_container(path)`` returned.
        path: the file it came from (for the config beside it and for messages).
        config_path: the vocoder config JSON, overriding every other.
        lang: the language of an AV2AV container (``None``: its only one).
    """
    path = Path(path)
    state = vocoder_state(container, lang, path)
    cfg = _config_for(path, container, config_path, lang)
    model = UnitVocoder.from_config(cfg)
    load_state_checked(model, state, path)
    model.step = checkpoint_step(path, container)
    return model.eval()


def load_vocoder(
    checkpoint_path: str | os.PathLike,
    config_path: str | os.PathLike | None = None,
    lang: str | None = None,
    device: str | torch.device = "cpu",
) -> UnitVocoder:
    """Load a unit vocoder from any supported container, in eval mode (see ``vocoder_from_container``).

    Args:
        checkpoint_path: ``g_*``, ``{"generator": sd}``, an AV2AV container or a bare state dict.
        config_path: the vocoder config JSON (default: embedded / beside the checkpoint / AV2AV's).
        lang: the language of an AV2AV container.
        device: ``"auto"``, ``"cpu"``, ``"cuda"``, ...

    Raises:
        Unit2AVError: unreadable file, unknown layout, missing language, or a checkpoint that does
            not fit the config.
    """
    model = vocoder_from_container(open_container(checkpoint_path), checkpoint_path, config_path, lang)
    return model.to(resolve_device(device))


def original_incompatibility(cfg: VocoderConfig) -> str | None:
    """Why fairseq's / AV2AV's ``CodeGenerator`` could not load a vocoder of this config, or None.

    They load our ``g_`` files of their architecture (given the config); our extensions add
    parameters their model does not have.
    """
    return "f0_source (ours: an f0 predictor and excitation their model lacks)" if cfg.f0_source else None


def generator_state(model: UnitVocoder) -> dict[str, torch.Tensor]:
    """The model's state dict in the released layout (legacy weight-norm names, CPU tensors)."""
    inner = getattr(model, "module", model)  # unwrap DDP
    return {k: v.detach().cpu() for k, v in to_legacy_keys(inner.state_dict()).items()}


def save_generator(
    model: UnitVocoder, path: str | os.PathLike, config: VocoderConfig | None = None, step: int | None = None
) -> None:
    """Write ``{"generator": sd}`` (+ ``config`` and ``steps`` when given) atomically.

    The extra keys are plain data, so speech-resynthesis and fairseq still load the file when the
    model is of their architecture (``original_incompatibility`` says when it is not).
    """
    obj: dict = {"generator": generator_state(model)}
    if config is not None:
        obj["config"] = json.loads(json.dumps(config.to_dict()))
    if step is not None:
        obj["steps"] = int(step)
    save_torch(obj, path)
