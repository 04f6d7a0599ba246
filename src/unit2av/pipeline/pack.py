"""Pack vocoders and a face renderer into one AV2AV container ``{"audio": {lang: sd}, "video": sd}``.

    unit2av pack --vocoder ko=cp_ko/g_best --vocoder en=cp_en/g_best --face cp_face/f_best --out unit_av.pt

Vocoders come from any container ``load_vocoder`` reads (``g_*``, AV2AV); the renderer from a
``train-face`` ``f_*`` file or another AV2AV container. Each vocoder's config is stored beside the
weights (``vocoder_configs``; the renderer's ``face_config`` is kept), which the original tools
ignore and ``render`` reads, so a packed container renders without ``--config``.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from ..errors import fail
from ..face.checkpoint import av2av_incompatibility, load_face_renderer
from ..io.checkpoints import container_languages, face_state, open_container, vocoder_state
from ..io.safe import save_torch
from ..vocoder.checkpoint import original_incompatibility, vocoder_from_container
from ..vocoder.config import VocoderConfig

log = logging.getLogger(__name__)


def parse_vocoder_specs(specs: list[str]) -> dict[str, str]:
    """``["ko=g_best", "en=path"]`` -> ``{"ko": "g_best", "en": "path"}`` (one line error on a bad spec)."""
    out: dict[str, str] = {}
    for spec in specs:
        lang, sep, path = spec.partition("=")
        if not sep or not lang or not path:
            raise fail(None, f"--vocoder expects LANG=CHECKPOINT (e.g. ko=cp/g_best), got {spec!r}")
        if lang in out:
            raise fail(None, f"--vocoder: language {lang!r} given twice")
        out[lang] = path
    return out


def pack(
    vocoders: dict[str, str | os.PathLike],
    face: str | os.PathLike,
    out: str | os.PathLike,
    base: str | os.PathLike | None = None,
) -> dict:
    """Write the AV2AV container atomically.

    Every vocoder is loaded once with its config (``vocoder_from_container``'s rule: embedded,
    beside it, else AV2AV's) so a vocoder that does not fit its config is refused here, and that
    config is stored under ``vocoder_configs``: ``render`` then needs no ``--config``. One warning
    line names what the original tools (AV2AV, fairseq) cannot load.

    Args:
        vocoders: ``{lang: checkpoint}``; an AV2AV container given here contributes its ``lang`` entry
            (or its only vocoder).
        face: checkpoint holding the renderer (``f_`` file, AV2AV container or bare state dict).
        out: the output file.
        base: an existing AV2AV container whose other languages are kept (e.g. the released one).

    Returns:
        The written container.
    """
    audio: dict = {}
    configs: dict[str, VocoderConfig] = {}
    opened: dict[str, dict] = {}  # each file read once

    def container(path) -> dict:
        if str(path) not in opened:
            opened[str(path)] = open_container(path)
        return opened[str(path)]

    sources = [(base, lang, lang) for lang in container_languages(container(base))] if base is not None else []
    sources += [(path, lang, None) for lang, path in vocoders.items()]
    for path, lang, key in sources:
        c = container(path)
        key = key if key is not None else (lang if lang in container_languages(c) else None)
        audio[lang] = vocoder_state(c, key, path)
        configs[lang] = vocoder_from_container(c, path, lang=key).config
    if not audio:
        raise fail(None, "nothing to pack: give at least one --vocoder LANG=CHECKPOINT (or --base)")
    face_c = container(face)
    load_face_renderer(face_c, source=face)  # refuse a renderer that does not fit its layout
    obj = {
        "audio": audio,
        "video": face_state(face_c, face),
        "vocoder_configs": {lang: json.loads(json.dumps(cfg.to_dict())) for lang, cfg in configs.items()},
    }
    if isinstance(face_c.get("face_config"), dict):
        obj["face_config"] = face_c["face_config"]
    _warn_incompatible(configs, obj["video"], out)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    save_torch(obj, out)
    log.info("wrote %s: vocoders %s + face renderer", out, ", ".join(sorted(audio)))
    return obj


def _warn_incompatible(configs: dict[str, VocoderConfig], face: dict, out) -> None:
    """One warning line naming the packed models that AV2AV's (and fairseq's) own code cannot load.

    Args:
        configs: each language's vocoder config.
        face: the renderer's state dict.
    """
    problems = [
        f"vocoder '{lang}' (AV2AV, fairseq): {why}"
        for lang, cfg in sorted(configs.items())
        if (why := original_incompatibility(cfg))
    ]
    if why := av2av_incompatibility(face):
        problems.append(f"face renderer (AV2AV): {why}")
    if problems:
        log.warning("%s: the original tools cannot load %s; unit2av can", out, "; ".join(problems))


__all__ = ["pack", "parse_vocoder_specs"]
