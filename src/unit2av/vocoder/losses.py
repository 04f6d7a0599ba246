"""HiFi-GAN losses: least-squares adversarial, feature matching, mel L1; named and weighted.

The functions return unweighted sums. ``loss_weights(cfg)`` names each term's weight as the
config gives it, and ``generator_objective(terms, weights)`` adds up the weighted terms.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F

from ..spectral import autocorrelation
from ..timing import HOP_SAMPLES, SAMPLE_RATE
from ..training import weighted_sum

# generator loss term -> the config key of its weight
WEIGHT_KEYS = {
    "mel": "lambda_mel",
    "fm": "lambda_fm",
    "adv": "lambda_adv",
    "dur": "dur_prediction_weight",
    "stft": "lambda_stft",
    "pitch": "lambda_pitch",
    "f0": "lambda_f0",
}

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


def discriminator_loss(
    real: list[torch.Tensor], fake: list[torch.Tensor]
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


def _paired(y: torch.Tensor, y_hat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Real and generated audio as float (B, T), both trimmed to the shorter."""
    y, y_hat = y.reshape(y.shape[0], -1).float(), y_hat.reshape(y_hat.shape[0], -1).float()
    n = min(y.shape[-1], y_hat.shape[-1])
    return y[:, :n], y_hat[:, :n]


STFT_RESOLUTIONS = ((512, 128), (1024, 256), (2048, 512))  # (FFT size = window, hop) of ``stft_loss``
STFT_FLOOR = 1e-5  # magnitude floor before the log


def stft_loss(
    y: torch.Tensor, y_hat: torch.Tensor, resolutions: tuple[tuple[int, int], ...] = STFT_RESOLUTIONS
) -> torch.Tensor:
    """Multi-resolution linear-frequency STFT loss (spectral convergence + log-magnitude L1).

    Compares linear-frequency magnitudes at three resolutions (up to 2048 points: 7.8 Hz bins),
    so the harmonics of a voice weigh as much at 3 kHz as at 300 Hz; used as an auxiliary
    term when training without (or before) the discriminators. Off by default
    (``lambda_stft`` = 0, HiFi-GAN's recipe). Averaged over the resolutions.

    Args:
        y / y_hat: real / generated audio, (B, T) or (B, 1, T); trimmed to the shorter.
        resolutions: ``(n_fft, hop)`` pairs (Hann window of ``n_fft`` samples).
    """
    y, y_hat = _paired(y, y_hat)
    total = y.new_zeros(())
    for n_fft, hop in resolutions:
        win = torch.hann_window(n_fft, device=y.device)
        mag_r, mag_g = (
            torch.stft(x, n_fft, hop, window=win, return_complex=True).abs().clamp_min(STFT_FLOOR) for x in (y, y_hat)
        )
        convergence = torch.linalg.vector_norm(mag_r - mag_g) / torch.linalg.vector_norm(mag_r)
        total = total + convergence + F.l1_loss(mag_g.log(), mag_r.log())
    return total / len(resolutions)


ACF_FRAME, ACF_HOP = 1024, HOP_SAMPLES  # autocorrelation frames of ``pitch_loss`` (64 ms every 20 ms at 16 kHz)
ACF_F0_RANGE = (70.0, 400.0)  # Hz: the lags compared
ACF_LOUD = 0.05  # frames quieter than this share of the segment's loudest frame are ignored


