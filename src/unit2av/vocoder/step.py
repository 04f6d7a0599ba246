"""One training update of the unit vocoder (CodeHiFiGAN) over a ``TrainState``.

Here live ``train_step`` (one MPD + MSD discriminator update, unless the adversarial loss weights
are 0, then one generator update; a non-finite loss skips the step) and ``generator_terms`` (the
generator's unweighted loss terms by name); the loop around them, the loaders and validation are in
``vocoder.train``.
"""

from __future__ import annotations

import torch

from ..spectral import frame_f0
from ..training import all_finite, scaled_update, skip_step
from .losses import (
    discriminator_loss,
    feature_loss,
    generator_loss,
    generator_objective,
    mel_loss,
    pitch_loss,
    stft_loss,
)
from .state import TrainState


def _skip(state: TrainState, what: str) -> dict[str, float]:
    return skip_step(state, what, state.opts.max_nonfinite, state.opts.checkpoint_path, state.optim_g, state.optim_d)


def _discriminator_step(state: TrainState, y: torch.Tensor, y_hat: torch.Tensor, autocast) -> torch.Tensor | None:
    """One MPD + MSD update on real ``y`` and detached generated ``y_hat`` (B, 1, T); ``None`` if not finite."""
    with autocast:
        real_p, fake_p, _, _ = state.mpd(y, y_hat.detach())
        real_s, fake_s, _, _ = state.msd(y, y_hat.detach())
    loss_d = discriminator_loss(real_p, fake_p)[0] + discriminator_loss(real_s, fake_s)[0]
    if not all_finite(state.device, state.dist, y_hat, loss_d):
        return None
    scaled_update(loss_d, state.optim_d, state.scaler_d)
    return loss_d


def generator_terms(
    state: TrainState,
    y: torch.Tensor,
    y_hat: torch.Tensor,
    y_mel: torch.Tensor,
    dur_loss: torch.Tensor | None,
    autocast,
) -> dict[str, torch.Tensor | None]:
    """The generator's unweighted loss terms by name; a term whose weight is 0 is not computed (``None``).

    Args:
        y / y_hat: real / generated audio (B, 1, T); y_mel: the real loss mel (B, M, F).
        dur_loss: the duration predictor's loss of this forward (``None`` without a predictor).
    """
    w = state.weights
    if state.adversarial:  # (the order in which the graph is built decides how gradients are summed: kept)
        with autocast:
            _, fake_p, fmap_rp, fmap_gp = state.mpd(y, y_hat)
            _, fake_s, fmap_rs, fmap_gs = state.msd(y, y_hat)
    terms: dict[str, torch.Tensor | None] = {"mel": mel_loss(y_mel, state.mel(y_hat)), "fm": None, "adv": None}
    if state.adversarial:
        terms["fm"] = feature_loss(fmap_rp, fmap_gp) + feature_loss(fmap_rs, fmap_gs)
        terms["adv"] = generator_loss(fake_p)[0] + generator_loss(fake_s)[0]
    terms["dur"] = None if dur_loss is None else dur_loss.float()
    terms["stft"] = stft_loss(y, y_hat) if w["stft"] else None
    terms["pitch"] = pitch_loss(y, y_hat, state.cfg.sampling_rate) if w["pitch"] else None
    terms["f0"] = state.g.last_f0_loss if state.cfg.f0_source else None
    return terms


def train_step(state: TrainState, batch: dict) -> dict[str, float]:
    """One discriminator update (unless the adversarial weights are 0) and one generator update.

    Args:
        state: the training state (models, optimisers, counters).
        batch: from ``UnitAudioDataset``: ``code`` (B, S), ``audio`` (B, S * hop), ``mel`` (B, M, F),
            optional ``spkr``.

    Returns:
        Named losses: ``total`` (the weighted generator objective), the unweighted terms (``mel`` is
        the L1 mel error, ``dur``, and those computed: ``fm``, ``adv``, ``stft``, ``pitch``, ``f0``)
        and ``disc`` (with discriminators); or ``{"skipped": 1.0}`` when a loss was not finite.
    """
    dev, cfg = state.device, state.cfg
    code = batch["code"].to(dev)
    y = batch["audio"].to(dev).unsqueeze(1)  # (B, 1, T)
    spkr = batch["spkr"].to(dev) if "spkr" in batch else None
    autocast = torch.autocast(dev.type, dtype=torch.float16, enabled=state.amp)
    f0 = frame_f0(y[:, 0], cfg.sampling_rate, cfg.code_hop_size) if cfg.f0_source else None  # the real f0
    with autocast:
        y_hat, dur_loss = state.generator(code=code, spkr=spkr, f0=f0)
    y_hat = y_hat.float()
    loss_d = None
    if state.adversarial:
        loss_d = _discriminator_step(state, y, y_hat, autocast)
        if loss_d is None:
            return _skip(state, "generator output or discriminator loss")
    losses = generator_objective(
        generator_terms(state, y, y_hat, batch["mel"].to(dev), dur_loss, autocast), state.weights
    )
    if not all_finite(dev, state.dist, losses["total"]):
        return _skip(state, "generator loss")
    scaled_update(losses["total"], state.optim_g, state.scaler_g)
    state.nonfinite = 0
    state.step += 1
    state.epoch_batches += 1
    out = {k: float(v.detach()) for k, v in losses.items()}
    if loss_d is not None:
        out["disc"] = float(loss_d.detach())
    return out


__all__ = ["generator_terms", "train_step"]
