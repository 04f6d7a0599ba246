"""Train the unit vocoder (CodeHiFiGAN): the loop around ``vocoder.step.train_step``, loaders, validation.

One process: ``unit2av train-unit2a --config C --checkpoint_path D``. Several GPUs (or CPU
processes): ``torchrun --nproc_per_node N -m unit2av.cli train-unit2a ...`` (DDP; NCCL on
CUDA, gloo on the CPU; ``batch_size`` is per process). Rerunning the same command resumes
from the newest ``do_`` in ``--checkpoint_path``.

The loss weights are the config's, by name (``unit2av.vocoder.losses.loss_weights``). With
``lambda_fm`` and ``lambda_adv`` both 0 the discriminators sit out (built and saved, never run)
and the generator trains on its other terms alone: the recipe of the bundled vocoder
(``scripts/train_default_vocoder.py``).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from ..errors import fail
from ..training import (
    Deadline,
    close_distributed,
    data_workers,
    init_distributed,
    record_validation,
    tensorboard,
    weighted_sum,
    wrap_ddp,
)
from .config import VocoderConfig, save_config
from .data import SegmentSampler, UnitAudioDataset, speaker_table
from .losses import mel_loss, pitch_loss, stft_loss
from .manifest import read_manifest
from .state import (
    TrainOptions,
    TrainState,
    build_state,
    latest_checkpoint,
    load_checkpoint,
    save_checkpoint,
)
from .step import train_step

log = logging.getLogger(__name__)


# ------------------------------------------------------------------------------ validation
@torch.no_grad()
def validate(state: TrainState, loader: DataLoader, keep: int = 0) -> tuple[float, list[dict]]:
    """The validation error of the generator on whole utterances (predicted f0, as in inference).

    Args:
        state: the training state; ``opts.validation_terms`` name the terms of the error.
        loader: batches of one whole utterance (``UnitAudioDataset(segment=False)``).
        keep: return this many (real, generated) examples for TensorBoard.

    Returns:
        ``(mean error, [{"y", "y_hat", "mel", "mel_hat"}, ...])``; the error is the mel L1, plus
        each other named term times its weight / ``lambda_mel``.
    """
    g, names, w = state.g, state.opts.validation_terms, state.weights
    scale = {name: w[name] / w["mel"] for name in names}
    g.eval()
    total, count, examples = 0.0, 0, []
    try:
        for batch in loader:
            code = batch["code"].to(state.device)
            spkr = batch["spkr"].to(state.device) if "spkr" in batch else None
            y_hat, _ = g(code=code, spkr=spkr)  # (1, 1, T)
            mel_hat = state.mel(y_hat.float())
            y, y_mel = batch["audio"].to(state.device), batch["mel"].to(state.device)
            terms = {
                "mel": mel_loss(y_mel, mel_hat),
                "pitch": pitch_loss(y, y_hat, state.cfg.sampling_rate) if "pitch" in names else None,
                "stft": stft_loss(y, y_hat) if "stft" in names else None,
            }
            total += float(weighted_sum(terms, scale))
            count += 1
            if len(examples) < keep:
                examples.append(
                    {
                        "y": batch["audio"][0],
                        "y_hat": y_hat[0, 0].cpu(),
                        "mel": y_mel[0].cpu(),
                        "mel_hat": mel_hat[0].cpu(),
                    }
                )
    finally:
        g.train()
    return total / max(count, 1), examples


# ------------------------------------------------------------------------------ data
def make_loaders(state: TrainState, train_file, valid_file) -> tuple[DataLoader, SegmentSampler, DataLoader | None]:
    """Training loader (random aligned crops, sharded by rank) and, on rank 0, the validation loader."""
    cfg, opts, dist = state.cfg, state.opts, state.dist
    if cfg.f0:
        raise fail(None, "f0-conditioned vocoders (config 'f0': true) cannot be trained here yet")
    train_entries = read_manifest(train_file)
    if cfg.multispkr and not cfg.embedder_params and state.speakers is None:
        state.speakers = speaker_table(train_entries)
    trainset = UnitAudioDataset(train_entries, cfg, segment=True, speakers=state.speakers)
    sampler = SegmentSampler(trainset, dist.world_size, dist.rank, seed=cfg.seed)
    workers = data_workers(cfg.num_workers, opts.num_workers, state.device)
    loader = DataLoader(
        trainset,
        batch_size=cfg.batch_size,
        sampler=sampler,
        num_workers=workers,
        drop_last=True,
        pin_memory=state.device.type == "cuda",
        persistent_workers=workers > 0,
        generator=torch.Generator().manual_seed(cfg.seed),
    )
    if len(loader) == 0:
        raise fail(train_file, f"{len(sampler)} utterances per process is fewer than batch_size {cfg.batch_size}")
    valid = None
    if dist.main and valid_file and opts.validation_interval > 0:
        validset = UnitAudioDataset(read_manifest(valid_file), cfg, segment=False, speakers=state.speakers)
        valid = DataLoader(validset, batch_size=1, shuffle=False, num_workers=0)
    return loader, sampler, valid


# ------------------------------------------------------------------------------ logging
def _spec_image(mel: torch.Tensor) -> np.ndarray:
    """(M, F) log-mel -> (3, M, F) uint8 image, low frequencies at the bottom."""
    m = mel.float().numpy()[::-1]
    m = (m - m.min()) / max(float(m.max() - m.min()), 1e-6)
    rgb = np.stack([np.clip(1.5 * m - 0.5, 0, 1), m, np.clip(1.0 - 1.5 * m, 0, 1) * m * 2], axis=0)  # dark blue->yellow
    return (rgb * 255).astype(np.uint8)


def _log_validation(state: TrainState, writer, error: float, examples: list[dict]) -> None:
    tag = "mel_spec_error" if tuple(state.opts.validation_terms) == ("mel",) else "objective"
    writer.add_scalar(f"validation/{tag}", error, state.step)
    sr = state.cfg.sampling_rate
    for j, ex in enumerate(examples):
        if state.step == 0 or "logged_gt" not in state.extra:
            writer.add_audio(f"gt/y_{j}", ex["y"].unsqueeze(0), state.step, sr)
            writer.add_image(f"gt/y_spec_{j}", _spec_image(ex["mel"]), state.step)
        writer.add_audio(f"generated/y_hat_{j}", ex["y_hat"].unsqueeze(0), state.step, sr)
        writer.add_image(f"generated/y_hat_spec_{j}", _spec_image(ex["mel_hat"]), state.step)
    state.extra["logged_gt"] = True


def _run_validation(state: TrainState, valid: DataLoader, writer, folder: Path) -> float:
    """Validate, log, and write ``g_best``/``do_best`` when the error improved (not at step 0)."""
    error, examples = validate(state, valid, keep=state.opts.audio_samples)
    _log_validation(state, writer, error, examples)
    log.info(
        "step %d: validation error (%s) %.4f (best %.4f)",
        state.step,
        " + ".join(state.opts.validation_terms),
        error,
        state.best_val_error,
    )
    if record_validation(state, error):
        save_checkpoint(state, folder, "best")
    return error


# ------------------------------------------------------------------------------ the loop
def _after_step(state: TrainState, losses: dict, writer, valid, folder: Path, pbar, t0: float) -> None:
    """Rank 0's periodic work after an update: console, TensorBoard, validation, checkpoints."""
    opts, step = state.opts, state.step
    pbar.update(1)
    if step % max(opts.stdout_interval, 1) == 0:
        pbar.set_postfix(gen=f"{losses['total']:.3f}", mel=f"{losses['mel']:.3f}")
        log.info(
            "step %d: gen total %.3f, mel error %.3f, disc %.3f, %.3f s/step",
            step,
            losses["total"],
            losses["mel"],
            losses.get("disc", 0.0),
            time.time() - t0,
        )
    if step % max(opts.summary_interval, 1) == 0:
        writer.add_scalar("training/gen_loss_total", losses["total"], step)
        writer.add_scalar("training/mel_spec_error", losses["mel"], step)
        for name, value in losses.items():
            if name not in ("total", "mel"):
                writer.add_scalar(f"training/{name}", value, step)
        writer.add_scalar("training/learning_rate", state.optim_g.param_groups[0]["lr"], step)
    if valid is not None and step % opts.validation_interval == 0:
        _run_validation(state, valid, writer, folder)
    if opts.checkpoint_interval > 0 and step % opts.checkpoint_interval == 0:
        save_checkpoint(state, folder)


