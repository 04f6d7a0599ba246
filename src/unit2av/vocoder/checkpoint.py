"""Vocoder checkpoints: load a :class:`UnitVocoder` from any container, write ``g_`` files.

Read: speech-resynthesis / NetfLips ``{"generator": sd}`` (``g_XXXXXXXX``), AV2AV's
``{"audio": {lang: sd}, "video": sd}`` and bare state dicts, with the config given, embedded in
the file, beside it, or AV2AV's. Write: ``{"generator": sd}`` in the released key layout.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import torch

from ..devices import resolve_device
from ..io.checkpoints import checkpoint_step, load_state_checked, open_container, vocoder_state
from ..io.safe import save_torch
from ..weightnorm import to_legacy_keys
from .config import VocoderConfig, config_from_dict, load_config
from .model import UnitVocoder

log = logging.getLogger(__name__)


def _config_for(checkpoint: Path, container: dict, config_path) -> VocoderConfig:
    """The explicit config, else one embedded in the checkpoint, else config.json beside it, else AV2AV's."""
    if config_path is not None:
        return load_config(config_path)
    if isinstance(container.get("config"), dict):
        return config_from_dict(container["config"], f"{checkpoint} (embedded config)")
    beside = checkpoint.parent / "config.json"
    if beside.is_file():
        log.info("using %s", beside)
        return load_config(beside)
    log.info("no config given: using the bundled AV2AV vocoder config")
    return load_config(None)


def load_vocoder(checkpoint_path: str | os.PathLike, config_path: str | os.PathLike | None = None,
                 lang: str | None = None, device: str | torch.device = "cpu") -> UnitVocoder:
    """Load a unit vocoder from any supported container, in eval mode.

    Args:
        checkpoint_path: ``g_*``, ``{"generator": sd}``, an AV2AV container or a bare state dict.
        config_path: the vocoder config JSON (default: embedded / beside the checkpoint / AV2AV's).
        lang: the language of an AV2AV container.
        device: ``"auto"``, ``"cpu"``, ``"cuda"``, ...

    Raises:
        Unit2AVError: unreadable file, unknown layout, missing language, or a checkpoint that does
            not fit the config.
    """
    path = Path(checkpoint_path)
    container = open_container(path)
    state = vocoder_state(container, lang, path)
    cfg = _config_for(path, container, config_path)
    model = UnitVocoder.from_config(cfg)
    load_state_checked(model, state, path)
    model.step = checkpoint_step(path, container)
    return model.to(resolve_device(device)).eval()


def generator_state(model: UnitVocoder) -> dict[str, torch.Tensor]:
    """The model's state dict in the released layout (legacy weight-norm names, CPU tensors)."""
    inner = getattr(model, "module", model)  # unwrap DDP
    return {k: v.detach().cpu() for k, v in to_legacy_keys(inner.state_dict()).items()}


def save_generator(model: UnitVocoder, path: str | os.PathLike, config: VocoderConfig | None = None,
                   step: int | None = None) -> None:
    """Write ``{"generator": sd}`` (+ ``config`` and ``steps`` when given) atomically.

    The extra keys are plain data, so speech-resynthesis and fairseq still load the file.
    """
    obj: dict = {"generator": generator_state(model)}
    if config is not None:
        obj["config"] = json.loads(json.dumps(config.to_dict()))
    if step is not None:
        obj["steps"] = int(step)
    save_torch(obj, path)
