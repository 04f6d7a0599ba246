"""Every checkpoint container in and out.

Read (all through ``safeio.load_torch``, weights only):
- speech-resynthesis / NetfLips ``g_XXXXXXXX`` and ``g_best``: ``{"generator": state_dict}``;
- AV2AV ``unit_av_renderer.pt``: ``{"audio": {lang: state_dict}, "video": face_state_dict}``;
- a bare vocoder state dict (or a bare face renderer state dict);
- configs stored beside the weights: ``"config"`` (``g_`` files we write) and ``"vocoder_configs"``
  (``{lang: config}``, containers ``unit2av pack`` writes), which the original tools ignore.
Write: ``{"generator": state_dict}`` with the legacy ``weight_g``/``weight_v`` names, so the
original tools load what we train in their architecture (not ``f0_source`` vocoders; see the README,
"Which checkpoints the original tools load").
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

import torch

from ..errors import fail
from ..weightnorm import from_any_keys
from .safe import load_torch

log = logging.getLogger(__name__)


def open_container(path: str | os.PathLike) -> dict:
    """Load a checkpoint file safely; it must be a dict."""
    obj = load_torch(path)
    if not isinstance(obj, dict):
        raise fail(path, f"not a checkpoint: expected a dict, found {type(obj).__name__}")
    return obj


def _is_state_dict(obj) -> bool:
    return isinstance(obj, dict) and bool(obj) and all(isinstance(v, torch.Tensor) for v in obj.values())


def container_languages(container: dict) -> list[str]:
    """Languages of an AV2AV container (empty for single-vocoder containers)."""
    audio = container.get("audio")
    return sorted(audio) if isinstance(audio, dict) and not _is_state_dict(audio) else []


def vocoder_state(container: dict, lang: str | None, path) -> dict[str, torch.Tensor]:
    """Pick the vocoder state dict out of any supported container.

    Args:
        container: what ``open_container`` returned.
        lang: language key for AV2AV containers (``None``: the only one, if there is one).
        path: the file, for messages.
    """
    if "generator" in container and _is_state_dict(container["generator"]):
        return container["generator"]
    langs = container_languages(container)
    if langs:
        if lang is None:
            if len(langs) == 1:
                return container["audio"][langs[0]]
            raise fail(path, f"holds vocoders for several languages ({', '.join(langs)}): choose one with --lang")
        if lang not in langs:
            raise fail(path, f"has no vocoder for language '{lang}'; it has: {', '.join(langs)}")
        if not _is_state_dict(container["audio"][lang]):
            raise fail(path, f"audio entry '{lang}' is not a state dict")
        return container["audio"][lang]
    if _is_state_dict(container.get("audio")):
        return container["audio"]
    if _is_state_dict(container) and "dict.weight" in container:
        return container
    raise fail(
        path,
        "no vocoder found: expected {'generator': ...}, {'audio': {lang: ...}} or a state dict "
        f"(top-level keys: {', '.join(sorted(map(str, container))[:6])})",
    )


def face_state(container: dict, path) -> dict[str, torch.Tensor]:
    """The face renderer state dict of an AV2AV container / ``f_`` file (``"video"``), or a bare one."""
    video = container.get("video")
    if _is_state_dict(video):
        return video
    if _is_state_dict(container) and "unit_embed.weight" in container:
        return container
    raise fail(path, "no face renderer found: expected an AV2AV container with a 'video' state dict")


def embedded_vocoder_config(container: dict, lang: str | None) -> dict | None:
    """The vocoder config stored in a container: ``"config"`` (``g_`` files), else ``"vocoder_configs"[lang]``
    (containers written by ``unit2av pack``; ``lang`` None: the only language). None when there is none."""
    if isinstance(container.get("config"), dict):
        return container["config"]
    configs = container.get("vocoder_configs")
    if not isinstance(configs, dict):
        return None
    langs = container_languages(container)
    if lang is None and len(langs) == 1:
        lang = langs[0]
    found = configs.get(lang)
    return found if isinstance(found, dict) else None


def load_state_checked(
    model: torch.nn.Module, state: dict[str, torch.Tensor], path, may_lack: tuple[str, ...] = ()
) -> None:
    """``load_state_dict`` with a one-line error naming the first mismatched keys and shapes.

    Args:
        may_lack: key prefixes the state may lack (those parameters keep their initial values),
            e.g. the f0-source parts when an ``f0_source`` model starts from a plain vocoder.
    """
    state = from_any_keys(state, model)
    own = model.state_dict()
    missing = [k for k in own if k not in state and not k.startswith(may_lack)]
    unexpected = [k for k in state if k not in own]
    wrong = [
        f"{k} {tuple(state[k].shape)} vs config {tuple(own[k].shape)}"
        for k in own
        if k in state and tuple(state[k].shape) != tuple(own[k].shape)
    ]
    problems = []
    for label, items in (("shape mismatch", wrong), ("missing keys", missing), ("unexpected keys", unexpected)):
        if items:
            more = f" (+{len(items) - 3} more)" if len(items) > 3 else ""
            problems.append(f"{label}: " + "; ".join(items[:3]) + more)
    if problems:
        raise fail(path, "checkpoint does not fit the config: " + " | ".join(problems))
    model.load_state_dict(state, strict=not may_lack)


def checkpoint_step(checkpoint: str | os.PathLike, container: dict | None = None) -> int:
    """The training step of a checkpoint: its ``steps`` entry, else the digits ending ``g_XXXXXXXX``."""
    if container and isinstance(container.get("steps"), int):
        return container["steps"]
    m = re.search(r"(\d+)$", Path(checkpoint).name)
    return int(m.group(1)) if m else 0
