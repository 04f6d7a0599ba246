"""Prepare one video for Unit2AV: 16 kHz audio, speaker embedding, face boxes, units.

  unit2av prepare --video talk.mp4 --out prep/ [--kmeans km.pt]

Writes prep/talk.wav, prep/talk.spkr.pt, prep/talk.bbox.pkl, the mouth crops prep/talk.lip.mp4
(with the `mouth` extra; --no-lip skips them) and, with --kmeans, the unit file prep/talk.pt; then
prints the `unit2av render ...` command to run next.
"""

from __future__ import annotations

import argparse

from .bbox import add_detector_arguments, detector_options


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--video", "--in-vid-path", "--in_vid_path", required=True, help="input video with speech")
    p.add_argument("--out", "--out-dir", "--out_dir", required=True, help="output folder")
    p.add_argument(
        "--kmeans",
        "--km_path",
        "--km-path",
        default=None,
        help="k-means file from `unit2av units fit`: also write the unit file",
    )
    p.add_argument(
        "--speaker-encoder",
        "--speaker_encoder",
        dest="speaker_encoder",
        default=None,
        help="speaker encoder weights (default: Resemblyzer's pretrained GE2E weights, bundled)",
    )
    p.add_argument("--device", default="cpu", help="device of the speaker encoder / feature model (default: cpu)")
    add_detector_arguments(p)
    p.add_argument("--checkpoint", default="CHECKPOINT.pt", help="checkpoint named in the printed render command")
    p.add_argument("--lang", default="en", help="vocoder language named in the printed render command")
    p.add_argument(
        "--no-lip",
        "--no_lip",
        dest="no_lip",
        action="store_true",
        help="skip the 96x96 mouth crops (.lip.mp4; landmarks on every frame, the slowest step)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def run(args) -> int:
    from ..prepare.video import prepare_video, render_command

    opts = detector_options(args)
    res = prepare_video(
        args.video,
        args.out,
        kmeans=args.kmeans,
        detect=opts,
        speaker_encoder=args.speaker_encoder,
        device=args.device,
        progress=not args.no_progress,
        lip=not args.no_lip,
    )
    print(f"audio:   {res.wav}")
    print(f"speaker: {res.speaker}")
    print(f"boxes:   {res.bbox} ({res.num_frames} frames, {res.frames_without_face} without a face)")
    if not args.no_lip:
        print(f"mouth:   {res.lip}" if res.lip else f"mouth:   (none: {res.lip_problem})")
    print(f"units:   {res.units}" if res.units else "units:   (none: pass --kmeans km.pt to extract them)")
    print("next:")
    print("  " + render_command(res, checkpoint=args.checkpoint, lang=args.lang))
    return 0
