"""The whole AV2AV system in one call: a talking-face video in one language -> the same video in another.

    dub("talk.mp4", "talk.es.mp4", src_lang="en", tgt_lang="es", av2unit_path="mavhubert_large_noise.pt",
        utut_path="utut_sts_ft.pt", unit2av_path="unit_av_renderer.pt")

Stages (AV2AV's ``inference.py``, each the same function as its own command):
1. face boxes (``unit2av bbox detect``) and 96x96 mouth crops (``unit2av prepare``), unless given;
2. source units from speech + mouth crops with mAV-HuBERT (``unit2av av2unit``);
3. target units with UTUT beam search (``unit2av translate``);
4. speech in the source speaker's voice and the re-rendered mouth (``unit2av render``, durations
   predicted because translated units carry none).

``keep_intermediate`` writes every stage's output into a folder, named so that a stage can be rerun
alone with its command: ``<stem>.bbox.pkl``, ``<stem>.lip.mp4``, ``<stem>.<src>.txt`` (source units),
``<stem>.<tgt>.txt`` (target units), ``<stem>.<tgt>.wav`` (the new speech).
"""

from __future__ import annotations

import logging
import os
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..av2unit.api import load_av2unit, parse_modalities
from ..errors import fail
from ..io.audio import save_wav
from ..io.boxes import write_boxes
from ..io.safe import write_bytes_atomic
from ..io.video_writer import DEFAULT_PRESET, check_preset
from ..prepare.faces import detect_video
from ..translate.api import load_translator
from .render import DEFAULT_BATCH_FRAMES, RenderResult, load_renderer, render

log = logging.getLogger(__name__)

STAGES = ("boxes", "mouth crops", "source units", "translation", "render")


@dataclass
class DubResult:
    """What ``dub`` produced."""

    path: Path  # the dubbed video
    source_units: list[int]  # 50 Hz units of the source speech (as mAV-HuBERT emits them)
    target_units: list[int]  # translated units (no durations)
    render: RenderResult  # the render stage's result (frames, samples, expanded units)
    intermediate: dict[str, Path] = field(default_factory=dict)  # stage output name -> file (keep_intermediate)


def _stage(i: int, name: str) -> None:
    log.info("[%d/%d] %s", i, len(STAGES), name)


def _boxes(video: Path, in_bbox_path, work: Path) -> Path:
    if in_bbox_path is not None:
        return Path(in_bbox_path)
    out = work / f"{video.stem}.bbox.pkl"
    write_boxes(detect_video(video).boxes, out)
    return out


def _mouth(video: Path, in_lip_path, boxes: Path, work: Path) -> Path:
    if in_lip_path is not None:
        return Path(in_lip_path)
    from ..prepare.mouth import make_mouth_crops

    out = work / f"{video.stem}.lip.mp4"
    make_mouth_crops(video, out, boxes=boxes)
    return out


def _write_text(path: Path, text: str) -> None:
    write_bytes_atomic(path, (text + "\n").encode())


def _load_models(models, av2unit_path, utut_path, unit2av_path, config, utut_dict, langs, device, backend):
    """The three models, loaded unless given, with both languages checked against the translator first.

    Args:
        models: ``(av2unit, translator, renderer)`` already loaded (``renderer`` may be None), or None.
        av2unit_path, utut_path, unit2av_path, config, utut_dict: as for ``dub``.
        langs: ``(src_lang, tgt_lang)``; the renderer is loaded for the target language.
        device, backend: as for ``render``.

    Returns:
        ``(av2unit, translator, (vocoder, face_renderer))``.
    """
    if models is None:
        models = (
            load_av2unit(av2unit_path, device=device),
            load_translator(utut_path, dict_path=utut_dict, device=device),
            None,
        )
    av2unit, translator, renderer = models
    for lang in langs:
        translator.vocab.lang_index(lang)
    renderer = (
        tuple(renderer) if renderer is not None else load_renderer(unit2av_path, config, langs[1], device, backend)
    )
    return av2unit, translator, renderer


