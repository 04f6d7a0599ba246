"""The demo. Default: a dubbed talking-face video from the bundled models (offline, seconds on a CPU).

--train: the Unit2A training demo instead (espeak-ng corpus -> units -> a small vocoder trained for
~2 minutes -> held-out sentences in each speaker's voice).
"""

from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", default="demo", help="output folder (default: ./demo)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, ...")
    p.add_argument(
        "--train",
        action="store_true",
        help="run the Unit2A training demo (corpus, units, ~2 min vocoder training) instead",
    )
    p.add_argument(
        "--train-seconds",
        "--train_seconds",
        type=float,
        default=120.0,
        help="--train: wall-clock training budget in seconds (default: 120)",
    )
    p.add_argument("--seed", type=int, default=0, help="--train: corpus, k-means and training seed")


def _run_train_demo(args: argparse.Namespace) -> int:
    from ..demo.train import run_demo

    r = run_demo(args.out, train_seconds=args.train_seconds, device=args.device, seed=args.seed)
    print(f"trained {r.steps} steps; checkpoint: {r.checkpoint}")
    if r.val_error_start is not None and r.val_error_end is not None:
        print(f"validation mel error: {r.val_error_start:.3f} at step 0 -> best {r.val_error_end:.3f}")
    print("held-out sentences, synthesised in each speaker's voice:")
    for w in r.wavs:
        print(f"  {w}")
    print(f"everything else (corpus, units, manifests, TensorBoard logs) is under {r.out_dir}/")
    return 0


def run(args: argparse.Namespace) -> int:
    if args.train:
        return _run_train_demo(args)
    from ..demo.video import run_video_demo

    r = run_video_demo(args.out, device=args.device)
    print(f"{r.seconds:.1f} s of speech in two voices, {r.frames} frames rendered by the bundled demo-grade models:")
    for path in (r.video, r.preview, r.spectrogram):
        print(f"  {path}")
    return 0
