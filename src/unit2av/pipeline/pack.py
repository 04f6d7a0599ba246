"""Pack vocoders and a face renderer into one AV2AV container ``{"audio": {lang: sd}, "video": sd}``.

    unit2av pack --vocoder ko=cp_ko/g_best --vocoder en=cp_en/g_best --face cp_face/f_best --out unit_av.pt

Vocoders come from any container ``load_vocoder`` reads (``g_*``, AV2AV); the renderer from a
``train-face`` ``f_*`` file or another AV2AV container. Configs embedded in the inputs are kept
beside the weights (``vocoder_configs``, ``face_config``), which the original tools ignore.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from ..errors import fail
from ..io.checkpoints import container_languages, face_state, open_container, vocoder_state
from ..io.safe import save_torch

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


def pack(vocoders: dict[str, str | os.PathLike], face: str | os.PathLike, out: str | os.PathLike,
         base: str | os.PathLike | None = None) -> dict:
    """Write the AV2AV container atomically.

    Args:
        vocoders: ``{lang: checkpoint}``; an AV2AV container given here contributes its ``lang`` entry
            (or its only vocoder).
        face: checkpoint holding the renderer under ``"video"``.
        out: the output file.
        base: an existing AV2AV container whose other languages are kept (e.g. the released one).

    Returns:
        The written container.
    """
    audio: dict = {}
    configs: dict = {}
    if base is not None:
        base_c = open_container(base)
        for lang in container_languages(base_c):
            audio[lang] = vocoder_state(base_c, lang, base)
    for lang, path in vocoders.items():
        c = open_container(path)
        langs = container_languages(c)
        audio[lang] = vocoder_state(c, lang if lang in langs else None, path)
        if isinstance(c.get("config"), dict):
            configs[lang] = c["config"]
    if not audio:
        raise fail(None, "nothing to pack: give at least one --vocoder LANG=CHECKPOINT (or --base)")
    face_c = open_container(face)
    obj = {"audio": audio, "video": face_state(face_c, face)}
    if configs:
        obj["vocoder_configs"] = configs
    if isinstance(face_c.get("face_config"), dict):
        obj["face_config"] = face_c["face_config"]
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    save_torch(obj, out)
    log.info("wrote %s: vocoders %s + face renderer", out, ", ".join(sorted(audio)))
    return obj


__all__ = ["pack", "parse_vocoder_specs"]
