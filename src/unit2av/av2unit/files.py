"""A talking-face video in, a unit file out: what ``unit2av av2unit`` and the batch ``av2unit`` job run.

    from unit2av.av2unit.files import av2unit_file
    av2unit_file("ep01.mp4", "ep01.txt", "mavhubert_large_noise.pt", in_lip_path="ep01.lip.mp4")
    av2unit_file(..., model=m)                                  # an already loaded ``AV2Unit``

The output is the unit string (50 Hz, space separated, no newline) as AV2AV's ``av2unit/inference.py``
writes it, written atomically. Without ``in_lip_path`` (and with the video modality) the mouth crops
are made from the video by ``unit2av.prepare.mouth`` and written to ``out_lip_path``.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import Unit2AVError, fail
from .api import MAX_MISMATCH, MODALITIES, AV2Unit, load_av2unit
from .features import load_audio_int16, read_lip_frames

log = logging.getLogger(__name__)


@dataclass
class AV2UnitResult:
    """What ``av2unit_file`` wrote.

    Attributes:
        path: the unit file. num_units: units predicted (``2T``, 50 Hz). modalities: those used
        (``"audio,video"``...). lip_path: mouth crops made for it (None: given, or not used).
    """

    path: Path
    num_units: int
    modalities: str
    lip_path: Path | None = None


def make_crops(video: Path, out_lip: Path, boxes) -> Path:
    """Mouth crops of ``video`` via ``unit2av.prepare.mouth`` (landmarks -> aligned 96x96 mouth).

    Imported when needed: installations without the face tools still read given ``.lip.mp4`` files.
    """
    try:
        from ..prepare.mouth import make_mouth_crops
    except ModuleNotFoundError as e:
        if e.name != "unit2av.prepare.mouth":
            raise
        raise fail(
            video,
            "no --in-lip-path given and this installation cannot make mouth crops; "
            "give the .lip.mp4 with --in-lip-path",
        ) from e
    make_mouth_crops(video, out_lip, boxes=boxes)
    return out_lip


def _read_audio(video: Path):
    """The video's audio track as int16 values, as the reference's wav holds them."""
    if not video.is_file():
        raise fail(video, "video not found")
    try:
        return load_audio_int16(video).astype("int16")
    except Unit2AVError as e:
        if "no audio track" in str(e):
            raise fail(video, "has no audio track; use --modalities video (mouth crops only)") from e
        raise


def av2unit_file(
    in_vid_path: str | os.PathLike,
    out_unit_path: str | os.PathLike,
    av2unit_path: str | os.PathLike,
    modalities: str = "audio,video",
    in_lip_path: str | os.PathLike | None = None,
    in_bbox_path: str | os.PathLike | None = None,
    out_lip_path: str | os.PathLike | None = None,
    max_mismatch: int | None = None,
    device: str = "auto",
    model: AV2Unit | None = None,
) -> AV2UnitResult:
    """mAV-HuBERT units of one video into ``out_unit_path`` (written atomically).

    Inputs are read before the model loads, so a bad one fails first.

    Args:
        in_vid_path: the source video (its audio track is read for the audio modality).
        out_unit_path: the unit file to write.
        av2unit_path: the mAV-HuBERT checkpoint (loaded unless ``model`` is given).
        modalities: ``"audio,video"``, ``"audio"`` or ``"video"``.
        in_lip_path: 96x96 mouth crops of the video (``.lip.mp4``); default: made from the video.
        in_bbox_path: face boxes (``.bbox.pkl``) to make the mouth crops from.
        out_lip_path: where made crops go (default: ``<video stem>.lip.mp4`` beside the unit file).
        max_mismatch: frames audio and crops may differ by (None: 5; negative: any, padded/trimmed).
        device: ``"auto"``, ``"cpu"``, ``"cuda:1"`` ... (for loading ``av2unit_path``).
        model: an already loaded ``AV2Unit`` (``av2unit_path`` is then not read).

    Raises:
        Unit2AVError: a missing or bad video, crops or checkpoint, lengths too far apart (one line).
    """
    from ..io.safe import write_bytes_atomic

    video, out = Path(in_vid_path), Path(out_unit_path)
    use = [m.strip() for m in str(modalities).split(",")]
    if not use or not set(use) <= set(MODALITIES):
        raise fail(None, f"unknown modalities {modalities!r} (audio,video | audio | video)")
    audio = gray = made = None
    if "audio" in use:  # inputs first: bad ones fail before the model loads
        audio = _read_audio(video)
    if "video" in use and in_lip_path:
        gray = read_lip_frames(in_lip_path)
    if model is None:
        model = load_av2unit(av2unit_path, device=device)
    if "video" in use and gray is None:
        made = Path(out_lip_path) if out_lip_path else out.parent / f"{video.stem}.lip.mp4"
        sibling = video.with_name(f"{video.stem}.lip.mp4")
        if sibling.is_file():
            log.info("%s exists beside the video; pass --in-lip-path to use it instead of new crops", sibling)
        log.info("no --in-lip-path: making mouth crops from %s -> %s", video, made)
        gray = read_lip_frames(make_crops(video, made, in_bbox_path))
    mismatch = MAX_MISMATCH if max_mismatch is None else (None if max_mismatch < 0 else max_mismatch)
    try:
        indices = model.indices(audio=audio, lip=gray, modalities=use, max_mismatch=mismatch)
    except Unit2AVError as e:
        raise fail(in_lip_path or video, str(e)) from e
    write_bytes_atomic(out, model.to_string(indices).encode())
    return AV2UnitResult(out, len(indices), ",".join(use), made)


__all__ = ["AV2UnitResult", "av2unit_file", "make_crops"]
