"""Train the face renderer (AV2AV ``FaceRenderer``): ``train_step`` over a ``FaceTrainState`` and its loop.

Data: random 10-frame windows (20 units) of talking-face clips with 96x96 crops; the reference
half of the input comes from another window of the same clip (Wav2Lip's practice), so the model
cannot copy the mouth. Losses (weights in the config): L1 reconstruction, optionally the sync
expert's BCE (``train-sync``) and a visual-quality GAN loss.

One process: ``unit2av train-face --input_training_file T.jsonl --input_validation_file V.jsonl
--checkpoint_path D``; several GPUs: ``torchrun --nproc_per_node N -m unit2av.cli train-face ...``.
Rerunning the same command resumes from the newest ``fo_`` in ``--checkpoint_path``.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader
from tqdm import tqdm

from ..errors import fail
from ..io.safe import write_bytes_atomic
from ..training import (
    Deadline,
    all_finite,
    close_distributed,
    init_distributed,
    record_validation,
    scaled_update,
    skip_step,
    tensorboard,
    weighted_sum,
    wrap_ddp,
)
from .data import HALF, FaceWindows, FixedWindows, StepKeys, read_face_manifest
from .quality_disc import adversarial_loss, disc_loss
from .state import (
    FaceTrainConfig,
    FaceTrainOptions,
    FaceTrainState,
    build_face_state,
    latest_face_checkpoint,
    load_face_checkpoint,
    save_face_checkpoint,
)
from .sync_expert import mouth_stack, sync_loss

log = logging.getLogger(__name__)


def train_step(state: FaceTrainState, batch: dict) -> dict[str, float]:
    """One renderer update (and one discriminator update when ``adv_weight > 0``).

    Args:
        state: the training state (models, optimisers, counters).
        batch: ``units`` (B, 20), ``faces`` (B, 10, 6, 96, 96), ``target`` (B, 10, 3, 96, 96).

    Returns:
        Named losses, unweighted: ``l1`` and, when enabled, ``sync``, ``adv``, ``disc``; ``total``:
        their sum weighted by ``cfg.loss_weights()``; ``{"skipped": 1.0}`` when the loss was not finite.
    """
    dev = state.device
    units = batch["units"].to(dev)
    faces = batch["faces"].to(dev).flatten(0, 1)  # (B * 10, 6, 96, 96), window-major
    target = batch["target"].to(dev).flatten(0, 1)  # (B * 10, 3, 96, 96)
    autocast = torch.autocast(dev.type, dtype=torch.float16, enabled=state.amp)
    with autocast:  # model forwards in float16 under --amp; the losses in float32 below
        out = state.generator(units, faces)
        cosine = state.sync(units, mouth_stack(out)) if state.sync is not None else None
        fake = state.disc(out) if state.disc is not None else None
    out = out.float()
    losses = {"l1": F.l1_loss(out, target), "sync": None, "adv": None}
    if cosine is not None:
        losses["sync"] = sync_loss(cosine.float(), torch.ones_like(cosine, dtype=torch.float32))
    if fake is not None:
        losses["adv"] = adversarial_loss(fake.float())
    total = weighted_sum(losses, state.cfg.loss_weights())
    if not all_finite(dev, state.dist, total):
        return skip_step(state, "loss", state.opts.max_nonfinite, state.opts.checkpoint_path)
    scaled_update(total, state.optim_g, state.scaler_g)
    result = {k: float(v.detach()) for k, v in losses.items() if v is not None}
    if state.disc is not None:
        with autocast:
            real_logits, fake_logits = state.disc(target), state.disc(out.detach())
        d_loss = disc_loss(real_logits.float(), fake_logits.float())
        scaled_update(d_loss, state.optim_d, state.scaler_d)
        result["disc"] = float(d_loss.detach())
    state.nonfinite = 0
    state.step += 1
    result["total"] = float(total.detach())
    return result


@torch.no_grad()
def validate(state: FaceTrainState, loader: DataLoader, keep: int = 0) -> tuple[dict[str, float], list[dict]]:
    """Errors on fixed held-out windows.

    Returns:
        ``({"lower_l1": mouth-half L1 (the validation error), "l1": whole-face L1}, examples)``;
        examples are up to ``keep`` dicts of (10, 3, 96, 96) tensors ``masked``, ``reference``,
        ``generated``, ``target``.
    """
    g = state.g
    g.eval()
    lower = full = 0.0
    count, examples = 0, []
    try:
        for batch in loader:
            faces = batch["faces"].to(state.device).flatten(0, 1)
            target = batch["target"].to(state.device).flatten(0, 1)
            out = g(batch["units"].to(state.device), faces)
            lower += float(F.l1_loss(out[:, :, HALF:], target[:, :, HALF:])) * batch["units"].shape[0]
            full += float(F.l1_loss(out, target)) * batch["units"].shape[0]
            count += batch["units"].shape[0]
            for w in range(batch["units"].shape[0]):
                if len(examples) < keep:
                    sl = slice(w * 10, w * 10 + 10)
                    examples.append(
                        {
                            "masked": faces[sl, :3].cpu(),
                            "reference": faces[sl, 3:].cpu(),
                            "generated": out[sl].cpu(),
                            "target": target[sl].cpu(),
                        }
                    )
    finally:
        g.train()
    return {"lower_l1": lower / max(count, 1), "l1": full / max(count, 1)}, examples


def image_grid(example: dict) -> np.ndarray:
    """Rows masked input / reference / generated / target of one window -> (4*96, 10*96, 3) uint8 RGB."""
    rows = [torch.cat(list(example[k]), dim=2) for k in ("masked", "reference", "generated", "target")]
    grid = torch.cat(rows, dim=1)  # (3, 4 * 96, 10 * 96) BGR
    return (grid.flip(0).permute(1, 2, 0).clamp(0, 1).numpy() * 255 + 0.5).astype(np.uint8)


def _run_validation(state: FaceTrainState, valid: DataLoader, writer, folder: Path) -> float:
    errors, examples = validate(state, valid, keep=state.opts.image_windows)
    for name, value in errors.items():
        writer.add_scalar(f"validation/{name}", value, state.step)
    for j, ex in enumerate(examples):
        writer.add_image(f"validation/input_generated_target_{j}", image_grid(ex), state.step, dataformats="HWC")
    error = errors["lower_l1"]
    log.info(
        "step %d: validation mouth L1 %.4f, face L1 %.4f (best %.4f)",
        state.step,
        error,
        errors["l1"],
        state.best_val_error,
    )
    if record_validation(state, error):
        save_face_checkpoint(state, folder, "best")
    return error


def _after_step(state: FaceTrainState, losses: dict, writer, valid, folder: Path, pbar) -> None:
    opts, step = state.opts, state.step
    pbar.update(1)
    if step % max(opts.stdout_interval, 1) == 0:
        pbar.set_postfix(l1=f"{losses['l1']:.4f}")
        log.info("step %d: %s", step, ", ".join(f"{k} {v:.4f}" for k, v in losses.items()))
    if step % max(opts.summary_interval, 1) == 0:
        for name, value in losses.items():
            writer.add_scalar(f"training/{name}", value, step)
    if valid is not None and opts.validation_interval > 0 and step % opts.validation_interval == 0:
        _run_validation(state, valid, writer, folder)
    if opts.checkpoint_interval > 0 and step % opts.checkpoint_interval == 0:
        save_face_checkpoint(state, folder)


def make_face_loaders(state: FaceTrainState) -> tuple[FaceWindows, DataLoader | None]:
    """Training windows (in memory) and, on rank 0, the fixed validation loader."""
    cfg, opts = state.cfg, state.opts
    if not cfg.input_training_file:
        raise fail(None, "no training manifest: set input_training_file or pass --input_training_file")
    train_set = FaceWindows(read_face_manifest(cfg.input_training_file), cfg.seed, cfg.num_embeddings)
    valid = None
    if state.dist.main and cfg.input_validation_file and opts.validation_interval > 0:
        val_set = FaceWindows(read_face_manifest(cfg.input_validation_file), cfg.seed, cfg.num_embeddings)
        valid = DataLoader(FixedWindows(val_set, opts.valid_windows), batch_size=cfg.batch_size, shuffle=False)
    return train_set, valid


def _loop(state: FaceTrainState, train_set: FaceWindows, valid, writer, folder: Path) -> None:
    opts, cfg = state.opts, state.cfg
    keys = StepKeys(state.step, cfg.batch_size, opts.training_steps, state.dist.rank, state.dist.world_size)
    loader = DataLoader(
        train_set,
        batch_size=cfg.batch_size,
        sampler=keys,
        num_workers=opts.num_workers,
        pin_memory=state.device.type == "cuda",
        generator=torch.Generator().manual_seed(cfg.seed),
    )  # keeps the global RNG untouched
    deadline = Deadline(opts.max_seconds)
    pbar = tqdm(
        total=opts.training_steps,
        initial=state.step,
        desc="train-face",
        unit="step",
        disable=not state.dist.main,
        dynamic_ncols=True,
    )
    try:
        for batch in loader:
            losses = train_step(state, batch)
            if "skipped" in losses:
                continue
            if state.dist.main:
                _after_step(state, losses, writer, valid, folder, pbar)
            if deadline.passed(state.device, state.dist) or state.step >= opts.training_steps:
                break
    finally:
        pbar.close()


def _wrap_ddp(state: FaceTrainState) -> None:
    state.generator = wrap_ddp(state.generator, state.device)
    if state.disc is not None:
        state.disc = wrap_ddp(state.disc, state.device)


def train_face(cfg: FaceTrainConfig, opts: FaceTrainOptions) -> FaceTrainState:
    """Train (or resume) the face renderer until ``training_steps`` updates or ``max_seconds``.

    Args:
        cfg: model, loss weights and manifests.
        opts: run options (checkpoint folder, intervals, device, init weights, sync expert).

    Returns:
        The final state; a final ``f_``/``fo_`` pair is written (rank 0).
    """
    folder = Path(opts.checkpoint_path)
    dist = init_distributed(opts.device)
    state = build_face_state(cfg, opts, dist)
    latest = latest_face_checkpoint(folder)
    if latest is not None:
        load_face_checkpoint(state, latest)
    train_set, valid = make_face_loaders(state)
    if dist.world_size > 1:
        _wrap_ddp(state)
    writer = None
    if dist.main:
        writer = tensorboard(folder)  # creates the folder
        write_bytes_atomic(folder / "face_config.json", json.dumps(cfg.to_dict(), indent=2).encode())
        if valid is not None:
            _run_validation(state, valid, writer, folder)
    try:
        if state.step < opts.training_steps:
            _loop(state, train_set, valid, writer, folder)
        if dist.main and not (folder / f"fo_{state.step:08d}").is_file():
            save_face_checkpoint(state, folder)
        if dist.world_size > 1:
            torch.distributed.barrier()
    finally:
        if writer is not None:
            writer.close()
        close_distributed(dist)
    return state


__all__ = ["image_grid", "make_face_loaders", "train_face", "train_step", "validate"]
