"""HiFi-GAN losses: least-squares adversarial, feature matching, mel L1; named and weighted.

The functions return unweighted sums; ``generator_objective`` weights them with the
config's ``lambda_mel`` (45), ``lambda_fm`` (2), ``lambda_adv`` (1) and
``dur_prediction_weight`` and returns every term by name.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

FeatureMaps = list[torch.Tensor]


def feature_loss(fmap_r: list[FeatureMaps], fmap_g: list[FeatureMaps]) -> torch.Tensor:
    """Feature matching: sum over discriminators and layers of mean |real - fake|.

    Args:
        fmap_r / fmap_g: per discriminator, the list of its layer outputs on real / generated audio.
    """
    loss = fmap_r[0][0].new_zeros(())
    for dr, dg in zip(fmap_r, fmap_g):
        for r, g in zip(dr, dg):
            loss = loss + torch.mean(torch.abs(r.float().detach() - g.float()))
    return loss


def discriminator_loss(real: list[torch.Tensor], fake: list[torch.Tensor]
                       ) -> tuple[torch.Tensor, list[float], list[float]]:
    """Least-squares discriminator loss: sum of mean (1 - D(y))^2 + mean D(y_hat)^2.

    Args:
        real / fake: per discriminator, its scores (B, N) on real / generated audio.

    Returns:
        ``(total, per-discriminator real losses, per-discriminator fake losses)``.
    """
    total = real[0].new_zeros((), dtype=torch.float32)
    r_losses, g_losses = [], []
    for dr, dg in zip(real, fake):
        r_loss = torch.mean((1 - dr.float()) ** 2)
        g_loss = torch.mean(dg.float() ** 2)
        total = total + r_loss + g_loss
        r_losses.append(r_loss.item())
        g_losses.append(g_loss.item())
    return total, r_losses, g_losses


def generator_loss(fake: list[torch.Tensor]) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Least-squares generator loss: sum over discriminators of mean (1 - D(y_hat))^2."""
    losses = [torch.mean((1 - dg.float()) ** 2) for dg in fake]
    return torch.stack(losses).sum(), losses


def mel_loss(mel_real: torch.Tensor, mel_fake: torch.Tensor) -> torch.Tensor:
    """L1 between log-mel spectrograms (B, M, F); frames trimmed to the shorter of the two."""
    n = min(mel_real.shape[-1], mel_fake.shape[-1])
    return F.l1_loss(mel_fake[..., :n].float(), mel_real[..., :n].float())


def generator_objective(mel_l1: torch.Tensor, fm: torch.Tensor, adv: torch.Tensor, dur: torch.Tensor | None,
                        lambda_mel: float, lambda_fm: float, lambda_adv: float,
                        dur_weight: float) -> dict[str, torch.Tensor]:
    """Weight the generator's loss terms and name them.

    Args:
        mel_l1: unweighted mel L1.
        fm: unweighted feature-matching loss (MPD + MSD).
        adv: unweighted adversarial loss (MPD + MSD).
        dur: duration-predictor loss (``None`` or ignored when ``dur_weight`` is 0).
        lambda_mel / lambda_fm / lambda_adv / dur_weight: weights from the config.

    Returns:
        ``{"mel", "fm", "adv", "dur", "total"}``: the weighted terms and their sum ("mel" is
        the unweighted L1, the usual "mel error").
    """
    total = lambda_mel * mel_l1 + lambda_fm * fm + lambda_adv * adv
    dur_term = torch.zeros_like(total) if dur is None else dur.float()
    if dur_weight and dur is not None:
        total = total + dur_weight * dur_term
    return {"mel": mel_l1, "fm": fm, "adv": adv, "dur": dur_term, "total": total}


__all__ = ["discriminator_loss", "feature_loss", "generator_loss", "generator_objective", "mel_loss"]