@contextmanager
def _workdir(keep_intermediate):
    """Yield the folder the stages write into: ``keep_intermediate`` (created) or a temporary one."""
    with tempfile.TemporaryDirectory(prefix="unit2av_dub_") as tmp:
        work = Path(keep_intermediate) if keep_intermediate is not None else Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        yield work


def _prepare(video: Path, in_bbox_path, in_lip_path, chosen, work: Path) -> tuple[Path, Path | None]:
    """Stages 1-2: face boxes and, when mAV-HuBERT reads video, mouth crops (each given or made in ``work``)."""
    _stage(1, STAGES[0])
    boxes = _boxes(video, in_bbox_path, work)
    _stage(2, STAGES[1])
    lip = _mouth(video, in_lip_path, boxes, work) if "video" in chosen else None
    return boxes, lip


def _source_units(av2unit, video: Path, lip: Path | None, chosen, src_lang: str, work: Path):
    """Stage 3: mAV-HuBERT units of the source (special symbols dropped), written to ``<stem>.<src>.txt``.

    Returns:
        ``(units, path)``: the 50 Hz source units (list of int) and the file they were written to.
    """
    _stage(3, STAGES[2])
    source = av2unit.units(audio=video if "audio" in chosen else None, lip=lip, modalities=chosen)
    source_units = [int(u) for u in source if int(u) >= 0]
    if len(source_units) < len(source):
        log.warning("%s: %d special symbols among the source units dropped", video, len(source) - len(source_units))
    src_file = work / f"{video.stem}.{src_lang}.txt"
    _write_text(src_file, " ".join(map(str, source_units)))
    return source_units, src_file


def _translate(translator, video: Path, source_units: list[int], langs, beam, work: Path):
    """Stage 4: the best UTUT hypothesis for ``langs = (src, tgt)``, written to ``<stem>.<tgt>.txt``.

    Returns:
        ``(hypothesis, path)``; an empty translation raises ``Unit2AVError``.
    """
    _stage(4, STAGES[3])
    src_lang, tgt_lang = langs
    best = translator.translate(source_units, src_lang, tgt_lang, beam=beam)[0]
    if not best.units:
        raise fail(video, f"the translation into {tgt_lang} is empty (no units to speak)")
    tgt_file = work / f"{video.stem}.{tgt_lang}.txt"
    _write_text(tgt_file, best.text)
    return best, tgt_file


def _render_stage(tgt_file, video, boxes, out_vid_path, tgt_lang, unit2av_path, renderer, **options) -> RenderResult:
    """Stage 5: speech in the source speaker's voice and the re-rendered mouth (``render``, durations predicted).

    Args:
        tgt_file: the target units (``<stem>.<tgt>.txt``, no durations).
        video, boxes, out_vid_path, tgt_lang, unit2av_path: ``render``'s inputs and output.
        renderer: the loaded ``(vocoder, face_renderer)``.
        options: ``render``'s keyword arguments (config, speaker_encoder, device, batch_size, blend, backend, preset).
    """
    _stage(5, STAGES[4])
    return render(
        tgt_file, video, boxes, out_vid_path, tgt_lang, unit2av_path, dur_prediction=True, models=renderer, **options
    )


def _kept_files(keep_intermediate, result: RenderResult, **files) -> dict[str, Path]:
    """The ``keep_intermediate`` files by name: ``files`` (None dropped) and the new speech, saved beside them.

    Returns:
        name -> path (the speech as ``<stem>.<tgt>.wav`` next to ``files["target_units"]``); empty when
        ``keep_intermediate`` is None (nothing kept).
    """
    if keep_intermediate is None:
        return {}
    files = {name: path for name, path in files.items() if path is not None}
    if result.wav is not None:
        files["speech"] = files["target_units"].with_suffix(".wav")
        save_wav(files["speech"], np.asarray(result.wav), result.sample_rate, fmt="float")
    return files


