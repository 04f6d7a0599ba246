"""Train the unit-to-speech vocoder (CodeHiFiGAN) with HiFi-GAN discriminators.

Rerunning the same command resumes from the newest do_ checkpoint in --checkpoint_path.
Several GPUs (or CPU processes): torchrun --nproc_per_node N $(which unit2av) train-unit2a ...
"""

from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ..vocoder.state import TrainOptions

    d = TrainOptions(checkpoint_path="")
    p.add_argument("--config", required=True, help="vocoder config JSON (speech-resynthesis / AV2AV keys)")
    p.add_argument(
        "--checkpoint_path",
        "--checkpoint-path",
        default="cp_hifigan",
        help="folder for g_/do_ checkpoints, config.json and TensorBoard logs (default: cp_hifigan)",
    )
    p.add_argument(
        "--input_training_file",
        "--input-training-file",
        default=None,
        help="training manifest (overrides the config's input_training_file)",
    )
    p.add_argument(
        "--input_validation_file",
        "--input-validation-file",
        default=None,
        help="validation manifest (overrides the config's input_validation_file)",
    )
    for flag, value, text in (
        ("training_steps", d.training_steps, "stop after this many updates"),
        ("training_epochs", d.training_epochs, "stop after this many epochs"),
        ("validation_interval", d.validation_interval, "validate on whole utterances every N updates (0: never)"),
        ("checkpoint_interval", d.checkpoint_interval, "write g_/do_ every N updates"),
        ("stdout_interval", d.stdout_interval, "log losses every N updates"),
        ("summary_interval", d.summary_interval, "TensorBoard scalars every N updates"),
    ):
        p.add_argument(
            f"--{flag}", f"--{flag.replace('_', '-')}", type=int, default=value, help=f"{text} (default: {value})"
        )
    p.add_argument("--device", default=d.device, help="auto | cpu | cuda | cuda:N (default: auto)")
    p.add_argument("--amp", action="store_true", help="float16 mixed precision (CUDA only)")
    p.add_argument(
        "--num_workers",
        "--num-workers",
        type=int,
        default=None,
        help="data-loader workers per process (default: the config's num_workers)",
    )
    p.add_argument(
        "--batch_size",
        "--batch-size",
        type=int,
        default=None,
        help="batch size per process (overrides the config's batch_size)",
    )
    p.add_argument(
        "--max_nonfinite",
        "--max-nonfinite",
        type=int,
        default=d.max_nonfinite,
        help=f"stop after this many non-finite steps in a row (default: {d.max_nonfinite})",
    )
    p.add_argument(
        "--disc_width",
        "--disc-width",
        type=float,
        default=d.disc_width,
        help="discriminator channel multiplier; 1.0 = HiFi-GAN (default), smaller for quick tests",
    )
    p.add_argument(
        "--init",
        default=None,
        help="fresh run only: start the generator from these weights (a g_ checkpoint, "
        "{'generator': sd}, or an AV2AV container with --init_lang); discriminators start fresh",
    )
    p.add_argument("--init_lang", "--init-lang", default=None, help="language key of an AV2AV --init container")
    # Flags of the original scripts, accepted and ignored (torchrun sets LOCAL_RANK).
    p.add_argument("--local_rank", "--local-rank", type=int, default=None, help=argparse.SUPPRESS)
    p.add_argument("--fine_tuning", default=None, help=argparse.SUPPRESS)
    p.add_argument("--group_name", default=None, help=argparse.SUPPRESS)


def run(args: argparse.Namespace) -> int:
    import dataclasses

    from ..vocoder.config import load_config
    from ..vocoder.state import TrainOptions
    from ..vocoder.train import train

    cfg = load_config(args.config)
    overrides = {
        k: getattr(args, k)
        for k in ("input_training_file", "input_validation_file", "batch_size")
        if getattr(args, k) is not None
    }
    cfg = dataclasses.replace(cfg, **overrides).validate(args.config)
    names = {f.name for f in dataclasses.fields(TrainOptions)}
    opts = TrainOptions(**{k: v for k, v in vars(args).items() if k in names})
    state = train(cfg, opts)
    if state.dist.main:
        print(
            f"trained {state.step} steps; checkpoints in {opts.checkpoint_path}"
            + (
                f" (best validation mel error {state.best_val_error:.4f})"
                if state.best_val_error < float("inf")
                else ""
            )
        )
    return 0
