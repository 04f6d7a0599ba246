"""Plumbing shared by the trainers (``train-unit2a``, ``train-face``, ``train-sync``).

One definition each of: joining a torchrun job (``init_distributed``, ``Dist``), wrapping and
unwrapping DDP modules, the finite-loss guard that keeps ranks in step, the wall-clock deadline,
the newest-checkpoint scan, validation bookkeeping, weighted loss sums and the RNG state saved
in checkpoints. Model families import this module; it imports nothing of theirs.
"""

from __future__ import annotations

import logging
import math
import os
import random
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .errors import fail

log = logging.getLogger(__name__)


# ------------------------------------------------------------------------------ processes
@dataclass
class Dist:
    """Where this process sits in a (torchrun) job."""

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def init_distributed(device: str) -> Dist:
    """Join the torchrun job described by ``WORLD_SIZE``/``RANK``/``LOCAL_RANK`` (if any).

    Args:
        device: the run's device option; NCCL on CUDA, gloo on the CPU.
    """
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


def close_distributed(dist: Dist) -> None:
    """Leave the torchrun job (no-op on one process)."""
    if dist.world_size > 1:
        torch.distributed.destroy_process_group()


def wrap_ddp(module: nn.Module, device: torch.device, find_unused_parameters: bool = False) -> nn.Module:
    """``module`` in ``DistributedDataParallel`` (device ids on CUDA, none on the CPU)."""
    from torch.nn.parallel import DistributedDataParallel as DDP

    ids = [device.index] if device.type == "cuda" else None
    return DDP(module, device_ids=ids, find_unused_parameters=find_unused_parameters)


def unwrap(module: nn.Module | None) -> nn.Module | None:
    """The module inside a DDP wrapper (the module itself when not wrapped)."""
    return getattr(module, "module", module)


def run_device(option: str, dist: Dist) -> torch.device:
    """The device of this process: ``option`` resolved, and one GPU per local rank under DDP."""
    from .devices import resolve_device

    device = resolve_device(option)
    if device.type == "cuda" and dist.world_size > 1:
        device = torch.device("cuda", dist.local_rank)
    return device


# ------------------------------------------------------------------------------ finite-loss guard
def all_finite(device: torch.device, dist: Dist, *tensors: torch.Tensor) -> bool:
    """True when every tensor is finite on every rank (ranks must agree to stay in step)."""
    flag = torch.tensor([float(all(bool(torch.isfinite(t).all()) for t in tensors))], device=device)
    if dist.world_size > 1:
        torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MIN)
    return bool(flag.item() > 0)


def skip_step(state, what: str, limit: int, where, *optimizers: torch.optim.Optimizer | None) -> dict[str, float]:
    """Drop a step whose loss was not finite; raise after ``limit`` such steps in a row.

    Args:
        state: a trainer state with ``step`` and ``nonfinite`` (the count in a row, reset by a good step).
        what: which value was not finite (for the warning).
        limit: the run's ``max_nonfinite``.
        where: the checkpoint folder, named in the error.
        optimizers: their gradients are cleared.

    Returns:
        ``{"skipped": 1.0}``, what a step function returns for a dropped step.
    """
    for optim in optimizers:
        if optim is not None:
            optim.zero_grad(set_to_none=True)
    state.nonfinite += 1
    log.warning("step %d: non-finite %s, step skipped (%d in a row)", state.step + 1, what, state.nonfinite)
    if state.nonfinite >= limit:
        raise fail(
            where,
            f"training diverged: {state.nonfinite} non-finite steps in a row at step {state.step + 1} "
            f"(last: {what}); lower learning_rate or check the data",
        )
    return {"skipped": 1.0}


def data_workers(configured: int, explicit: int | None, device: torch.device) -> int:
    """Data-loader worker processes for one training process.

    An explicit count (``--num-workers``) is used as given. The config's count is used as given on
    a GPU; on the CPU it is capped at the cores torch's own threads leave free, because a worker
    there takes its CPU from the training step itself (on 2 cores, 1 worker beside 2 torch threads
    made each step about 3 % slower than loading in the training process; see ``bench_training``).

    Args:
        configured: the config's ``num_workers``. explicit: the command line's, or None.
        device: where the model trains.
    """
    if explicit is not None:
        return max(0, int(explicit))
    workers = max(0, int(configured))
    if device.type != "cpu":
        return workers
    free = max(0, (os.cpu_count() or 1) - torch.get_num_threads())
    if workers > free:
        log.info(
            "data loading in %d worker(s), not the config's %d: %d CPU cores, %d used by torch's threads",
            free,
            workers,
            os.cpu_count() or 1,
            torch.get_num_threads(),
        )
    return min(workers, free)


def amp_enabled(requested: bool, device: torch.device) -> bool:
    """float16 mixed precision only where it exists (CUDA); a request elsewhere is logged and ignored."""
    if requested and device.type != "cuda":
        log.warning("--amp needs CUDA; training in float32 on %s", device)
    return bool(requested and device.type == "cuda")