def _run_epochs(state: TrainState, loader, sampler, valid, writer, folder: Path) -> None:
    opts = state.opts
    pbar = tqdm(
        total=opts.training_steps,
        initial=state.step,
        desc="train-unit2a",
        unit="step",
        disable=not state.dist.main,
        dynamic_ncols=True,
    )
    deadline = Deadline(opts.max_seconds)
    try:
        while (
            state.step < opts.training_steps
            and state.epoch < opts.training_epochs
            and not deadline.passed(state.device, state.dist)
        ):
            sampler.set_position(state.epoch, state.epoch_batches * state.cfg.batch_size)
            for batch in loader:
                t0 = time.time()
                losses = train_step(state, batch)
                if "skipped" in losses:
                    continue
                if state.dist.main:
                    _after_step(state, losses, writer, valid, folder, pbar, t0)
                if state.step >= opts.training_steps or deadline.passed(state.device, state.dist):
                    break
            else:  # the epoch ran to its end
                state.epoch += 1
                state.epoch_batches = 0
                state.sched_g.step()
                state.sched_d.step()
    finally:
        pbar.close()


def _wrap_ddp(state: TrainState) -> None:
    unused = state.g.dur_predictor is not None and not state.cfg.dur_prediction_weight
    state.generator = wrap_ddp(state.generator, state.device, find_unused_parameters=unused)
    state.mpd = wrap_ddp(state.mpd, state.device)
    state.msd = wrap_ddp(state.msd, state.device)


