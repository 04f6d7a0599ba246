"""Dub a tab's video into another language with its edited boxes, through ``unit2av.pipeline.dub.dub``.

    models = ModelCache(keep=1)                # one per app: every tab's dubs share the loaded models
    choice = DubChoice("mavhubert.pt", "utut_sts_ft.pt", None, "unit_av_renderer.pt", "en", "es")
    result = translate_dub(session, workspace, models, choice)
    result.video, result.preview, result.spectrogram   # files in the tab's folder
    result.source_units, result.target_units            # mAV-HuBERT units and their UTUT translation
    result.command                                      # the `unit2av dub ...` line that gives the same video

The checkpoints are named relative to ``--models`` or ``--root`` (``Workspace.checkpoint``: nothing
outside them is read); the AV2AV container is a ``Workspace.model_choices`` entry, as for the render.
The three models are loaded once per path (and device) and kept for the next dub
(``unit2av.pipeline.models.ModelCache`` with ``keep=1``: one model of each kind, a new path replaces it).
"""

from __future__ import annotations

import itertools
import logging
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

from ..av2unit.api import parse_modalities
from ..errors import fail
from ..io.boxes import write_boxes
from ..pipeline.models import ModelCache
from .dub import RenderOptions, write_preview, write_spectrogram
from .session import Session
from .workspace import Workspace

log = logging.getLogger(__name__)

MODALITIES = ("audio,video", "audio", "video")  # what mAV-HuBERT reads (``unit2av dub --modalities``)
_LANG = re.compile(r"^[A-Za-z0-9_-]{1,32}$")  # language codes go into file names


@dataclass(frozen=True)
class DubChoice:
    """The dub panel's fields, as typed (paths are resolved by ``translate_dub``)."""

    av2unit: str  # mAV-HuBERT checkpoint, relative to --models or --root
    utut: str  # UTUT checkpoint, same
    utut_dict: str | None  # UTUT dict.txt (None / "": beside the checkpoint, else units 0..999)
    model: str  # a Workspace.model_choices entry: the AV2AV container
    src_lang: str
    tgt_lang: str
    beam: int | None = None  # None: the checkpoint's
    modalities: str = "audio,video"


@dataclass
class TranslatedDub:
    """What ``translate_dub`` wrote and found."""

    video: Path  # the dubbed .mp4
    preview: Path | None  # source crops over rendered crops (None when no frame had a box)
    spectrogram: Path  # log-mel of the dubbed soundtrack
    command: str  # the equivalent `unit2av dub` command line
    source_units: list[int]  # 50 Hz mAV-HuBERT units of the source speech
    target_units: list[int]  # UTUT's translation (no durations)
    frames: int  # video frames written
    seconds: float  # length of the new speech


def languages(ws: Workspace, models: ModelCache, utut: str, utut_dict: str | None, model: str, device: str = "auto"):
    """The UTUT checkpoint's languages and those the container voices.

    Returns:
        ``(utut_languages, voiced)``: every language the translator knows (its order) and the subset the
        container has a vocoder for (the possible targets).
    """
    dict_path = ws.checkpoint(utut_dict, "UTUT dict.txt") if utut_dict and str(utut_dict).strip() else None
    translator = models.translator(ws.checkpoint(utut, "UTUT checkpoint"), dict_path, device)
    voiced = set(ws.model(model)[1])
    return translator.languages, [x for x in translator.languages if x in voiced]


def dub_command(video: Path, out: Path, src: str, tgt: str, paths: dict, extra: dict, opts: RenderOptions) -> list[str]:
    """The ``unit2av dub`` arguments that dub exactly as ``translate_dub`` does.

    Args:
        paths: ``av2unit``, ``utut``, ``utut_dict`` (or None), ``container``, ``boxes``, ``work``.
        extra: ``modalities`` and ``beam`` (or None).
    """
    cmd = ["unit2av", "dub", "--in-vid-path", str(video), "--out-vid-path", str(out), "--src-lang", src]
    cmd += ["--tgt-lang", tgt, "--av2unit-path", str(paths["av2unit"]), "--utut-path", str(paths["utut"])]
    if paths["utut_dict"] is not None:
        cmd += ["--utut-dict", str(paths["utut_dict"])]
    cmd += ["--unit2av-path", str(paths["container"]), "--in-bbox-path", str(paths["boxes"])]
    cmd += ["--modalities", extra["modalities"]] + (["--beam", str(extra["beam"])] if extra["beam"] else [])
    return cmd + ["--keep-intermediate", str(paths["work"]), "--device", opts.device, "--backend", opts.backend]


