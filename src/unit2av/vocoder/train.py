"""Train the unit vocoder (CodeHiFiGAN): ``train_step`` over a ``TrainState`` and the loop around it.

One process: ``unit2av train-unit2a --config C --checkpoint_path D``. Several GPUs (or CPU
processes): ``torchrun --nproc_per_node N -m unit2av.cli train-unit2a ...`` (DDP; NCCL on
CUDA, gloo on the CPU; ``batch_size`` is per process). Rerunning the same command resumes
from the newest ``do_`` in ``--checkpoint_path``.
"""

from __future__ import annotations

import logging
import math
import os
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from ..errors import fail
from ..spectral import frame_f0
from .config import VocoderConfig, save_config
from .data import SegmentSampler, UnitAudioDataset, speaker_table
from .losses import (
    discriminator_loss,
    feature_loss,
    generator_loss,
    generator_objective,
    mel_loss,
    pitch_loss,
    stft_loss,
)
from .manifest import read_manifest
from .state import (
    Dist,
    TrainOptions,
    TrainState,
    build_state,
    latest_checkpoint,
    load_checkpoint,
    record_validation,
    save_checkpoint,
)

log = logging.getLogger(__name__)


# ------------------------------------------------------------------------------ one step
def _all_finite(state: TrainState, *tensors: torch.Tensor) -> bool:
    """True when every tensor is finite on every rank (ranks must agree to stay in step)."""
    flag = torch.tensor([float(all(bool(torch.isfinite(t).all()) for t in tensors))], device=state.device)
    if state.dist.world_size > 1:
        torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MIN)
    return bool(flag.item() > 0)


def _skip(state: TrainState, what: str) -> dict[str, float]:
    """Drop a step with a non-finite loss; stop after ``max_nonfinite`` in a row."""
    state.optim_g.zero_grad(set_to_none=True)
    state.optim_d.zero_grad(set_to_none=True)
    state.nonfinite += 1
    log.warning("step %d: non-finite %s, step skipped (%d in a row)", state.step + 1, what, state.nonfinite)
    if state.nonfinite >= state.opts.max_nonfinite:
        raise fail(state.opts.checkpoint_path, f"training diverged: {state.nonfinite} non-finite steps in a row "
                                               f"at step {state.step + 1} (last: {what}); lower learning_rate "
                                               f"or check the data")
    return {"skipped": 1.0}


def _update(loss: torch.Tensor, optim: torch.optim.Optimizer, scaler: torch.amp.GradScaler) -> None:
    optim.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    scaler.step(optim)
    scaler.update()


