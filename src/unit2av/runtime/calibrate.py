"""Per-machine choice of the inference path: time the candidates once, remember the fastest.

Which of the equivalent paths of ``unit2av.runtime.fast`` is fastest depends on the processor
(channels-last convolutions gained 1.29x over plain eager on an AVX2 AMD CPU and lost 12 % on an
AVX-512 Intel Xeon). ``backend="auto"`` therefore times the candidates on a short input the first
time a model shape meets a machine, keeps the fastest and caches the choice per

    model kind + shape | processor (or GPU) model | torch version | threads

in ``$XDG_CACHE_HOME/unit2av/backends.json`` (default ``~/.cache/unit2av``), written atomically.
A corrupt cache file is ignored with a warning (and rewritten). ``UNIT2AV_CALIBRATE=0`` turns
calibration off (``auto`` then means ``FALLBACK``); delete the file to measure again.

How it times: one untimed warm-up call of every candidate, then ``rounds`` rounds that call each
candidate once, in an order rotated every round, so all see the same machine state. Each
candidate's score is its fastest call divided by the baseline's (``eager``) fastest call: other
work on the machine only ever adds time, so the minimum is the estimate least disturbed by it.
The smallest score wins; another path replaces the baseline only when it is at least ``MARGIN``
faster, so noise cannot pick a slower path over the baseline by a hair.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from ..io.safe import write_bytes_atomic

log = logging.getLogger(__name__)

ENV_DISABLE = "UNIT2AV_CALIBRATE"  # "0", "off", "no" or "false": no calibration
CACHE_NAME = "backends.json"
CACHE_VERSION = 1
BASELINE = "eager"  # the plain model: every other path must beat it to be chosen
FALLBACK = "folded"  # auto without calibration: the eager convolutions with fewer passes around them
ROUNDS = 3  # timed rounds per calibration (after one warm-up call each)
MARGIN = 0.02  # a path replaces the baseline only when at least this much faster

_memo: dict[tuple[str, str], str] = {}  # this process's choices (a failed cache write still gives one answer per key)


def enabled() -> bool:
    """False when ``UNIT2AV_CALIBRATE`` says off."""
    return os.environ.get(ENV_DISABLE, "1").strip().lower() not in ("0", "off", "no", "false")


def cache_path() -> Path:
    """``$XDG_CACHE_HOME/unit2av/backends.json``, default ``~/.cache/unit2av/backends.json``."""
    root = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(root) / "unit2av" / CACHE_NAME


def device_name(device: torch.device) -> str:
    """The GPU's name, or the CPU's model name from ``/proc/cpuinfo`` (else ``platform``'s guess)."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        for line in Path("/proc/cpuinfo").read_text(errors="replace").splitlines():
            if line.lower().startswith(("model name", "hardware", "cpu model")) and ":" in line:
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def shape_key(kind: str, model: nn.Module) -> str:
    """``kind`` + parameter count + a hash of every parameter's and buffer's name and shape."""
    items = [(n, tuple(t.shape)) for n, t in (*model.named_parameters(), *model.named_buffers())]
    digest = hashlib.sha1(repr(sorted(items)).encode()).hexdigest()[:12]
    return f"{kind} {sum(p.numel() for p in model.parameters())} params {digest}"


def cache_key(kind: str, model: nn.Module, device: torch.device) -> str:
    """What a choice depends on: the model's shape, the processor, torch's version and its thread count."""
    threads = f"{torch.get_num_threads()} threads" if device.type == "cpu" else device.type
    return f"{shape_key(kind, model)} | {device_name(device)} | torch {torch.__version__} | {threads}"


# ------------------------------------------------------------------------------ timing
def measure(
    candidates: dict[str, Callable[[], object]],
    rounds: int = ROUNDS,
    clock: Callable[[], float] = time.perf_counter,
    sync: Callable[[], None] = lambda: None,
) -> dict[str, list[float]]:
    """Seconds per call of every candidate: a warm-up call each, then ``rounds`` interleaved rounds.

    Args:
        candidates: name -> a call running that path on the calibration input.
        rounds: timed rounds; round ``r`` calls the candidates in their order rotated by ``r``.
        clock: seconds (tests inject one). sync: waits for queued device work (CUDA).

    Returns:
        name -> ``rounds`` seconds, in round order.
    """
    names = list(candidates)
    with torch.inference_mode():
        for name in names:
            candidates[name]()
        sync()
        times: dict[str, list[float]] = {name: [] for name in names}
        for r in range(rounds):
            for name in names[r % len(names) :] + names[: r % len(names)]:
                t0 = clock()
                candidates[name]()
                sync()
                times[name].append(clock() - t0)
    return times


def ratios(times: dict[str, list[float]], baseline: str = BASELINE) -> dict[str, float]:
    """Per candidate: its fastest call's seconds / the baseline's fastest call's seconds."""
    base = max(min(times[baseline]), 1e-12)
    return {name: min(ts) / base for name, ts in times.items()}


def pick(times: dict[str, list[float]], baseline: str = BASELINE, margin: float = MARGIN) -> str:
    """The fastest candidate by ``ratios``; the baseline unless another is at least ``margin`` faster."""
    r = ratios(times, baseline)
    best = min(r, key=lambda name: (r[name], name != baseline))
    return best if best == baseline or r[best] <= 1.0 - margin else baseline


# ------------------------------------------------------------------------------ cache
def read_cache(path: Path) -> dict[str, dict]:
    """The cache's entries (``{}`` when the file is missing; a corrupt file is ignored with a warning)."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError, ValueError) as e:
        log.warning("ignoring the unreadable backend cache %s (%s); calibrating again", path, e)
        return {}
    if not isinstance(data, dict) or data.get("version") != CACHE_VERSION or not isinstance(data.get("entries"), dict):
        log.warning(
            "ignoring the backend cache %s: not a version-%d cache file; calibrating again", path, CACHE_VERSION
        )
        return {}
    return {k: v for k, v in data["entries"].items() if isinstance(v, dict) and isinstance(v.get("backend"), str)}


def write_cache(path: Path, key: str, entry: dict) -> None:
    """Add ``entry`` under ``key`` (re-reading the file first, so other processes' entries are kept)."""
    entries = read_cache(path)
    entries[key] = entry
    try:
        write_bytes_atomic(path, json.dumps({"version": CACHE_VERSION, "entries": entries}, indent=1).encode())
    except OSError as e:
        log.warning("cannot write the backend cache %s (%s); the choice holds for this process only", path, e)


def choose(
    kind: str,
    model: nn.Module,
    candidates: Callable[[], dict[str, Callable[[], object]]],
    device: torch.device,
    names: tuple[str, ...],
    rounds: int = ROUNDS,
) -> str:
    """The path ``backend="auto"`` runs for ``model`` on this machine: cached, else measured now.

    Args:
        kind: ``"vocoder"`` or ``"face"`` (part of the cache key).
        model: the eager model (its parameter shapes are part of the cache key).
        candidates: builds name -> call on a short input; called only when measuring. Its names
            are ``names``, ``BASELINE`` among them.
        device: where the model runs.
        names: the candidates' names (a cached choice outside them is measured again).
        rounds: timed rounds.

    Returns:
        A candidate's name (``FALLBACK`` when calibration is off).
    """
    if not enabled():
        return FALLBACK
    path, key = cache_path(), cache_key(kind, model, device)
    if (str(path), key) in _memo:
        return _memo[str(path), key]
    cached = read_cache(path).get(key)
    if cached is not None and cached["backend"] in names:
        choice = cached["backend"]
        log.debug("%s: cached backend %s (%s)", kind, choice, path)
    else:
        log.info("timing the %s's inference paths on this machine (once; cached in %s)", kind, path)
        sync = (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)
        times = measure(candidates(), rounds, sync=sync)
        choice, r = pick(times), ratios(times)
        log.info("%s paths, time / eager: %s -> %s", kind, ", ".join(f"{n} {v:.2f}" for n, v in r.items()), choice)
        write_cache(
            path,
            key,
            {
                "backend": choice,
                "ratios": r,
                "seconds": {n: min(t) for n, t in times.items()},
                "rounds": rounds,
                "when": time.strftime("%Y-%m-%dT%H:%M:%S"),
            },
        )
    _memo[str(path), key] = choice
    return choice


def forget() -> None:
    """Drop this process's remembered choices (the cache file is kept)."""
    _memo.clear()


__all__ = [
    "BASELINE",
    "ENV_DISABLE",
    "FALLBACK",
    "cache_key",
    "cache_path",
    "choose",
    "device_name",
    "enabled",
    "forget",
    "measure",
    "pick",
    "ratios",
    "read_cache",
    "write_cache",
]
