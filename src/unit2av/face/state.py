"""The training state of the face renderer: config, models, optimisers; checkpoints and resuming.

Checkpoints (written atomically, the ``f_`` file first so an ``fo_`` never exists without it):

- ``f_XXXXXXXX`` / ``f_best`` = an AV2AV container ``{"audio": {}, "video": sd, "face_config", "steps"}``
  (``unit2av pack`` adds vocoders under ``"audio"``);
- ``fo_XXXXXXXX`` / ``fo_best`` = ``{"optim_g", "disc", "optim_d", "steps", "best_val_error", "rng",
  "config", "unit2av": 1}``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from .. import training
from ..devices import resolve_device
from ..errors import fail
from ..io.checkpoints import face_state, open_container
from ..io.safe import load_torch, save_torch
from ..training import Dist, rng_state, set_rng_state, unwrap
from .checkpoint import load_face_renderer
from .model import EMBED_DIM, NUM_UNITS, FaceRenderer
from .quality_disc import QualityDiscriminator
from .sync_expert import SyncExpert

log = logging.getLogger(__name__)

FORMAT_MARKER = 1  # fo_["unit2av"]: written by this trainer


@dataclass
class FaceTrainConfig:
    """Model and loss settings of ``train-face`` (a JSON file with these keys; all optional)."""

    width: int = EMBED_DIM  # renderer bottleneck width: 512 = AV2AV's FaceRenderer, 64/128 = small models
    num_embeddings: int = NUM_UNITS  # unit vocabulary (1000: AV2AV's k-means)
    batch_size: int = 4  # windows (of 10 frames) per update and per process
    learning_rate: float = 1e-4  # Adam, as Wav2Lip
    adam_b1: float = 0.5  # Wav2Lip's betas
    adam_b2: float = 0.999
    l1_weight: float = 1.0  # reconstruction L1 on the whole face
    sync_weight: float = 0.0  # sync-expert loss (Wav2Lip: 0.03); needs --sync_expert
    adv_weight: float = 0.0  # visual-quality GAN loss (Wav2Lip: 0.07)
    disc_learning_rate: float = 1e-4  # quality discriminator's Adam
    disc_channels: int = 32  # quality discriminator's first-layer width
    seed: int = 1234  # weights and window sampling
    input_training_file: str | None = None  # clip manifest (JSON lines)
    input_validation_file: str | None = None  # held-out clip manifest

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def loss_weights(self) -> dict[str, float]:
        """Loss name -> weight: ``l1``: ``l1_weight``, ``sync``: ``sync_weight``, ``adv``: ``adv_weight``."""
        return {"l1": self.l1_weight, "sync": self.sync_weight, "adv": self.adv_weight}


def load_face_config(path: str | os.PathLike | None = None, **overrides) -> FaceTrainConfig:
    """Read a face config JSON (``None``: the defaults), then apply ``overrides`` that are not None."""
    data: dict = {}
    if path is not None:
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise fail(path, f"cannot read face config: {e}") from e
        if not isinstance(data, dict):
            raise fail(path, "face config must be a JSON object")
    return face_config_from_dict({**data, **{k: v for k, v in overrides.items() if v is not None}}, path)


def face_config_from_dict(data: dict, source=None) -> FaceTrainConfig:
    names = {f.name for f in dataclasses.fields(FaceTrainConfig)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise fail(source, f"unknown face config keys: {', '.join(unknown)}")
    return FaceTrainConfig(**data)


@dataclass
class FaceTrainOptions:
    """Run options of ``train-face``."""

    checkpoint_path: str  # folder of f_/fo_ checkpoints, face_config.json and logs/
    training_steps: int = 200_000  # stop after this many updates
    validation_interval: int = 1000  # validate on fixed held-out windows every N updates; 0 = never
    checkpoint_interval: int = 10_000  # write f_/fo_ every N updates (and at the end)
    stdout_interval: int = 50  # log a loss line every N updates
    summary_interval: int = 100  # TensorBoard scalars every N updates
    device: str = "auto"  # "auto", "cpu", "cuda", "cuda:1"
    num_workers: int = 0  # data-loader workers per process
    init: str | None = None  # renderer weights to start from (an AV2AV container, e.g. unit_av_renderer.pt)
    sync_expert: str | None = None  # sync expert checkpoint from train-sync (for sync_weight > 0)
    max_seconds: float | None = None  # also stop after this much wall-clock training time
    valid_windows: int = 4  # fixed validation windows per held-out clip
    image_windows: int = 2  # validation windows drawn into TensorBoard image grids
    max_nonfinite: int = 5  # stop after this many non-finite steps in a row
    amp: bool = False  # float16 mixed precision (CUDA only)


@dataclass
class FaceTrainState:
    """Everything a face training step touches; ``generator``/``disc`` may be DDP-wrapped."""

    cfg: FaceTrainConfig
    opts: FaceTrainOptions
    dist: Dist
    device: torch.device
    generator: nn.Module
    optim_g: torch.optim.Optimizer
    disc: nn.Module | None = None
    optim_d: torch.optim.Optimizer | None = None
    sync: SyncExpert | None = None  # frozen
    step: int = 0
    best_val_error: float = math.inf
    first_val_error: float | None = None
    nonfinite: int = 0
    extra: dict = field(default_factory=dict)
    amp: bool = False  # autocast to float16 in the forward passes (CUDA only)
    scaler_g: torch.amp.GradScaler | None = None  # AMP loss scalers (disabled ones pass through)
    scaler_d: torch.amp.GradScaler | None = None

    @property
    def g(self) -> FaceRenderer:
        """The renderer without its DDP wrapper."""
        return unwrap(self.generator)

    @property
    def d(self) -> nn.Module | None:
        """The quality discriminator without its DDP wrapper (``None`` when ``adv_weight`` is 0)."""
        return unwrap(self.disc)


def load_sync_expert(path: str | os.PathLike, device: torch.device | str = "cpu") -> SyncExpert:
    """A frozen, eval-mode sync expert from a ``train-sync`` checkpoint (``{"sync": sd, "sync_config"}``)."""
    obj = load_torch(path, "sync expert")
    if not isinstance(obj, dict) or not isinstance(obj.get("sync"), dict) or "sync_config" not in obj:
        raise fail(path, "not a sync expert checkpoint (expected 'sync' and 'sync_config'; write one with train-sync)")
    model = SyncExpert(**obj["sync_config"])
    try:
        model.load_state_dict(obj["sync"])
    except RuntimeError as e:
        raise fail(path, f"sync expert weights do not fit: {' '.join(str(e).split())[:200]}") from e
    model.requires_grad_(False)
    return model.to(resolve_device(device)).eval()


def build_face_state(cfg: FaceTrainConfig, opts: FaceTrainOptions, dist: Dist) -> FaceTrainState:
    """Fresh (or ``opts.init``-initialised) renderer, optional discriminator and sync expert, Adam optimisers."""
    device = training.run_device(opts.device, dist)
    torch.manual_seed(cfg.seed)  # identical initial weights on every rank
    if opts.init:  # the renderer's own width and unit count (load_face_renderer's one rule)
        generator = load_face_renderer(opts.init)
        cfg.width, cfg.num_embeddings = generator.width, generator.num_embeddings
        log.info("fine-tuning %s (width %d, %d units)", opts.init, cfg.width, cfg.num_embeddings)
    else:
        generator = FaceRenderer(cfg.num_embeddings, cfg.width)
    generator = generator.to(device).train()
    betas = (cfg.adam_b1, cfg.adam_b2)
    state = FaceTrainState(
        cfg, opts, dist, device, generator, torch.optim.Adam(generator.parameters(), cfg.learning_rate, betas=betas)
    )
    if cfg.adv_weight > 0:
        state.disc = QualityDiscriminator(cfg.disc_channels).to(device).train()
        state.optim_d = torch.optim.Adam(state.disc.parameters(), cfg.disc_learning_rate, betas=betas)
    if cfg.sync_weight > 0:
        if not opts.sync_expert:
            raise fail(None, "sync_weight > 0 needs a sync expert: pass --sync_expert (train one with train-sync)")
        state.sync = load_sync_expert(opts.sync_expert, device)
        if state.sync.num_embeddings < cfg.num_embeddings:
            raise fail(
                opts.sync_expert,
                f"sync expert knows {state.sync.num_embeddings} units, the renderer {cfg.num_embeddings}",
            )
    state.amp = training.amp_enabled(opts.amp, device)
    state.scaler_g, state.scaler_d = (torch.amp.GradScaler(device.type, enabled=state.amp) for _ in range(2))
    torch.manual_seed(cfg.seed + dist.rank)  # per-rank randomness (dropout) from here on
    return state


def renderer_container(model: FaceRenderer, cfg: FaceTrainConfig | None = None, step: int | None = None) -> dict:
    """``{"audio": {}, "video": sd}`` (+ ``face_config``, ``steps``): an AV2AV container without vocoders."""
    inner = getattr(model, "module", model)
    obj: dict = {"audio": {}, "video": {k: v.detach().cpu() for k, v in inner.state_dict().items()}}
    if cfg is not None:
        obj["face_config"] = json.loads(json.dumps(cfg.to_dict()))
    if step is not None:
        obj["steps"] = int(step)
    return obj


def save_face_checkpoint(state: FaceTrainState, folder: str | os.PathLike, tag: str | None = None) -> Path:
    """Write ``f_<tag>`` then ``fo_<tag>`` atomically (tag: the 8-digit step or ``"best"``)."""
    folder = Path(folder)
    tag = tag or f"{state.step:08d}"
    save_torch(renderer_container(state.g, state.cfg, state.step), folder / f"f_{tag}")
    fo = {
        "optim_g": state.optim_g.state_dict(),
        "steps": state.step,
        "best_val_error": float(state.best_val_error),
        "config": state.cfg.to_dict(),
        "rng": rng_state(),
        "unit2av": FORMAT_MARKER,
        "disc": None if state.d is None else state.d.state_dict(),
        "optim_d": None if state.optim_d is None else state.optim_d.state_dict(),
        "scaler_g": state.scaler_g.state_dict(),
        "scaler_d": state.scaler_d.state_dict(),
    }
    save_torch(fo, folder / f"fo_{tag}")
    log.info("saved %s", folder / f"f_{tag}")
    return folder / f"fo_{tag}"


def latest_face_checkpoint(folder: str | os.PathLike) -> Path | None:
    """The ``fo_XXXXXXXX`` with the highest step whose ``f_`` exists."""
    return training.latest_checkpoint(folder, "fo", "f")


def load_face_checkpoint(state: FaceTrainState, fo_path: str | os.PathLike) -> None:
    """Restore ``state`` (weights, optimisers, counters, RNG) from ``fo_<tag>`` and its ``f_<tag>``."""
    fo_path = Path(fo_path)
    f_path = fo_path.with_name("f_" + fo_path.name[3:])
    fo = load_torch(fo_path, "training checkpoint")
    if not isinstance(fo, dict) or fo.get("unit2av") != FORMAT_MARKER:
        raise fail(fo_path, "not a train-face checkpoint")
    try:
        state.g.load_state_dict(face_state(open_container(f_path), f_path))
        state.optim_g.load_state_dict(fo["optim_g"])
        for name in ("scaler_g", "scaler_d"):  # absent in checkpoints written before --amp existed
            if fo.get(name):
                getattr(state, name).load_state_dict(fo[name])
        if state.d is not None:
            if fo.get("disc") is None:
                raise fail(fo_path, "was trained without the quality discriminator (adv_weight 0)")
            state.d.load_state_dict(fo["disc"])
            state.optim_d.load_state_dict(fo["optim_d"])
    except (RuntimeError, ValueError, KeyError) as e:
        raise fail(fo_path, f"does not fit this config: {' '.join(str(e).split())[:200]}") from e
    for group in state.optim_g.param_groups:  # the config's learning rate applies (it may have been changed)
        group["lr"] = state.cfg.learning_rate
    for group in state.optim_d.param_groups if state.optim_d is not None else []:
        group["lr"] = state.cfg.disc_learning_rate
    state.step = int(fo["steps"])
    state.best_val_error = float(fo.get("best_val_error", math.inf))
    if state.dist.world_size == 1:
        set_rng_state(fo["rng"])
    log.info("resumed from %s: step %d", fo_path, state.step)


__all__ = [
    "FaceTrainConfig",
    "FaceTrainOptions",
    "FaceTrainState",
    "build_face_state",
    "face_config_from_dict",
    "latest_face_checkpoint",
    "load_face_checkpoint",
    "load_face_config",
    "load_sync_expert",
    "renderer_container",
    "save_face_checkpoint",
]
