"""Train the face renderer (AV2AV FaceRenderer) on talking-face clips: L1 (+ sync expert, + GAN).

Rerunning the same command resumes from the newest fo_ checkpoint in --checkpoint_path.
Several GPUs: torchrun --nproc_per_node N $(which unit2av) train-face ...
"""

from __future__ import annotations

import argparse


def add_int_options(p: argparse.ArgumentParser, defaults, *names: str) -> None:
    """``--name`` / ``--name-with-dashes`` integer options, each defaulting to ``defaults.<name>``."""
    for name in names:
        p.add_argument(
            f"--{name}",
            f"--{name.replace('_', '-')}",
            type=int,
            default=getattr(defaults, name),
            help=f"(default: {getattr(defaults, name)})",
        )


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ..face.state import FaceTrainConfig, FaceTrainOptions

    c, d = FaceTrainConfig(), FaceTrainOptions(checkpoint_path="")
    p.add_argument("--config", default=None, help="face config JSON (keys of FaceTrainConfig; default: AV2AV layout)")
    p.add_argument(
        "--checkpoint_path",
        "--checkpoint-path",
        default="cp_face",
        help="folder for f_/fo_ checkpoints, face_config.json and TensorBoard logs (default: cp_face)",
    )
    p.add_argument("--input_training_file", "--input-training-file", default=None, help="training clip manifest")
    p.add_argument("--input_validation_file", "--input-validation-file", default=None, help="held-out clip manifest")
    p.add_argument("--init", default=None, help="start from these renderer weights (e.g. unit_av_renderer.pt)")
    p.add_argument("--sync_expert", "--sync-expert", default=None, help="sync expert from train-sync")
    for name, kind in (
        ("width", int),
        ("num_embeddings", int),
        ("batch_size", int),
        ("learning_rate", float),
        ("l1_weight", float),
        ("sync_weight", float),
        ("adv_weight", float),
        ("seed", int),
    ):
        p.add_argument(
            f"--{name}",
            f"--{name.replace('_', '-')}",
            type=kind,
            default=None,
            help=f"overrides the config (default: {getattr(c, name)})",
        )
    add_int_options(
        p,
        d,
        "training_steps",
        "validation_interval",
        "checkpoint_interval",
        "stdout_interval",
        "summary_interval",
        "num_workers",
        "valid_windows",
    )
    p.add_argument("--max_seconds", "--max-seconds", type=float, default=None, help="wall-clock training budget")
    p.add_argument("--device", default=d.device, help="auto | cpu | cuda | cuda:N (default: auto)")
    p.add_argument("--amp", action="store_true", help="float16 mixed precision (CUDA only)")
    p.add_argument("--local_rank", "--local-rank", type=int, default=None, help=argparse.SUPPRESS)


def run(args: argparse.Namespace) -> int:
    import dataclasses

    from ..face.state import FaceTrainOptions, load_face_config
    from ..face.train import train_face

    keys = (
        "width",
        "num_embeddings",
        "batch_size",
        "learning_rate",
        "l1_weight",
        "sync_weight",
        "adv_weight",
        "seed",
        "input_training_file",
        "input_validation_file",
    )
    cfg = load_face_config(args.config, **{k: getattr(args, k) for k in keys})
    names = {f.name for f in dataclasses.fields(FaceTrainOptions)}
    opts = FaceTrainOptions(**{k: v for k, v in vars(args).items() if k in names})
    state = train_face(cfg, opts)
    print(
        f"trained to step {state.step}; validation mouth L1 {state.first_val_error} at start, "
        f"best {state.best_val_error:.4f}; checkpoints in {args.checkpoint_path}"
    )
    return 0