def train_step(state: TrainState, batch: dict) -> dict[str, float]:
    """One discriminator and one generator update on a batch from ``UnitAudioDataset``.

    Args:
        state: the training state (models, optimisers, counters).
        batch: ``code`` (B, S), ``audio`` (B, S * hop), ``mel`` (B, M, F), optional ``spkr``.

    Returns:
        Named losses: ``total`` (weighted generator objective), ``mel`` (L1 mel error), ``fm``,
        ``adv``, ``dur``, ``disc``; or ``{"skipped": 1.0}`` when a loss was not finite.
    """
    dev, cfg = state.device, state.cfg
    code = batch["code"].to(dev)
    y = batch["audio"].to(dev).unsqueeze(1)  # (B, 1, T)
    y_mel = batch["mel"].to(dev)
    spkr = batch["spkr"].to(dev) if "spkr" in batch else None
    autocast = torch.autocast(dev.type, dtype=torch.float16, enabled=state.amp)
    f0 = frame_f0(y[:, 0], cfg.sampling_rate, cfg.code_hop_size) if cfg.f0_source else None  # the real f0
    with autocast:
        y_hat, dur_loss = state.generator(code=code, spkr=spkr, f0=f0)
    y_hat = y_hat.float()
    with autocast:
        real_p, fake_p, _, _ = state.mpd(y, y_hat.detach())
        real_s, fake_s, _, _ = state.msd(y, y_hat.detach())
    loss_d = discriminator_loss(real_p, fake_p)[0] + discriminator_loss(real_s, fake_s)[0]
    if not _all_finite(state, y_hat, loss_d):
        return _skip(state, "generator output or discriminator loss")
    _update(loss_d, state.optim_d, state.scaler_d)

    with autocast:
        _, fake_p, fmap_rp, fmap_gp = state.mpd(y, y_hat)
        _, fake_s, fmap_rs, fmap_gs = state.msd(y, y_hat)
    losses = generator_objective(
        mel_loss(y_mel, state.mel(y_hat)), feature_loss(fmap_rp, fmap_gp) + feature_loss(fmap_rs, fmap_gs),
        generator_loss(fake_p)[0] + generator_loss(fake_s)[0], dur_loss,
        cfg.lambda_mel, cfg.lambda_fm, cfg.lambda_adv, cfg.dur_prediction_weight,
        stft_loss(y, y_hat) if cfg.lambda_stft else None, cfg.lambda_stft,
        pitch_loss(y, y_hat, cfg.sampling_rate) if cfg.lambda_pitch else None, cfg.lambda_pitch,
        state.g.last_f0_loss if f0 is not None else None, cfg.lambda_f0)
    if not _all_finite(state, losses["total"]):
        return _skip(state, "generator loss")
    _update(losses["total"], state.optim_g, state.scaler_g)
    state.nonfinite = 0
    state.step += 1
    state.epoch_batches += 1
    out = {k: float(v.detach()) for k, v in losses.items()}
    out["disc"] = float(loss_d.detach())
    return out


# ------------------------------------------------------------------------------ validation
@torch.no_grad()
def validate(state: TrainState, loader: DataLoader, keep: int = 0) -> tuple[float, list[dict]]:
    """Mean mel L1 of the generator on whole validation utterances.

    Args:
        state: the training state.
        loader: batches of one whole utterance (``UnitAudioDataset(segment=False)``).
        keep: return this many (real, generated) examples for TensorBoard.

    Returns:
        ``(mean mel error, [{"y", "y_hat", "mel", "mel_hat"}, ...])``.
    """
    g = state.g
    g.eval()
    total, count, examples = 0.0, 0, []
    try:
        for batch in loader:
            code = batch["code"].to(state.device)
            spkr = batch["spkr"].to(state.device) if "spkr" in batch else None
            y_hat, _ = g(code=code, spkr=spkr)  # (1, 1, T)
            mel_hat = state.mel(y_hat.float())
            y_mel = batch["mel"].to(state.device)
            total += float(mel_loss(y_mel, mel_hat))
            count += 1
            if len(examples) < keep:
                examples.append({"y": batch["audio"][0], "y_hat": y_hat[0, 0].cpu(), "mel": y_mel[0].cpu(),
                                 "mel_hat": mel_hat[0].cpu()})
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
    workers = cfg.num_workers if opts.num_workers is None else opts.num_workers
    loader = DataLoader(trainset, batch_size=cfg.batch_size, sampler=sampler, num_workers=workers,
                        drop_last=True, pin_memory=state.device.type == "cuda", persistent_workers=workers > 0,
                        generator=torch.Generator().manual_seed(cfg.seed))
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
    writer.add_scalar("validation/mel_spec_error", error, state.step)
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
    log.info("step %d: validation mel error %.4f (best %.4f)", state.step, error, state.best_val_error)
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
        log.info("step %d: gen total %.3f, mel error %.3f, disc %.3f, %.3f s/step", step, losses["total"],
                 losses["mel"], losses["disc"], time.time() - t0)
    if step % max(opts.summary_interval, 1) == 0:
        writer.add_scalar("training/gen_loss_total", losses["total"], step)
        writer.add_scalar("training/mel_spec_error", losses["mel"], step)
        for name in ("fm", "adv", "dur", "disc"):
            writer.add_scalar(f"training/{name}", losses[name], step)
        writer.add_scalar("training/learning_rate", state.optim_g.param_groups[0]["lr"], step)
    if valid is not None and step % opts.validation_interval == 0:
        _run_validation(state, valid, writer, folder)
    if opts.checkpoint_interval > 0 and step % opts.checkpoint_interval == 0:
        save_checkpoint(state, folder)


