"""Render a dubbed, lip-synced video from units, the source video and its face boxes.

Example (the seed's inference_unit2av.py flags):
  unit2av render --in-unit-path U.txt --in-vid-path V.mp4 --in-bbox-path V.bbox.pkl
                 --out-vid-path O.mp4 --tgt-lang ko --unit2av-path unit_av_renderer.pt
"""

from __future__ import annotations

import argparse

from ..io.video_writer import DEFAULT_PRESET, X264_PRESETS
from ..pipeline.paste import BLENDS
from ..pipeline.render import DEFAULT_BATCH_FRAMES, render
from ..runtime.fast import BACKENDS
from ..timing import VIDEO_FPS


def add_preset_argument(parser: argparse.ArgumentParser) -> None:
    """``--encoder-preset``: libx264's speed/size trade-off for the output video (render and dub)."""
    parser.add_argument(
        "--encoder-preset",
        "--encoder_preset",
        dest="encoder_preset",
        choices=X264_PRESETS,
        default=DEFAULT_PRESET,
        help=f"H.264 (libx264) preset: faster = larger file at the same quality (CRF 18); default {DEFAULT_PRESET}",
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    req = parser.add_argument_group("required")
    req.add_argument(
        "--in-unit-path",
        "--in_unit_path",
        required=True,
        help="units: .txt of space-separated ids, or a .pt with 'code'",
    )
    req.add_argument("--in-vid-path", "--in_vid_path", required=True, help="source video (or a still image)")
    req.add_argument(
        "--in-bbox-path",
        "--in_bbox_path",
        required=True,
        help="face-box pickle: one [x1, y1, x2, y2] or None per frame",
    )
    req.add_argument("--out-vid-path", "--out_vid_path", required=True, help="output .mp4")
    req.add_argument("--tgt-lang", "--tgt_lang", required=True, help="language of the vocoder in the checkpoint")
    req.add_argument(
        "--unit2av-path", "--unit2av_path", required=True, help="AV2AV checkpoint {'audio': {lang: ...}, 'video': ...}"
    )
    parser.add_argument(
        "--config",
        default=None,
        help="vocoder config JSON (default: the one stored in the checkpoint, else config.json "
        "beside it, else AV2AV's)",
    )
    parser.add_argument(
        "--speaker-encoder",
        "--speaker_encoder",
        default=None,
        help="GE2E speaker-encoder weights (default: Resemblyzer's GE2E weights, bundled)",
    )
    parser.add_argument(
        "--speaker-wav", "--speaker_wav", default=None, help="voice reference instead of the video's own audio track"
    )
    parser.add_argument(
        "--no-dur-prediction",
        "--no_dur_prediction",
        dest="dur_prediction",
        action="store_false",
        help="units already carry durations: no dedup, no prediction",
    )
    parser.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda, cuda:1 ...")
    parser.add_argument(
        "--batch-size",
        "--batch_size",
        type=int,
        default=DEFAULT_BATCH_FRAMES,
        help=f"frames per face-renderer forward, in whole 10-frame windows (default {DEFAULT_BATCH_FRAMES})",
    )
    parser.add_argument(
        "--paste",
        choices=BLENDS,
        default="feather",
        help="feather: blend a soft border (default); hard: the reference's paste",
    )
    parser.add_argument(
        "--backend",
        choices=BACKENDS,
        default="auto",
        help="inference path: auto = the fastest of eager/folded/torch on this machine (timed once, cached); "
        "compile = torch.compile; onnx = ONNX Runtime (CPU); eager = the plain modules",
    )
    add_preset_argument(parser)


def run(args: argparse.Namespace) -> int:
    result = render(
        args.in_unit_path,
        args.in_vid_path,
        args.in_bbox_path,
        args.out_vid_path,
        args.tgt_lang,
        args.unit2av_path,
        config=args.config,
        speaker_encoder=args.speaker_encoder,
        speaker_wav=args.speaker_wav,
        dur_prediction=args.dur_prediction,
        device=args.device,
        batch_size=args.batch_size,
        blend=args.paste,
        backend=args.backend,
        preset=args.encoder_preset,
    )
    print(
        f"wrote {result.path}: {result.num_frames} frames at {VIDEO_FPS} fps, "
        f"{result.num_samples / result.sample_rate:.2f} s of speech"
    )
    return 0
