"""mAV-HuBERT units from a talking-face video (its audio track and/or 96x96 mouth crops), without fairseq.

  unit2av av2unit --in-vid-path V.mp4 --out-unit-path U.txt --av2unit-path mavhubert_large_noise.pt
                  [--modalities audio,video|audio|video] [--in-lip-path V.lip.mp4] [--in-bbox-path B.pkl]

AV2AV's ``av2unit/inference.py`` flags (snake_case spellings too). Writes the unit string (50 Hz,
space separated, no newline) as the reference does. Without ``--in-lip-path`` the mouth crops are
made from the video (face landmarks; ``--in-bbox-path`` face boxes help) and written to
``--out-lip-path`` (default: ``<video stem>.lip.mp4`` beside the unit file).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

log = logging.getLogger(__name__)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--in-vid-path",
        "--in_vid_path",
        dest="in_vid_path",
        required=True,
        help="source video (its audio track is read for the audio modality)",
    )
    p.add_argument(
        "--out-unit-path",
        "--out_unit_path",
        dest="out_unit_path",
        required=True,
        help="unit file to write (text, as AV2AV writes it)",
    )
    p.add_argument(
        "--av2unit-path",
        "--av2unit_path",
        dest="av2unit_path",
        required=True,
        help="mAV-HuBERT checkpoint (AV2AV's mavhubert_large_noise.pt)",
    )
    p.add_argument(
        "--modalities",
        default="audio,video",
        choices=["audio,video", "audio", "video"],
        help="input modalities (default: audio,video)",
    )
    p.add_argument(
        "--in-lip-path",
        "--in_lip_path",
        dest="in_lip_path",
        default=None,
        help="96x96 mouth crops of the video (.lip.mp4); default: made from the video",
    )
    p.add_argument(
        "--in-bbox-path",
        "--in_bbox_path",
        dest="in_bbox_path",
        default=None,
        help="face boxes of the video (AV2AV .bbox.pkl) to make the mouth crops from",
    )
    p.add_argument(
        "--out-lip-path",
        "--out_lip_path",
        dest="out_lip_path",
        default=None,
        help="where made mouth crops go (default: <video stem>.lip.mp4 beside the unit file)",
    )
    p.add_argument(
        "--max-mismatch",
        "--max_mismatch",
        dest="max_mismatch",
        type=int,
        default=None,
        help="frames the audio and the mouth crops may differ by (default: 5; -1: any, padded/trimmed "
        "as the reference does)",
    )
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, ...")
    p.add_argument("--cpu", action="store_true", help="run on the CPU (AV2AV's flag; same as --device cpu)")


def _make_crops(video: Path, out_lip: Path, boxes: str | None) -> Path:
    """Mouth crops of ``video`` via ``unit2av.prepare.mouth`` (landmarks -> aligned 96x96 mouth)."""
    from ..errors import fail

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


def run(args: argparse.Namespace) -> int:
    from ..av2unit.api import MAX_MISMATCH, load_av2unit
    from ..av2unit.features import load_audio_int16, read_lip_frames
    from ..errors import Unit2AVError, fail
    from ..io.safe import write_bytes_atomic

    video, out = Path(args.in_vid_path), Path(args.out_unit_path)
    use = args.modalities.split(",")
    audio = gray = None
    if "audio" in use:  # inputs first: bad ones fail before the model loads
        if not video.is_file():
            raise fail(video, "video not found")
        try:
            audio = load_audio_int16(video).astype("int16")  # int16 values, as the reference's wav holds them
        except Unit2AVError as e:
            if "no audio track" in str(e):
                raise fail(video, "has no audio track; use --modalities video (mouth crops only)") from e
            raise
    if "video" in use and args.in_lip_path:
        gray = read_lip_frames(args.in_lip_path)
    model = load_av2unit(args.av2unit_path, device="cpu" if args.cpu else args.device)
    if "video" in use and gray is None:
        lip = Path(args.out_lip_path) if args.out_lip_path else out.parent / f"{video.stem}.lip.mp4"
        sibling = video.with_name(f"{video.stem}.lip.mp4")
        if sibling.is_file():
            log.info("%s exists beside the video; pass --in-lip-path to use it instead of new crops", sibling)
        log.info("no --in-lip-path: making mouth crops from %s -> %s", video, lip)
        gray = read_lip_frames(_make_crops(video, lip, args.in_bbox_path))
    mismatch = MAX_MISMATCH if args.max_mismatch is None else (None if args.max_mismatch < 0 else args.max_mismatch)
    source = args.in_lip_path or video
    try:
        indices = model.indices(audio=audio, lip=gray, modalities=use, max_mismatch=mismatch)
    except Unit2AVError as e:
        raise fail(source, str(e)) from e
    text = model.to_string(indices)
    write_bytes_atomic(out, text.encode())
    print(f"wrote {len(indices)} units ({len(indices) // 2} frames, {args.modalities}) to {out}")
    return 0