def train(cfg: VocoderConfig, opts: TrainOptions) -> TrainState:
    """Train (or resume) until ``training_steps`` updates, ``training_epochs`` epochs or ``max_seconds``.

    Args:
        cfg: the vocoder/training config (``input_training_file`` / ``input_validation_file`` set).
        opts: run options (checkpoint folder, intervals, device, ...).

    Returns:
        The final training state (a final checkpoint is written on rank 0).
    """
    if not cfg.input_training_file:
        raise fail(None, "no training manifest: set input_training_file in the config or --input_training_file")
    unknown = sorted(set(opts.validation_terms) - {"mel", "pitch", "stft"})
    if unknown or "mel" not in opts.validation_terms:
        raise fail(None, f"validation_terms {tuple(opts.validation_terms)}: need 'mel', may add 'pitch', 'stft'")
    folder = Path(opts.checkpoint_path)
    dist = init_distributed(opts.device)
    state = build_state(cfg, opts, dist)
    latest = latest_checkpoint(folder)
    if latest is not None:
        load_checkpoint(state, latest)
    loader, sampler, valid = make_loaders(state, cfg.input_training_file, cfg.input_validation_file)
    if dist.world_size > 1:
        _wrap_ddp(state)
    writer = None
    flush = state.device.type == "cpu" and torch.set_flush_denormal(True)  # denormal floats slow CPU convs
    if dist.main:
        writer = tensorboard(folder)  # creates the folder
        save_config(cfg, folder / "config.json")
    try:
        if dist.main and state.step == 0 and valid is not None:
            _run_validation(state, valid, writer, folder)
        _run_epochs(state, loader, sampler, valid, writer, folder)
        if dist.main and not (folder / f"do_{state.step:08d}").is_file():
            save_checkpoint(state, folder)
        if dist.world_size > 1:
            torch.distributed.barrier()
    finally:
        if flush:
            torch.set_flush_denormal(False)
        if writer is not None:
            writer.close()
        close_distributed(dist)
    return state


__all__ = ["TrainOptions", "make_loaders", "train", "validate"]