def _out_of_time(state: TrainState, deadline: float) -> bool:
    """Wall-clock budget check; under DDP rank 0 decides, so every rank stops at the same step."""
    if deadline == math.inf:
        return False
    flag = torch.tensor([float(time.time() >= deadline)], device=state.device)
    if state.dist.world_size > 1:
        torch.distributed.broadcast(flag, src=0)
    return bool(flag.item())


def _run_epochs(state: TrainState, loader, sampler, valid, writer, folder: Path) -> None:
    opts = state.opts
    pbar = tqdm(total=opts.training_steps, initial=state.step, desc="train-unit2a", unit="step",
                disable=not state.dist.main, dynamic_ncols=True)
    deadline = math.inf if opts.max_seconds is None else time.time() + opts.max_seconds
    try:
        while state.step < opts.training_steps and state.epoch < opts.training_epochs and not _out_of_time(
                state, deadline):
            sampler.set_position(state.epoch, state.epoch_batches * state.cfg.batch_size)
            for batch in loader:
                t0 = time.time()
                losses = train_step(state, batch)
                if "skipped" in losses:
                    continue
                if state.dist.main:
                    _after_step(state, losses, writer, valid, folder, pbar, t0)
                if state.step >= opts.training_steps or _out_of_time(state, deadline):
                    break
            else:  # the epoch ran to its end
                state.epoch += 1
                state.epoch_batches = 0
                state.sched_g.step()
                state.sched_d.step()
    finally:
        pbar.close()


def init_distributed(device: str) -> Dist:
    """Join the torchrun job described by ``WORLD_SIZE``/``RANK``/``LOCAL_RANK`` (if any)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    rank, local = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = device != "cpu" and torch.cuda.is_available()
    if use_cuda:
        torch.cuda.set_device(local)
    if not torch.distributed.is_initialized():
        torch.distributed.init_process_group("nccl" if use_cuda else "gloo", init_method="env://")
    return Dist(rank, local, world)


def _wrap_ddp(state: TrainState) -> None:
    from torch.nn.parallel import DistributedDataParallel as DDP

    ids = [state.device.index] if state.device.type == "cuda" else None
    unused = state.g.dur_predictor is not None and not state.cfg.dur_prediction_weight
    state.generator = DDP(state.generator, device_ids=ids, find_unused_parameters=unused)
    state.mpd = DDP(state.mpd, device_ids=ids)
    state.msd = DDP(state.msd, device_ids=ids)


def train(cfg: VocoderConfig, opts: TrainOptions) -> TrainState:
    """Train (or resume) until ``training_steps`` updates or ``training_epochs`` epochs.

    Args:
        cfg: the vocoder/training config (``input_training_file`` / ``input_validation_file`` set).
        opts: run options (checkpoint folder, intervals, device, ...).

    Returns:
        The final training state (a final checkpoint is written on rank 0).
    """
    if not cfg.input_training_file:
        raise fail(None, "no training manifest: set input_training_file in the config or --input_training_file")
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
        from torch.utils.tensorboard import SummaryWriter

        folder.mkdir(parents=True, exist_ok=True)
        save_config(cfg, folder / "config.json")
        writer = SummaryWriter(str(folder / "logs"))
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
        if dist.world_size > 1:
            torch.distributed.destroy_process_group()
    return state


__all__ = ["TrainOptions", "init_distributed", "make_loaders", "train", "train_step", "validate"]
