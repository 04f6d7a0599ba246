"""Train the unit <-> mouth sync expert (``unit2av train-sync``) used by ``train-face``'s sync loss.

Each window of a clip gives an in-sync pair (its units, its mouths; label 1) and a shifted pair
(units of a window at least ``MIN_SYNC_SHIFT`` frames away, the same mouths; label 0). Checkpoints
``sync_XXXXXXXX`` / ``sync_best`` = ``{"sync": sd, "sync_config", "steps", "optim", "rng",
"best_val_accuracy"}``, written atomically; rerunning resumes from the newest.

``sync_step`` is one update over a ``SyncTrainState``; ``train_sync`` is the loop around it.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from .. import training
from ..devices import resolve_device
from ..errors import fail
from ..io.safe import load_torch, save_torch
from ..training import Deadline, Dist, all_finite, record_validation, rng_state, set_rng_state, skip_step
from .data import FaceWindows, FixedWindows, StepKeys, read_face_manifest
from .sync_expert import SyncExpert, mouth_stack, sync_loss

log = logging.getLogger(__name__)


@dataclass
class SyncConfig:
    """Settings of ``train-sync``."""

    checkpoint_path: str  # folder of sync_ checkpoints and logs/
    input_training_file: str  # clip manifest (JSON lines, as train-face)
    input_validation_file: str | None = None  # held-out clips
    num_embeddings: int = 1000  # unit vocabulary
    dim: int = 128  # embedding size
    channels: int = 16  # first mouth-conv width
    batch_size: int = 8  # windows per update (each gives one in-sync and one shifted pair)
    learning_rate: float = 1e-4  # Adam (Wav2Lip's expert uses 1e-4)
    seed: int = 1234  # weights and window sampling
    training_steps: int = 100_000  # stop after this many updates
    validation_interval: int = 500  # validate every N updates (0 = never)
    checkpoint_interval: int = 5000  # write sync_XXXXXXXX every N updates
    valid_windows: int = 4  # fixed validation windows per held-out clip
    device: str = "auto"  # "auto", "cpu", "cuda"
    max_seconds: float | None = None  # wall-clock budget
    max_nonfinite: int = 5  # stop after this many non-finite steps in a row


@dataclass
class SyncTrainState:
    """Everything a sync-expert step touches. The validation error is the negative held-out accuracy."""

    cfg: SyncConfig
    device: torch.device
    model: SyncExpert
    optim: torch.optim.Optimizer
    step: int = 0
    best_val_error: float = math.inf  # -(best held-out accuracy)
    first_val_error: float | None = None
    nonfinite: int = 0


def _batch_pairs(batch: dict, device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(2B, 20) units, (2B, 30, 48, 96) mouths and (2B,) labels: in-sync pairs then shifted pairs."""
    mouths = mouth_stack(batch["target"].flatten(0, 1)).to(device)  # (B, 30, 48, 96)
    units = torch.cat([batch["units"], batch["shifted"]]).to(device)
    labels = torch.cat([torch.ones(mouths.shape[0]), torch.zeros(mouths.shape[0])]).to(device)
    return units, torch.cat([mouths, mouths]), labels


def sync_step(state: SyncTrainState, batch: dict) -> dict[str, float]:
    """One update of the sync expert on a batch of windows.

    Args:
        state: the training state.
        batch: from ``FaceWindows``: ``units`` (B, 20), ``shifted`` (B, 20) units of a window at least
            ``MIN_SYNC_SHIFT`` frames away, ``target`` (B, 10, 3, 96, 96).

    Returns:
        ``{"sync": BCE over the B in-sync and B shifted pairs}``, or ``{"skipped": 1.0}`` when not finite.
    """
    units, mouths, labels = _batch_pairs(batch, state.device)
    loss = sync_loss(state.model(units, mouths), labels)
    if not all_finite(state.device, Dist(), loss):
        return skip_step(state, "sync loss", state.cfg.max_nonfinite, state.cfg.checkpoint_path, state.optim)
    state.optim.zero_grad(set_to_none=True)
    loss.backward()
    state.optim.step()
    state.nonfinite = 0
    state.step += 1
    return {"sync": float(loss.detach())}


@torch.no_grad()
def sync_accuracy(model: SyncExpert, loader: DataLoader) -> dict[str, float]:
    """``accuracy`` (cosine > 0 for in-sync, < 0 for shifted pairs), ``pair_accuracy`` (in-sync
    cosine above the same mouths' shifted cosine), mean cosines ``cos_sync`` / ``cos_shifted``."""
    device = next(model.parameters()).device
    was = model.training
    model.eval()
    pos, neg = [], []
    for batch in loader:
        units, mouths, _ = _batch_pairs(batch, device)
        cos = model(units, mouths).cpu()
        half = cos.shape[0] // 2
        pos.append(cos[:half])
        neg.append(cos[half:])
    model.train(was)
    p, n = torch.cat(pos), torch.cat(neg)
    return {
        "accuracy": float(((p > 0).float().mean() + (n < 0).float().mean()) / 2),
        "pair_accuracy": float((p > n).float().mean()),
        "cos_sync": float(p.mean()),
        "cos_shifted": float(n.mean()),
    }


