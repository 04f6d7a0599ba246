"""Face boxes for Unit2AV: detect and track a face, edit frame ranges, inspect, draw.

unit2av bbox detect --video V.mp4 --out V.bbox.pkl      one box (or None) per frame
unit2av bbox edit V.bbox.pkl --none 41:84 --none 161:224  ranges end exclusive; keeps V.bbox.pkl.bak
unit2av bbox info V.bbox.pkl --video V.mp4                frames, None ranges, sizes, boxes off-frame
unit2av bbox show --video V.mp4 --bbox V.bbox.pkl --out sheet.png   (or --out overlay.mp4)
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..prepare.faces import DETECTORS, DetectOptions


def add_detector_arguments(p: argparse.ArgumentParser) -> None:
    """Detector and box-shape flags shared by ``bbox detect`` and ``prepare``."""
    d = DetectOptions()
    p.add_argument(
        "--detector",
        choices=DETECTORS,
        default=d.detector,
        help="face detector (auto: dlib when installed, else OpenCV's Haar cascade)",
    )
    p.add_argument(
        "--box-style",
        "--box_style",
        choices=("av2av", "square", "raw"),
        default=d.box_style,
        help="av2av: tall boxes as the AV2AV renderer was trained on; square; raw detector boxes",
    )
    p.add_argument(
        "--pad",
        "--pads",
        nargs=4,
        type=int,
        default=list(d.pads),
        metavar=("TOP", "BOTTOM", "LEFT", "RIGHT"),
        help="pixels added to each side (Wav2Lip's --pads)",
    )
    p.add_argument("--smooth", type=int, default=d.smooth, help="moving-average window in frames")
    p.add_argument("--nosmooth", action="store_true", help="no temporal smoothing")
    p.add_argument(
        "--max-gap",
        "--max_gap",
        type=int,
        default=d.max_gap,
        help="interpolate up to this many frames without a face; longer gaps stay None",
    )


def detector_options(args: argparse.Namespace, **extra) -> DetectOptions:
    """``DetectOptions`` from the flags of ``add_detector_arguments`` (plus ``extra`` fields)."""
    return DetectOptions(
        detector=args.detector,
        box_style=args.box_style,
        pads=tuple(args.pad),
        smooth=1 if args.nosmooth else args.smooth,
        max_gap=args.max_gap,
        **extra,
    )


def _add_detect(sub) -> None:
    d = DetectOptions()
    p = sub.add_parser("detect", help="detect and follow one face; write the box pickle")
    p.add_argument("--video", "--in-vid-path", "--in_vid_path", "--face", required=True, help="input video")
    p.add_argument(
        "--out",
        "--out-bbox-path",
        "--out_bbox_path",
        help="box pickle to write (default: <video stem>.bbox.pkl beside the video)",
    )
    add_detector_arguments(p)
    pick = p.add_mutually_exclusive_group()
    pick.add_argument(
        "--face-index",
        "--face_index",
        type=int,
        default=None,
        help="follow the N-th face from the left (0 = leftmost) instead of the largest",
    )
    pick.add_argument("--largest", action="store_true", help="largest face of every frame, no tracking")
    p.add_argument(
        "--batch-size",
        "--face_det_batch_size",
        "--face-det-batch-size",
        type=int,
        default=d.batch_size,
        help="frames decoded and detected per step",
    )
    p.add_argument(
        "--resize-factor",
        "--resize_factor",
        type=float,
        default=d.resize_factor,
        help="detect on frames shrunk by this factor (faster on large videos)",
    )
    p.add_argument("--clamp", action="store_true", help="clip boxes to the frame")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="bbox_command", metavar="ACTION", required=True)
    _add_detect(sub)
    e = sub.add_parser("edit", help="set frame ranges to None (end exclusive)")
    e.add_argument("bbox", help="box pickle")
    e.add_argument("--none", action="append", default=[], metavar="A:B", help="set frames A..B-1 to None")
    e.add_argument(
        "--keep", action="append", default=[], metavar="A:B", help="keep frames A..B-1, set every other frame to None"
    )
    e.add_argument("--out", help="write here instead of editing in place (in place keeps <bbox>.bak)")
    i = sub.add_parser("info", help="frames, None ranges, box sizes, boxes outside the frame")
    i.add_argument("bbox", help="box pickle")
    i.add_argument("--video", help="the video, to check boxes against its frame size")
    s = sub.add_parser("show", help="draw boxes: contact sheet (.png) or overlay video (.mp4)")
    s.add_argument("--video", "--in-vid-path", "--in_vid_path", required=True, help="the video")
    s.add_argument("--bbox", "--in-bbox-path", "--in_bbox_path", required=True, help="box pickle")
    s.add_argument("--out", required=True, help="sheet.png (every N-th frame) or overlay.mp4 (every frame)")
    s.add_argument("--every", type=int, default=None, help="contact sheet: every N-th frame (default: ~48 tiles)")


def _detect(args) -> int:
    from ..io.boxes import write_boxes
    from ..prepare.faces import detect_video

    opts = detector_options(
        args,
        face_index=args.face_index,
        largest=args.largest,
        batch_size=args.batch_size,
        resize_factor=args.resize_factor,
        clamp=args.clamp,
    )
    out = Path(args.out) if args.out else Path(args.video).with_suffix(".bbox.pkl")
    result = detect_video(args.video, opts, progress=not args.no_progress)
    write_boxes(result.boxes, out)
    print(
        f"{out}: {result.num_frames} frames, {result.fps:.1f} frames/s ({result.detector}), "
        f"face detected on {result.detected}, {result.missing} frames without a face"
    )
    return 0


def run(args) -> int:
    if args.bbox_command == "detect":
        return _detect(args)
    if args.bbox_command == "edit":
        from ..prepare.edit import edit_box_file

        target, backup = edit_box_file(args.bbox, none=args.none, keep=args.keep, out=args.out)
        print(f"wrote {target}" + (f" (original kept as {backup})" if backup else ""))
        return 0
    if args.bbox_command == "info":
        from ..io.boxes import read_boxes
        from ..prepare.edit import box_info, format_box_info

        boxes = read_boxes(args.bbox)
        size = (None, None)
        if args.video:
            from ..io.media import probe_video

            v = probe_video(args.video)
            size = (v.width, v.height)
            if v.num_frames != len(boxes):
                print(f"warning: the video has {v.num_frames} frames, the pickle {len(boxes)} boxes")
        print(format_box_info(box_info(boxes, *size)))
        return 0
    from ..io.boxes import read_boxes
    from ..prepare.draw import show_boxes

    out = show_boxes(args.video, read_boxes(args.bbox), args.out, every=args.every)
    print(f"wrote {out}")
    return 0
