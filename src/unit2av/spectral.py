"""Spectral operations shared by the vocoder, its losses, unit features and the speaker encoder.

Mel filterbanks and windows are module buffers (built once per module, moved with it), never
module-level caches.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F


def mel_filterbank(
    sample_rate: int, n_fft: int, n_mels: int, fmin: float = 0.0, fmax: float | None = None
) -> np.ndarray:
    """Slaney-style mel filterbank (area-normalised triangles), as librosa's default.

    Returns:
        ``(n_mels, n_fft // 2 + 1)`` float32.
    """
    fmax = sample_rate / 2 if fmax is None else fmax

    def hz_to_mel(f):
        f = np.asarray(f, dtype=np.float64)
        f_sp, min_log_hz = 200.0 / 3, 1000.0
        min_log_mel, logstep = min_log_hz / f_sp, math.log(6.4) / 27.0
        return np.where(f >= min_log_hz, min_log_mel + np.log(np.maximum(f, 1e-10) / min_log_hz) / logstep, f / f_sp)

    def mel_to_hz(m):
        m = np.asarray(m, dtype=np.float64)
        f_sp, min_log_hz = 200.0 / 3, 1000.0
        min_log_mel, logstep = min_log_hz / f_sp, math.log(6.4) / 27.0
        return np.where(m >= min_log_mel, min_log_hz * np.exp(logstep * (m - min_log_mel)), f_sp * m)

    fft_freqs = np.linspace(0, sample_rate / 2, n_fft // 2 + 1)
    mel_pts = mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))
    fdiff = np.diff(mel_pts)
    ramps = mel_pts[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = np.maximum(0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_pts[2 : n_mels + 2] - mel_pts[:n_mels]))[:, None]
    return weights.astype(np.float32)


class MelSpectrogram(torch.nn.Module):
    """HiFi-GAN log-mel: reflect pad, |STFT| (Hann, not centred), mel, log(clamp 1e-5).

    Args:
        sample_rate, n_fft, hop_size, win_size, num_mels, fmin, fmax: as the config keys.

    Shapes:
        input ``(B, T)`` or ``(T,)`` waveform in [-1, 1]; output ``(B, num_mels, frames)``.
    """

    def __init__(
        self,
        sample_rate: int,
        n_fft: int,
        hop_size: int,
        win_size: int,
        num_mels: int,
        fmin: float = 0.0,
        fmax: float | None = None,
    ):
        super().__init__()
        self.n_fft, self.hop_size, self.win_size = n_fft, hop_size, win_size
        self.register_buffer(
            "mel_basis", torch.from_numpy(mel_filterbank(sample_rate, n_fft, num_mels, fmin, fmax)), persistent=False
        )
        self.register_buffer("window", torch.hann_window(win_size), persistent=False)

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        if wav.dim() == 1:
            wav = wav.unsqueeze(0)
        elif wav.dim() == 3:  # (B, 1, T) -> (B, T)
            wav = wav.squeeze(1)
        pad = (self.n_fft - self.hop_size) // 2
        wav = F.pad(wav.unsqueeze(1), (pad, pad), mode="reflect").squeeze(1)
        spec = torch.stft(
            wav.float(),
            self.n_fft,
            hop_length=self.hop_size,
            win_length=self.win_size,
            window=self.window,
            center=False,
            normalized=False,
            onesided=True,
            return_complex=True,
        )
        mag = torch.sqrt(spec.real.pow(2) + spec.imag.pow(2) + 1e-9)  # (B, F, frames)
        mel = torch.matmul(self.mel_basis, mag)  # (B, num_mels, frames)
        return torch.log(torch.clamp(mel, min=1e-5))


def mel_for_config(cfg, for_loss: bool = False) -> MelSpectrogram:
    """The ``MelSpectrogram`` a ``VocoderConfig`` describes (``for_loss`` uses ``fmax_for_loss``)."""
    return MelSpectrogram(
        cfg.sampling_rate,
        cfg.n_fft,
        cfg.hop_size,
        cfg.win_size,
        cfg.num_mels,
        cfg.fmin,
        cfg.fmax_for_loss if for_loss else cfg.fmax,
    )


def mel_spectrogram(
    wav: torch.Tensor,
    sample_rate: int,
    n_fft: int,
    hop_size: int,
    win_size: int,
    num_mels: int,
    fmin: float = 0.0,
    fmax: float | None = None,
) -> torch.Tensor:
    """Functional form of ``MelSpectrogram`` (builds the filterbank each call; prefer the module)."""
    return MelSpectrogram(sample_rate, n_fft, hop_size, win_size, num_mels, fmin, fmax).to(wav.device)(wav)


def autocorrelation(frames: torch.Tensor) -> torch.Tensor:
    """Autocorrelation of each frame along the last dimension, lags 0 .. n - 1 (FFT, not circular)."""
    n = frames.shape[-1]
    spec = torch.fft.rfft(frames, n=2 * n)
    return torch.fft.irfft(spec.real.pow(2) + spec.imag.pow(2), n=2 * n)[..., :n]


F0_RANGE = (60.0, 420.0)  # Hz searched by ``frame_f0``
F0_FRAME = 1024  # samples of each ``frame_f0`` analysis window (64 ms at 16 kHz)


@torch.no_grad()
def frame_f0(
    wav: torch.Tensor, sample_rate: int, hop: int, voicing: float = 0.5, silence_db: float = 35.0
) -> torch.Tensor:
    """Fundamental frequency per ``hop`` samples (one value per unit frame), 0 where unvoiced.

    An autocorrelation tracker: each frame's Hann-windowed autocorrelation is divided by the
    window's own (Boersma 1993), so that the peak height is the frame's periodicity (0..1); the
    period is the shortest lag in the 60-420 Hz range whose local peak is within 90 % of the
    highest one (this avoids picking a multiple of the period), refined by a parabola. A frame is
    voiced when that peak exceeds ``voicing`` and it is within ``silence_db`` of the loudest frame.

    Args:
        wav: (T,) or (B, T) audio.
        sample_rate / hop: audio rate and samples per output frame.

    Returns:
        (B, T // hop) float f0 in Hz (or (T // hop,) for 1-D input).
    """
    x = wav.float().reshape(-1, wav.shape[-1])
    n = x.shape[-1] // hop
    if n == 0:
        return x.new_zeros(x.shape[:-1] + (0,)).reshape(wav.shape[:-1] + (0,))
    left = F0_FRAME // 2 - hop // 2  # frame i is centred on unit frame i
    x = F.pad(x, (left, F0_FRAME))
    frames = x.unfold(-1, F0_FRAME, hop)[:, :n]  # (B, N, F0_FRAME)
    frames = frames - frames.mean(dim=-1, keepdim=True)
    window = torch.hann_window(F0_FRAME, periodic=False, device=x.device)
    lo, hi = int(sample_rate / F0_RANGE[1]), int(sample_rate / F0_RANGE[0]) + 1
    r = autocorrelation(frames * window)
    energy = r[..., 0]
    rw = autocorrelation(window)
    rw = rw / rw[0]
    r = r[..., lo - 1 : hi + 2] / (r[..., :1].clamp_min(1e-9) * rw[lo - 1 : hi + 2])  # lags lo-1 .. hi+1
    mid = r[..., 1:-1]  # lags lo .. hi
    peak = (mid >= r[..., :-2]) & (mid >= r[..., 2:])
    best = mid.amax(dim=-1, keepdim=True)
    first = (peak & (mid >= 0.9 * best)).float().argmax(dim=-1)  # index of the first qualifying local peak
    y0, y1, y2 = (r.gather(-1, (first + k).unsqueeze(-1)).squeeze(-1) for k in range(3))
    denom = y0 - 2 * y1 + y2
    shift = torch.where(denom.abs() > 1e-9, 0.5 * (y0 - y2) / denom, torch.zeros_like(denom)).clamp(-0.5, 0.5)
    f0 = sample_rate / (lo + first.float() + shift)
    loud = energy > energy.amax(dim=-1, keepdim=True) * 10 ** (-silence_db / 10)
    voiced = (best.squeeze(-1) > voicing) & loud
    return torch.where(voiced, f0, torch.zeros_like(f0)).reshape(wav.shape[:-1] + (n,))
