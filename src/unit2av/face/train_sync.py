"""Train the unit <-> mouth sync expert (``unit2av train-sync``) used by ``train-face``'s sync loss.

Each window of a clip gives an in-sync pair (its units, its mouths; label 1) and a shifted pair
(units of a window at least ``MIN_SYNC_SHIFT`` frames away, the same mouths; label 0). Checkpoints
``sync_XXXXXXXX`` / ``sync_best`` = ``{"sync": sd, "sync_config", "steps", "optim", "rng",
"best_val_accuracy"}``, written atomically; rerunning resumes from the newest.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import re
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from ..devices import resolve_device
from ..errors import fail
from ..io.safe import load_torch, save_torch
from ..vocoder.state import rng_state, set_rng_state
from .data import FaceWindows, FixedWindows, StepKeys, read_face_manifest
from .sync_expert import SyncExpert, mouth_stack, sync_loss

log = logging.getLogger(__name__)

_CKPT_RE = re.compile(r"^sync_(\d{8})$")


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


def _batch_pairs(batch: dict, device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(2B, 20) units, (2B, 30, 48, 96) mouths and (2B,) labels: in-sync pairs then shifted pairs."""
    mouths = mouth_stack(batch["target"].flatten(0, 1)).to(device)  # (B, 30, 48, 96)
    units = torch.cat([batch["units"], batch["shifted"]]).to(device)
    labels = torch.cat([torch.ones(mouths.shape[0]), torch.zeros(mouths.shape[0])]).to(device)
    return units, torch.cat([mouths, mouths]), labels


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
    return {"accuracy": float(((p > 0).float().mean() + (n < 0).float().mean()) / 2),
            "pair_accuracy": float((p > n).float().mean()), "cos_sync": float(p.mean()),
            "cos_shifted": float(n.mean())}


def _save(model, optim, cfg: SyncConfig, step: int, best: float, path: Path) -> None:
    save_torch({"sync": model.state_dict(), "sync_config": model.config(), "steps": step, "optim": optim.state_dict(),
                "rng": rng_state(), "best_val_accuracy": best, "config": dataclasses.asdict(cfg)}, path)


def _resume(model, optim, folder: Path) -> tuple[int, float]:
    found = sorted((int(m.group(1)), p) for p in folder.glob("sync_*") if (m := _CKPT_RE.match(p.name))) \
        if folder.is_dir() else []
    if not found:
        return 0, -math.inf
    path = found[-1][1]
    obj = load_torch(path, "sync checkpoint")
    try:
        model.load_state_dict(obj["sync"])
        optim.load_state_dict(obj["optim"])
    except (KeyError, RuntimeError, ValueError) as e:
        raise fail(path, f"does not fit this config: {' '.join(str(e).split())[:200]}") from e
    set_rng_state(obj["rng"])
    log.info("resumed from %s: step %d", path, obj["steps"])
    return int(obj["steps"]), float(obj.get("best_val_accuracy", -math.inf))


def train_sync(cfg: SyncConfig) -> dict:
    """Train (or resume) the sync expert.

    Returns:
        ``{"steps", "first": metrics at the start, "last": final metrics, "best_accuracy"}``
        (metrics from ``sync_accuracy`` on the held-out clips; empty without them).
    """
    from torch.utils.tensorboard import SummaryWriter

    folder, device = Path(cfg.checkpoint_path), resolve_device(cfg.device)
    torch.manual_seed(cfg.seed)
    model = SyncExpert(cfg.num_embeddings, cfg.dim, cfg.channels).to(device).train()
    optim = torch.optim.Adam(model.parameters(), cfg.learning_rate)
    step, best = _resume(model, optim, folder)
    train_set = FaceWindows(read_face_manifest(cfg.input_training_file), cfg.seed, cfg.num_embeddings)
    valid = None
    if cfg.input_validation_file and cfg.validation_interval > 0:
        val_set = FaceWindows(read_face_manifest(cfg.input_validation_file), cfg.seed, cfg.num_embeddings)
        valid = DataLoader(FixedWindows(val_set, cfg.valid_windows), batch_size=cfg.batch_size)
    folder.mkdir(parents=True, exist_ok=True)
    writer = SummaryWriter(str(folder / "logs"))
    result = {"first": sync_accuracy(model, valid) if valid else {}, "last": {}}
    loader = DataLoader(train_set, batch_size=cfg.batch_size, sampler=StepKeys(step, cfg.batch_size,
                                                                               cfg.training_steps),
                        generator=torch.Generator().manual_seed(cfg.seed))  # keeps the global RNG untouched
    deadline = math.inf if cfg.max_seconds is None else time.time() + cfg.max_seconds
    with tqdm(total=cfg.training_steps, initial=step, desc="train-sync", unit="step", dynamic_ncols=True) as bar:
        for batch in loader:
            units, mouths, labels = _batch_pairs(batch, device)
            loss = sync_loss(model(units, mouths), labels)
            optim.zero_grad(set_to_none=True)
            loss.backward()
            optim.step()
            step += 1
            bar.update(1)
            writer.add_scalar("training/sync_loss", float(loss.detach()), step)
            if valid is not None and step % cfg.validation_interval == 0:
                metrics = sync_accuracy(model, valid)
                for k, v in metrics.items():
                    writer.add_scalar(f"validation/{k}", v, step)
                log.info("step %d: loss %.4f, held-out %s", step, float(loss.detach()),
                         ", ".join(f"{k} {v:.3f}" for k, v in metrics.items()))
                if metrics["accuracy"] > best:
                    best = metrics["accuracy"]
                    _save(model, optim, cfg, step, best, folder / "sync_best")
            if cfg.checkpoint_interval > 0 and step % cfg.checkpoint_interval == 0:
                _save(model, optim, cfg, step, best, folder / f"sync_{step:08d}")
            if time.time() >= deadline:
                break
    writer.close()
    if not (folder / f"sync_{step:08d}").is_file():
        _save(model, optim, cfg, step, best, folder / f"sync_{step:08d}")
    if valid is not None:
        result["last"] = sync_accuracy(model, valid)
    result.update(steps=step, best_accuracy=best)
    return result


__all__ = ["SyncConfig", "sync_accuracy", "train_sync"]