def dub(
    in_vid_path: str | os.PathLike,
    out_vid_path: str | os.PathLike,
    src_lang: str,
    tgt_lang: str,
    av2unit_path: str | os.PathLike,
    utut_path: str | os.PathLike,
    unit2av_path: str | os.PathLike,
    config: str | os.PathLike | None = None,
    modalities: str = "audio,video",
    in_bbox_path: str | os.PathLike | None = None,
    in_lip_path: str | os.PathLike | None = None,
    keep_intermediate: str | os.PathLike | None = None,
    utut_dict: str | os.PathLike | None = None,
    beam: int | None = None,
    speaker_encoder=None,
    device: str = "auto",
    batch_size: int = DEFAULT_BATCH_FRAMES,
    blend: str = "feather",
    backend: str = "auto",
    models: tuple | None = None,
    preset: str = DEFAULT_PRESET,
) -> DubResult:
    """Dub a talking-face video into another language (AV2AV's whole pipeline).

    Args:
        in_vid_path: the source video (25 fps is what mAV-HuBERT and the renderer were trained on).
        out_vid_path: the dubbed ``.mp4`` (H.264 + AAC), written atomically; its length is the new speech's.
        src_lang, tgt_lang: language codes known to the UTUT checkpoint; ``tgt_lang`` must also be a
            vocoder language of the ``unit2av_path`` container.
        av2unit_path: mAV-HuBERT checkpoint (``mavhubert_large_noise.pt``).
        utut_path: UTUT checkpoint (``utut_sts_ft.pt``).
        unit2av_path: AV2AV container (``unit_av_renderer.pt``).
        config: vocoder config JSON (default: stored in / beside the container, else AV2AV's).
        modalities: what mAV-HuBERT reads: ``"audio,video"``, ``"audio"`` or ``"video"``.
        in_bbox_path: face boxes (default: detected, as ``unit2av bbox detect``).
        in_lip_path: ``.lip.mp4`` mouth crops (default: made from the boxes' landmarks; only with video).
        keep_intermediate: folder for every stage's output (see the module docstring).
        utut_dict: UTUT's ``dict.txt`` (default: beside the checkpoint, else units 0..999).
        beam: beam size (default: the checkpoint's).
        speaker_encoder: GE2E weights or ``SpeakerEncoder`` (default: the bundled weights).
        device, batch_size, blend, backend, preset: as for ``render``.
        models: already loaded ``(av2unit, translator, (vocoder, face_renderer))`` (``load_av2unit``,
            ``load_translator``, ``load_renderer``), used as given instead of loading the three paths.

    Raises:
        Unit2AVError: any bad input, named in one line; nothing is left at ``out_vid_path``.
    """
    video = Path(in_vid_path)
    if not video.is_file():
        raise fail(video, "video not found")
    chosen = parse_modalities(modalities, True, True)
    check_preset(preset)
    langs = (src_lang, tgt_lang)
    # Load every model first: a bad checkpoint or language fails before minutes of work.
    av2unit, translator, renderer = _load_models(
        models, av2unit_path, utut_path, unit2av_path, config, utut_dict, langs, device, backend
    )
    # render's keyword arguments
    options = {"config": config, "speaker_encoder": speaker_encoder, "device": device, "backend": backend}
    options.update(batch_size=batch_size, blend=blend, preset=preset)
    with _workdir(keep_intermediate) as work:
        boxes, lip = _prepare(video, in_bbox_path, in_lip_path, chosen, work)
        source_units, src_file = _source_units(av2unit, video, lip, chosen, src_lang, work)
        best, tgt_file = _translate(translator, video, source_units, langs, beam, work)
        result = _render_stage(tgt_file, video, boxes, out_vid_path, tgt_lang, unit2av_path, renderer, **options)
        files = _kept_files(
            keep_intermediate, result, boxes=boxes, source_units=src_file, target_units=tgt_file, lip=lip
        )
    seconds = result.num_samples / result.sample_rate
    log.info("wrote %s: %d frames, %.2f s of %s speech", result.path, result.num_frames, seconds, tgt_lang)
    return DubResult(result.path, source_units, list(best.units), result, files)


__all__ = ["DubResult", "STAGES", "dub"]