def _check(ws: Workspace, models: ModelCache, choice: DubChoice, opts: RenderOptions) -> dict:
    """Resolve and check every input before any work: paths (fenced), languages, beam, modalities.

    Returns:
        ``{"av2unit", "utut", "utut_dict", "container"}`` resolved paths.
    """
    paths = {
        "av2unit": ws.checkpoint(choice.av2unit, "mAV-HuBERT checkpoint"),
        "utut": ws.checkpoint(choice.utut, "UTUT checkpoint"),
        "utut_dict": ws.checkpoint(choice.utut_dict, "UTUT dict.txt") if (choice.utut_dict or "").strip() else None,
    }
    paths["container"], voiced = ws.model(choice.model)
    for lang in (choice.src_lang, choice.tgt_lang):
        if not _LANG.match(lang or ""):
            raise fail(None, f"language {lang!r}: pick one of the UTUT checkpoint's languages")
    if choice.tgt_lang not in voiced:
        raise fail(
            paths["container"],
            f"has no vocoder for language {choice.tgt_lang!r} (it has {', '.join(voiced)}): "
            "pick a container under --models that voices the target language",
        )
    translator = models.translator(paths["utut"], paths["utut_dict"], opts.device)
    for lang in (choice.src_lang, choice.tgt_lang):
        translator.vocab.lang_index(lang)  # one line naming the checkpoint's languages
    if choice.beam is not None and choice.beam < 1:
        raise fail(None, f"beam {choice.beam}: must be at least 1")
    parse_modalities(choice.modalities, True, True)
    return paths


def translate_dub(
    session: Session, ws: Workspace, models: ModelCache, choice: DubChoice, opts: RenderOptions | None = None
) -> TranslatedDub:
    """Dub ``session``'s video from ``choice.src_lang`` into ``choice.tgt_lang`` with its current boxes.

    The boxes are written to ``<tab folder>/<stem>.<src>-<tgt>.dub<n>.bbox.pkl`` and every stage's
    output is kept in ``<stem>.<src>-<tgt>.dub<n>/`` (``keep_intermediate``), exactly as
    ``result.command`` would write them.

    Args:
        session: the tab's video and boxes.
        ws: the app's folders (checkpoints and the container are resolved there).
        models: the app's loaded models (loaded here when missing).
        choice: the panel's fields.
        opts: device and inference backend (default: auto, auto).

    Raises:
        Unit2AVError: no boxes, a path outside the folders, a bad checkpoint or language (one line).
    """
    from ..pipeline.dub import dub

    opts = opts or RenderOptions()
    boxes = session.require_boxes()
    paths = _check(ws, models, choice, opts)
    src, tgt = choice.src_lang, choice.tgt_lang
    stem = f"{session.video.stem}.{src}-{tgt}.dub"
    n = next(i for i in itertools.count(1) if not (session.folder / f"{stem}{i}.mp4").exists())
    out = session.folder / f"{stem}{n}.mp4"
    paths["boxes"], paths["work"] = session.folder / f"{stem}{n}.bbox.pkl", session.folder / f"{stem}{n}"
    write_boxes(boxes, paths["boxes"])
    loaded = (
        models.av2unit(paths["av2unit"], opts.device),
        models.translator(paths["utut"], paths["utut_dict"], opts.device),
        models.renderer(paths["container"], None, tgt, opts.device, opts.backend),
    )
    extra = {"modalities": choice.modalities, "beam": choice.beam}
    result = dub(
        session.video,
        out,
        src,
        tgt,
        paths["av2unit"],
        paths["utut"],
        paths["container"],
        in_bbox_path=paths["boxes"],
        keep_intermediate=paths["work"],
        utut_dict=paths["utut_dict"],
        device=opts.device,
        backend=opts.backend,
        models=loaded,
        **extra,
    )
    command = shlex.join(dub_command(session.video, out, src, tgt, paths, extra, opts))
    log.info("app dub: %s", command)
    r = result.render
    spectrogram = write_spectrogram(out, r, session.folder / f"{out.stem}.spectrogram.png")
    preview = write_preview(session, boxes, out, r.num_frames, session.folder / f"{out.stem}.preview.png")
    return TranslatedDub(
        out,
        preview,
        spectrogram,
        command,
        result.source_units,
        result.target_units,
        r.num_frames,
        r.num_samples / r.sample_rate,
    )


__all__ = ["MODALITIES", "DubChoice", "TranslatedDub", "dub_command", "languages", "translate_dub"]
