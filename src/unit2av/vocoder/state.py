"""The training state of the unit vocoder: models, optimisers, counters; saving and resuming.

Checkpoints are the speech-resynthesis containers, written atomically (generator first, so
a ``do_`` file never exists without its ``g_``):

- ``g_XXXXXXXX`` = ``{"generator": sd (legacy weight_g/weight_v keys), "config", "steps"}``
- ``do_XXXXXXXX`` = ``{"mpd", "msd", "optim_g", "optim_d", "steps", "epoch"}`` plus ours:
  ``sched_g``, ``sched_d``, ``scaler_g``, ``scaler_d``, ``best_val_error``, ``epoch_batches``,
  ``config``, ``rng``, ``speakers``, ``disc_width`` and the marker ``"unit2av": 1``.

``steps`` counts completed updates. A speech-resynthesis ``do_`` (no marker) stores the
index of its last update, so resuming from one starts at ``steps + 1``.
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from .. import training
from ..errors import fail
from ..io.checkpoints import load_state_checked, open_container, vocoder_state
from ..io.safe import load_torch, save_torch
from ..spectral import MelSpectrogram, mel_for_config
from ..training import Dist, rng_state, set_rng_state, unwrap
from ..weightnorm import from_any_keys
from .checkpoint import save_generator
from .config import VocoderConfig
from .discriminators import MultiPeriodDiscriminator, MultiScaleDiscriminator, legacy_state_dict
from .losses import loss_weights
from .model import SOURCE_PARTS, UnitVocoder

log = logging.getLogger(__name__)

FORMAT_MARKER = 1  # value of do_["unit2av"]: the file was written by this trainer


@dataclass
class TrainOptions:
    """Run options of ``train-unit2a`` (the flags of speech-resynthesis' train.py and ours)."""

    checkpoint_path: str  # folder of g_/do_ checkpoints, config.json and logs/
    training_steps: int = 500_000  # stop after this many updates
    training_epochs: int = 2000  # ... or after this many epochs
    validation_interval: int = 5000  # validate (whole utterances) every N updates; 0 = never
    checkpoint_interval: int = 50_000  # write g_/do_ every N updates (and at the end)
    stdout_interval: int = 5  # log a loss line every N updates
    summary_interval: int = 100  # TensorBoard scalars every N updates
    device: str = "auto"  # "auto" (CUDA if available), "cpu", "cuda", "cuda:1"
    amp: bool = False  # float16 mixed precision (CUDA only)
    num_workers: int | None = None  # data-loader workers per process (None: the config's num_workers)
    max_nonfinite: int = 5  # stop after this many non-finite steps in a row
    disc_width: float = 1.0  # discriminator channel multiplier (1.0 = HiFi-GAN; smaller for tests)
    audio_samples: int = 3  # validation utterances written to TensorBoard as audio and images
    max_seconds: float | None = None  # also stop after this much wall-clock training time (None: no limit)
    init: str | None = None  # fresh run: start the generator from these weights (g_*, AV2AV container, ...)
    init_lang: str | None = None  # the language of an AV2AV ``init`` container
    # loss terms ("mel", "pitch", "stft") whose weighted sum over whole validation utterances, in mel-error
    # units (each weight divided by lambda_mel), is the validation error that picks g_best; ("mel",): the mel L1
    validation_terms: tuple[str, ...] = ("mel",)


@dataclass
class TrainState:
    """Everything a training step touches. ``generator``/``mpd``/``msd`` may be DDP-wrapped."""

    cfg: VocoderConfig
    opts: TrainOptions
    dist: Dist
    device: torch.device
    generator: nn.Module
    mpd: nn.Module
    msd: nn.Module
    optim_g: torch.optim.Optimizer
    optim_d: torch.optim.Optimizer
    sched_g: torch.optim.lr_scheduler.LRScheduler
    sched_d: torch.optim.lr_scheduler.LRScheduler
    scaler_g: torch.amp.GradScaler
    scaler_d: torch.amp.GradScaler
    mel: MelSpectrogram  # loss mel (fmax_for_loss) on the device
    amp: bool = False
    speakers: dict[str, int] | None = None  # speaker ID table (ID-based configs)
    step: int = 0  # completed updates
    epoch: int = 0  # current epoch (0-based)
    epoch_batches: int = 0  # updates done in the current epoch
    best_val_error: float = math.inf
    nonfinite: int = 0  # non-finite steps in a row
    first_val_error: float | None = None  # the first validation error of this run (step 0 on a fresh start)
    extra: dict = field(default_factory=dict)

    @property
    def g(self) -> UnitVocoder:
        """The generator without its DDP wrapper."""
        return unwrap(self.generator)

    @property
    def weights(self) -> dict[str, float]:
        """Loss name -> weight, from the config (``unit2av.vocoder.losses.loss_weights``)."""
        return loss_weights(self.cfg)

    @property
    def adversarial(self) -> bool:
        """False when feature matching and adversarial losses both weigh 0: the discriminators sit out."""
        return bool(self.cfg.lambda_fm or self.cfg.lambda_adv)


def build_state(cfg: VocoderConfig, opts: TrainOptions, dist: Dist) -> TrainState:
    """Fresh models (seeded by ``cfg.seed``), AdamW optimisers and per-epoch ExponentialLR schedulers."""
    device = training.run_device(opts.device, dist)
    amp = training.amp_enabled(opts.amp, device)
    torch.manual_seed(cfg.seed)  # identical initial weights on every rank
    generator = UnitVocoder.from_config(cfg)
    if opts.init and latest_checkpoint(opts.checkpoint_path) is None:  # a resume loads its own weights
        load_state_checked(
            generator,
            vocoder_state(open_container(opts.init), opts.init_lang, opts.init),
            opts.init,
            may_lack=SOURCE_PARTS if cfg.f0_source else (),
        )
        log.info("generator initialised from %s", opts.init)
    generator = generator.to(device)
    mpd = MultiPeriodDiscriminator(width=opts.disc_width).to(device)
    msd = MultiScaleDiscriminator(width=opts.disc_width).to(device)
    betas = (cfg.adam_b1, cfg.adam_b2)
    optim_g = torch.optim.AdamW(generator.parameters(), cfg.learning_rate, betas=betas)
    optim_d = torch.optim.AdamW(itertools.chain(msd.parameters(), mpd.parameters()), cfg.learning_rate, betas=betas)
    sched_g = torch.optim.lr_scheduler.ExponentialLR(optim_g, gamma=cfg.lr_decay)
    sched_d = torch.optim.lr_scheduler.ExponentialLR(optim_d, gamma=cfg.lr_decay)
    scaler_g, scaler_d = (torch.amp.GradScaler(device.type, enabled=amp) for _ in range(2))
    torch.manual_seed(cfg.seed + dist.rank)  # per-rank randomness (dropout) from here on
    return TrainState(
        cfg,
        opts,
        dist,
        device,
        generator,
        mpd,
        msd,
        optim_g,
        optim_d,
        sched_g,
        sched_d,
        scaler_g,
        scaler_d,
        mel_for_config(cfg, for_loss=True).to(device),
        amp=amp,
    )


# ------------------------------------------------------------------------------ save / load
def save_checkpoint(state: TrainState, folder: str | os.PathLike, tag: str | None = None) -> Path:
    """Write ``g_<tag>`` then ``do_<tag>`` atomically (tag: the 8-digit step, or e.g. ``"best"``)."""
    folder = Path(folder)
    tag = tag or f"{state.step:08d}"
    save_generator(state.g, folder / f"g_{tag}", config=state.cfg, step=state.step)
    do = {
        "mpd": legacy_state_dict(state.mpd),
        "msd": legacy_state_dict(state.msd),
        "optim_g": state.optim_g.state_dict(),
        "optim_d": state.optim_d.state_dict(),
        "steps": state.step,
        "epoch": state.epoch,
        "epoch_batches": state.epoch_batches,
        "sched_g": state.sched_g.state_dict(),
        "sched_d": state.sched_d.state_dict(),
        "scaler_g": state.scaler_g.state_dict(),
        "scaler_d": state.scaler_d.state_dict(),
        "best_val_error": float(state.best_val_error),
        "config": json.loads(json.dumps(state.cfg.to_dict())),
        "rng": rng_state(),
        "speakers": state.speakers,
        "disc_width": state.opts.disc_width,
        "unit2av": FORMAT_MARKER,
    }
    save_torch(do, folder / f"do_{tag}")
    log.info("saved %s", folder / f"g_{tag}")
    return folder / f"do_{tag}"


def latest_checkpoint(folder: str | os.PathLike) -> Path | None:
    """The ``do_XXXXXXXX`` with the highest step whose ``g_`` exists (``None`` if there is none)."""
    return training.latest_checkpoint(folder, "do", "g")


def _load_modules(state: TrainState, do: dict, g_path: Path, do_path: Path) -> None:
    """Generator, discriminators and optimisers from a checkpoint pair."""
    load_state_checked(state.g, vocoder_state(load_torch(g_path), None, g_path), g_path)
    for name in ("mpd", "msd"):
        module = unwrap(getattr(state, name))
        if name not in do:
            raise fail(do_path, f"checkpoint has no '{name}'")
        try:
            module.load_state_dict(from_any_keys(do[name], module))
        except RuntimeError as e:
            first = str(e).strip().splitlines()
            raise fail(
                do_path, f"'{name}' does not fit (disc_width {state.opts.disc_width}?): {' '.join(first[:2])}"
            ) from e
    try:
        state.optim_g.load_state_dict(do["optim_g"])
        state.optim_d.load_state_dict(do["optim_d"])
    except (KeyError, ValueError) as e:
        raise fail(do_path, f"optimiser state does not fit the models ({e})") from e


def load_checkpoint(state: TrainState, do_path: str | os.PathLike) -> None:
    """Restore ``state`` from ``do_<tag>`` and the ``g_<tag>`` beside it."""
    do_path = Path(do_path)
    do = load_torch(do_path, "training checkpoint")
    if not isinstance(do, dict) or "steps" not in do:
        raise fail(do_path, "not a do_ training checkpoint (no 'steps')")
    if do.get("disc_width") is not None and do["disc_width"] != state.opts.disc_width:
        raise fail(do_path, f"written with disc_width {do['disc_width']}, this run uses {state.opts.disc_width}")
    _load_modules(state, do, do_path.with_name("g_" + do_path.name[3:]), do_path)
    ours = do.get("unit2av") == FORMAT_MARKER
    state.step = int(do["steps"]) + (0 if ours else 1)
    state.epoch = int(do.get("epoch", 0))
    state.epoch_batches = int(do.get("epoch_batches", 0))
    state.best_val_error = float(do.get("best_val_error", math.inf))
    state.speakers = do.get("speakers", state.speakers)
    if ours:
        state.sched_g.load_state_dict(do["sched_g"])
        state.sched_d.load_state_dict(do["sched_d"])
        state.scaler_g.load_state_dict(do["scaler_g"])
        state.scaler_d.load_state_dict(do["scaler_d"])
        if state.dist.world_size == 1:  # other ranks' RNG streams were not saved
            set_rng_state(do["rng"])
    else:  # speech-resynthesis: the optimisers hold the decayed lr; restart the epoch
        state.sched_g.last_epoch = state.sched_d.last_epoch = state.epoch
    log.info("resumed from %s: step %d, epoch %d", do_path, state.step, state.epoch)


__all__ = [
    "Dist",
    "TrainOptions",
    "TrainState",
    "build_state",
    "latest_checkpoint",
    "load_checkpoint",
    "save_checkpoint",
]
