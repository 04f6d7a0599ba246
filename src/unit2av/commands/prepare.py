"""Prepare one video for Unit2AV: 16 kHz audio, speaker embedding, face boxes, units.

  unit2av prepare --video talk.mp4 --out prep/ [--kmeans km.pt]

Writes prep/talk.wav, prep/talk.spkr.pt, prep/talk.bbox.pkl and, with --kmeans, the unit
file prep/talk.pt; then prints the `unit2av render ...` command to run next.
"""

from __future__ import annotations

import argparse

from ..faces import DETECTORS, DetectOptions


def add_arguments(p: argparse.ArgumentParser) -> None:
    d = DetectOptions()
    p.add_argument("--video", "--in-vid-path", "--in_vid_path", required=True, help="input video with speech")
    p.add_argument("--out", "--out-dir", "--out_dir", required=True, help="output folder")
    p.add_argument("--kmeans", "--km_path", "--km-path", default=None,
                   help="k-means file from `unit2av units fit`: also write the unit file")
    p.add_argument("--speaker-encoder", "--speaker_encoder", dest="speaker_encoder", default=None,
                   help="speaker encoder weights (default: the pretrained.pt inside the resemblyzer package)")
    p.add_argument("--device", default="cpu", help="device of the speaker encoder / feature model (default: cpu)")
    p.add_argument("--detector", choices=DETECTORS, default=d.detector, help="face detector (see `bbox detect`)")
    p.add_argument("--box-style", "--box_style", choices=("av2av", "square", "raw"), default=d.box_style,
                   help="face box shape (default: av2av)")
    p.add_argument("--pad", "--pads", nargs=4, type=int, default=list(d.pads),
                   metavar=("TOP", "BOTTOM", "LEFT", "RIGHT"), help="pixels added to each side of the box")
    p.add_argument("--smooth", type=int, default=d.smooth, help="box smoothing window in frames")
    p.add_argument("--nosmooth", action="store_true", help="no box smoothing")
    p.add_argument("--max-gap", "--max_gap", type=int, default=d.max_gap,
                   help="interpolate up to this many frames without a face")
    p.add_argument("--checkpoint", default="CHECKPOINT.pt", help="checkpoint named in the printed render command")
    p.add_argument("--lang", default="en", help="vocoder language named in the printed render command")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def run(args) -> int:
    from ..prepare import prepare_video, render_command

    opts = DetectOptions(detector=args.detector, box_style=args.box_style, pads=tuple(args.pad),
                         smooth=1 if args.nosmooth else args.smooth, max_gap=args.max_gap)
    res = prepare_video(args.video, args.out, kmeans=args.kmeans, detect=opts,
                        speaker_encoder=args.speaker_encoder, device=args.device, progress=not args.no_progress)
    print(f"audio:   {res.wav}")
    print(f"speaker: {res.speaker}")
    print(f"boxes:   {res.bbox} ({res.num_frames} frames, {res.frames_without_face} without a face)")
    print(f"units:   {res.units}" if res.units else "units:   (none: pass --kmeans km.pt to extract them)")
    print("next:")
    print("  " + render_command(res, checkpoint=args.checkpoint, lang=args.lang))
    return 0