def scaled_update(loss: torch.Tensor, optim: torch.optim.Optimizer, scaler: torch.amp.GradScaler) -> None:
    """Zero the gradients, backpropagate ``loss`` through the (possibly disabled) AMP grad scaler, step."""
    optim.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    scaler.step(optim)
    scaler.update()


def weighted_sum(terms: Mapping[str, torch.Tensor | None], weights: Mapping[str, float]) -> torch.Tensor:
    """``sum(weights[name] * terms[name])`` over the terms that are given and weighted (in ``terms`` order).

    Args:
        terms: name -> unweighted loss (scalar tensor) or ``None`` (not computed).
        weights: name -> weight; a missing name or a weight of 0 leaves the term out.
    """
    total = None
    for name, value in terms.items():
        weight = weights.get(name, 0.0)
        if value is None or not weight:
            continue
        total = weight * value if total is None else total + weight * value
    if total is None:
        raise fail(None, f"no loss term to train: the weights of {', '.join(terms)} are all 0")
    return total


# ------------------------------------------------------------------------------ deadline
class Deadline:
    """A wall-clock budget. Under DDP rank 0's clock decides, so every rank stops at the same step.

    Args:
        seconds: the budget from now (``None``: no limit).
    """

    def __init__(self, seconds: float | None):
        self.at = math.inf if seconds is None else time.time() + seconds

    def passed(self, device: torch.device, dist: Dist) -> bool:
        """True once the budget is spent (a collective call under DDP when there is a budget)."""
        if self.at == math.inf:
            return False
        flag = torch.tensor([float(time.time() >= self.at)], device=device)
        if dist.world_size > 1:
            torch.distributed.broadcast(flag, src=0)
        return bool(flag.item())


# ------------------------------------------------------------------------------ checkpoints
def latest_checkpoint(folder: str | os.PathLike, prefix: str, partner: str | None = None) -> Path | None:
    """The ``<prefix>_XXXXXXXX`` file with the highest step (``None`` if there is none).

    Args:
        folder: the checkpoint folder (a missing folder has none).
        prefix: ``"do"``, ``"fo"``, ``"sync"``, ...; temporary files (leading ``.``) never match.
        partner: the prefix of a file written first with the same step (``"g"``, ``"f"``): a
            checkpoint counts only when its partner exists.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return None
    pattern = re.compile(rf"^{re.escape(prefix)}_(\d{{8}})$")
    found = sorted((int(m.group(1)), p) for p in folder.iterdir() if (m := pattern.match(p.name)))
    for _, path in reversed(found):
        if partner is None or (folder / f"{partner}_{path.name[len(prefix) + 1 :]}").is_file():
            return path
    return None


def record_validation(state, error: float) -> bool:
    """Note a validation error (lower is better) on a trainer state.

    Args:
        state: any trainer state with ``step``, ``first_val_error`` and ``best_val_error``.
        error: this validation's error.

    Returns:
        True when it is a new best after step 0, i.e. a "best" checkpoint is due.
    """
    if state.first_val_error is None:
        state.first_val_error = error
    if state.step > 0 and error < state.best_val_error:
        state.best_val_error = error
        return True
    return False


# ------------------------------------------------------------------------------ RNG
def rng_state() -> dict:
    """Torch / CUDA / numpy / python RNG states as tensors (loadable with weights_only)."""
    np_state = np.random.get_state()
    py_state = random.getstate()
    out = {
        "torch": torch.get_rng_state(),
        "numpy_keys": torch.from_numpy(np_state[1].astype(np.int64)),
        "numpy_pos": int(np_state[2]),
        "python": torch.tensor(py_state[1], dtype=torch.int64),
    }
    if torch.cuda.is_available():
        out["cuda"] = torch.cuda.get_rng_state_all()
    return out


def set_rng_state(rng: dict) -> None:
    """Restore what ``rng_state`` saved (CUDA states only on a machine with as many GPUs)."""
    torch.set_rng_state(rng["torch"])
    np.random.set_state(("MT19937", rng["numpy_keys"].numpy().astype(np.uint32), rng["numpy_pos"], 0, 0.0))
    random.setstate((3, tuple(int(x) for x in rng["python"].tolist()), None))
    if "cuda" in rng and torch.cuda.is_available() and len(rng["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(rng["cuda"])


# ------------------------------------------------------------------------------ logging
def tensorboard(folder: Path):
    """A TensorBoard ``SummaryWriter`` for ``folder/logs`` (rank 0 only; the caller closes it)."""
    from torch.utils.tensorboard import SummaryWriter

    folder.mkdir(parents=True, exist_ok=True)
    return SummaryWriter(str(folder / "logs"))


__all__ = [
    "Deadline",
    "Dist",
    "all_finite",
    "close_distributed",
    "init_distributed",
    "latest_checkpoint",
    "record_validation",
    "rng_state",
    "run_device",
    "set_rng_state",
    "skip_step",
    "tensorboard",
    "unwrap",
    "weighted_sum",
    "wrap_ddp",
]