def _autocorrelation(x: torch.Tensor, sample_rate: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, T) -> normalised autocorrelation at the pitch lags (B, N, L) and frame energy (B, N)."""
    frames = x.unfold(-1, ACF_FRAME, ACF_HOP)  # (B, N, frame)
    frames = frames - frames.mean(dim=-1, keepdim=True)
    acf = autocorrelation(frames * torch.hann_window(ACF_FRAME, device=x.device))
    lo, hi = int(sample_rate / ACF_F0_RANGE[1]), int(sample_rate / ACF_F0_RANGE[0]) + 1
    return acf[..., lo:hi] / acf[..., :1].clamp_min(1e-8), frames.pow(2).mean(dim=-1)


def pitch_loss(y: torch.Tensor, y_hat: torch.Tensor, sample_rate: int = SAMPLE_RATE) -> torch.Tensor:
    """Phase-free periodicity loss: match the real audio's autocorrelation at pitch lags, frame by frame.

    Each 64 ms frame's normalised autocorrelation over the lags of 70-400 Hz is compared (L1,
    mean over lags) plus the height of its peak (how periodic the frame is), on frames with
    real sound. Being blind to phase and time shifts, it teaches a generator to make voiced
    frames periodic at the speaker's pitch; the mel loss alone, when the units do not pin the
    pitch down (low voices, coarse units), is best served by a noisy excitation, and a
    generator left to itself locks onto periods of its upsampling grid.

    Args:
        y / y_hat: real / generated audio, (B, T) or (B, 1, T), at least one frame long.
    """
    y, y_hat = _paired(y, y_hat)
    real, energy = _autocorrelation(y, sample_rate)
    fake, _ = _autocorrelation(y_hat, sample_rate)
    weight = (energy > ACF_LOUD * energy.amax(dim=-1, keepdim=True)).float()
    per_frame = (fake - real).abs().mean(dim=-1) + (fake.amax(dim=-1) - real.amax(dim=-1)).abs()
    return (per_frame * weight).sum() / weight.sum().clamp_min(1.0)


def speaker_consistency_loss(encoder, y: torch.Tensor, y_hat: torch.Tensor) -> torch.Tensor:
    """Mean ``1 - cos`` between a speaker encoder's embeddings of generated and real segments.

    YourTTS's speaker consistency loss: the generated audio must carry the voice of the real
    audio at the same place, as a speaker encoder hears it (``SpeakerEncoder.embed_segments``,
    frozen; gradients reach only ``y_hat``).

    Args:
        encoder: a ``SpeakerEncoder`` at the audio's rate, on the same device.
        y / y_hat: real / generated audio, (B, T) or (B, 1, T); trimmed to the shorter.
    """
    y, y_hat = _paired(y, y_hat)
    with torch.no_grad():
        real = encoder.embed_segments(y)
    return (1.0 - (encoder.embed_segments(y_hat) * real).sum(dim=1)).mean()


def loss_weights(cfg) -> dict[str, float]:
    """The generator's loss weights by term name, from a ``VocoderConfig`` (``WEIGHT_KEYS``).

    ``mel``: ``lambda_mel`` (45), ``fm``: ``lambda_fm`` (2), ``adv``: ``lambda_adv`` (1), ``dur``:
    ``dur_prediction_weight`` (1), ``stft``: ``lambda_stft`` (0), ``pitch``: ``lambda_pitch`` (0),
    ``f0``: ``lambda_f0`` (1; its term exists only for ``f0_source`` vocoders). A weight of 0
    leaves its term out; ``fm`` and ``adv`` both 0 train the generator without discriminators.
    """
    return {name: float(getattr(cfg, key)) for name, key in WEIGHT_KEYS.items()}


def generator_objective(
    terms: Mapping[str, torch.Tensor | None], weights: Mapping[str, float]
) -> dict[str, torch.Tensor]:
    """The generator's training loss: the weighted sum of its named terms.

    Args:
        terms: unweighted loss terms by name (``mel`` L1, ``fm``, ``adv``, ``dur``, ``stft``,
            ``pitch``, ``f0``); ``None`` for a term that was not computed. They are summed in
            this order.
        weights: name -> weight (``loss_weights(cfg)``); a term weighted 0 or missing is not added.

    Returns:
        The given terms, **unweighted**, by name (``dur`` is 0 when not given; ``mel`` is the
        usual "mel error"), and ``"total"``: the weighted sum that is minimised.
    """
    total = weighted_sum(terms, weights)
    out = {name: value for name, value in terms.items() if value is not None}
    out.setdefault("dur", torch.zeros_like(total))
    out["total"] = total
    return out


__all__ = [
    "WEIGHT_KEYS",
    "discriminator_loss",
    "feature_loss",
    "generator_loss",
    "generator_objective",
    "loss_weights",
    "mel_loss",
    "pitch_loss",
    "speaker_consistency_loss",
    "stft_loss",
]
