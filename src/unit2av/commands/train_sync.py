"""Train the unit <-> mouth sync expert (SyncNet-style) that train-face's sync loss uses."""

from __future__ import annotations

import argparse

from .train_face import add_int_options


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ..face.train_sync import SyncConfig

    d = SyncConfig(checkpoint_path="", input_training_file="")
    p.add_argument("--checkpoint_path", "--checkpoint-path", default="cp_sync", help="output folder (default: cp_sync)")
    p.add_argument("--input_training_file", "--input-training-file", required=True, help="training clip manifest")
    p.add_argument("--input_validation_file", "--input-validation-file", default=None, help="held-out clips")
    add_int_options(
        p,
        d,
        "num_embeddings",
        "dim",
        "channels",
        "batch_size",
        "seed",
        "training_steps",
        "validation_interval",
        "checkpoint_interval",
        "valid_windows",
    )
    p.add_argument("--learning_rate", "--learning-rate", type=float, default=d.learning_rate)
    p.add_argument("--max_seconds", "--max-seconds", type=float, default=None, help="wall-clock training budget")
    p.add_argument("--device", default=d.device, help="auto | cpu | cuda (default: auto)")


def run(args: argparse.Namespace) -> int:
    import dataclasses

    from ..face.train_sync import SyncConfig, train_sync

    names = {f.name for f in dataclasses.fields(SyncConfig)}
    r = train_sync(SyncConfig(**{k: v for k, v in vars(args).items() if k in names}))
    print(f"trained to step {r['steps']}; checkpoints in {args.checkpoint_path}")
    if r["last"]:
        print(
            f"held-out accuracy {r['first']['accuracy']:.3f} at start -> {r['last']['accuracy']:.3f} "
            f"(pairs ranked right: {r['last']['pair_accuracy']:.3f})"
        )
    return 0
