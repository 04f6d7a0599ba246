"""Run the Unit2A demo: espeak-ng corpus -> units -> a small vocoder trained for ~2 minutes -> held-out speech."""

from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", default="demo", help="output folder (default: ./demo)")
    p.add_argument("--train-seconds", "--train_seconds", type=float, default=120.0,
                   help="wall-clock training budget in seconds (default: 120)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, ...")
    p.add_argument("--seed", type=int, default=0, help="corpus, k-means and training seed")


def run(args: argparse.Namespace) -> int:
    from ..demo import run_demo

    r = run_demo(args.out, train_seconds=args.train_seconds, device=args.device, seed=args.seed)
    print(f"trained {r.steps} steps; checkpoint: {r.checkpoint}")
    if r.val_error_start is not None and r.val_error_end is not None:
        print(f"validation mel error: {r.val_error_start:.3f} at step 0 -> best {r.val_error_end:.3f}")
    print("held-out sentences, synthesised in each speaker's voice:")
    for w in r.wavs:
        print(f"  {w}")
    print(f"everything else (corpus, units, manifests, TensorBoard logs) is under {r.out_dir}/")
    return 0
