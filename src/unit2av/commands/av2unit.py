"""mAV-HuBERT units from a talking-face video (its audio track and/or 96x96 mouth crops), without fairseq.

  unit2av av2unit --in-vid-path V.mp4 --out-unit-path U.txt --av2unit-path mavhubert_large_noise.pt
                  [--modalities audio,video|audio|video] [--in-lip-path V.lip.mp4] [--in-bbox-path B.pkl]

AV2AV's ``av2unit/inference.py`` flags (snake_case spellings too). Writes the unit string (50 Hz,
space separated, no newline) as the reference does. Without ``--in-lip-path`` the mouth crops are
made from the video (face landmarks; ``--in-bbox-path`` face boxes help) and written to
``--out-lip-path`` (default: ``<video stem>.lip.mp4`` beside the unit file). The work is
``unit2av.av2unit.files.av2unit_file``, also the batch ``av2unit`` job's function.
"""

from __future__ import annotations

import argparse


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


def run(args: argparse.Namespace) -> int:
    from ..av2unit.files import av2unit_file

    result = av2unit_file(
        args.in_vid_path,
        args.out_unit_path,
        args.av2unit_path,
        modalities=args.modalities,
        in_lip_path=args.in_lip_path,
        in_bbox_path=args.in_bbox_path,
        out_lip_path=args.out_lip_path,
        max_mismatch=args.max_mismatch,
        device="cpu" if args.cpu else args.device,
    )
    print(f"wrote {result.num_units} units ({result.num_units // 2} frames, {args.modalities}) to {result.path}")
    return 0