def build_sync_state(cfg: SyncConfig) -> SyncTrainState:
    """A fresh expert (seeded by ``cfg.seed``) and its Adam optimiser, resumed from the newest ``sync_`` if any."""
    device = resolve_device(cfg.device)
    torch.manual_seed(cfg.seed)
    model = SyncExpert(cfg.num_embeddings, cfg.dim, cfg.channels).to(device).train()
    state = SyncTrainState(cfg, device, model, torch.optim.Adam(model.parameters(), cfg.learning_rate))
    latest = training.latest_checkpoint(cfg.checkpoint_path, "sync")
    if latest is not None:
        load_sync_checkpoint(state, latest)
    return state


def save_sync_checkpoint(state: SyncTrainState, path: Path) -> None:
    """Write ``{"sync", "sync_config", "steps", "optim", "rng", "best_val_accuracy", "config"}`` atomically."""
    save_torch(
        {
            "sync": state.model.state_dict(),
            "sync_config": state.model.config(),
            "steps": state.step,
            "optim": state.optim.state_dict(),
            "rng": rng_state(),
            "best_val_accuracy": -state.best_val_error,
            "config": dataclasses.asdict(state.cfg),
        },
        path,
    )


def load_sync_checkpoint(state: SyncTrainState, path: Path) -> None:
    """Restore weights, optimiser, step, best accuracy and RNG from a ``sync_`` checkpoint."""
    obj = load_torch(path, "sync checkpoint")
    try:
        state.model.load_state_dict(obj["sync"])
        state.optim.load_state_dict(obj["optim"])
    except (KeyError, RuntimeError, ValueError) as e:
        raise fail(path, f"does not fit this config: {' '.join(str(e).split())[:200]}") from e
    set_rng_state(obj["rng"])
    log.info("resumed from %s: step %d", path, obj["steps"])
    state.step, state.best_val_error = int(obj["steps"]), -float(obj.get("best_val_accuracy", -math.inf))


def _loaders(cfg: SyncConfig, step: int) -> tuple[DataLoader, DataLoader | None]:
    """Training windows from ``step`` on, and the fixed held-out windows (``None`` without them)."""
    train_set = FaceWindows(read_face_manifest(cfg.input_training_file), cfg.seed, cfg.num_embeddings)
    valid = None
    if cfg.input_validation_file and cfg.validation_interval > 0:
        val_set = FaceWindows(read_face_manifest(cfg.input_validation_file), cfg.seed, cfg.num_embeddings)
        valid = DataLoader(FixedWindows(val_set, cfg.valid_windows), batch_size=cfg.batch_size)
    loader = DataLoader(
        train_set,
        batch_size=cfg.batch_size,
        sampler=StepKeys(step, cfg.batch_size, cfg.training_steps),
        generator=torch.Generator().manual_seed(cfg.seed),
    )  # keeps the global RNG untouched
    return loader, valid


def _after_step(state: SyncTrainState, loss: float, valid, writer, folder: Path) -> None:
    """TensorBoard, validation (``sync_best`` on a better held-out accuracy) and periodic checkpoints."""
    cfg, step = state.cfg, state.step
    writer.add_scalar("training/sync_loss", loss, step)
    if valid is not None and step % cfg.validation_interval == 0:
        metrics = sync_accuracy(state.model, valid)
        for k, v in metrics.items():
            writer.add_scalar(f"validation/{k}", v, step)
        log.info("step %d: loss %.4f, held-out %s", step, loss, ", ".join(f"{k} {v:.3f}" for k, v in metrics.items()))
        if record_validation(state, -metrics["accuracy"]):
            save_sync_checkpoint(state, folder / "sync_best")
    if cfg.checkpoint_interval > 0 and step % cfg.checkpoint_interval == 0:
        save_sync_checkpoint(state, folder / f"sync_{step:08d}")


def train_sync(cfg: SyncConfig) -> dict:
    """Train (or resume) the sync expert.

    Returns:
        ``{"steps", "first": metrics at the start, "last": final metrics, "best_accuracy"}``
        (metrics from ``sync_accuracy`` on the held-out clips; empty without them).
    """
    folder = Path(cfg.checkpoint_path)
    state = build_sync_state(cfg)
    loader, valid = _loaders(cfg, state.step)
    writer = training.tensorboard(folder)
    result = {"first": sync_accuracy(state.model, valid) if valid else {}, "last": {}}
    if result["first"]:
        state.first_val_error = -result["first"]["accuracy"]
    deadline = Deadline(cfg.max_seconds)
    with tqdm(total=cfg.training_steps, initial=state.step, desc="train-sync", unit="step", dynamic_ncols=True) as bar:
        for batch in loader:
            losses = sync_step(state, batch)
            if "skipped" in losses:
                continue
            bar.update(1)
            _after_step(state, losses["sync"], valid, writer, folder)
            if deadline.passed(state.device, Dist()):
                break
    writer.close()
    if not (folder / f"sync_{state.step:08d}").is_file():
        save_sync_checkpoint(state, folder / f"sync_{state.step:08d}")
    if valid is not None:
        result["last"] = sync_accuracy(state.model, valid)
    result.update(steps=state.step, best_accuracy=-state.best_val_error)
    return result


__all__ = ["SyncConfig", "SyncTrainState", "build_sync_state", "sync_accuracy", "sync_step", "train_sync"]
