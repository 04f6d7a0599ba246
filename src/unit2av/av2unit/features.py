"""mAV-HuBERT's inputs, number for number as AV2AV computes them.

Audio: python_speech_features' ``logfbank`` defaults (26 mel bands, 25 ms frames every 10 ms,
no window, pre-emphasis 0.97, 512-point FFT) computed in float64 on **int16-scale** samples,
cast to float32, then 4 frames stacked into one 104-value row per 25 Hz video frame.
Video: 96x96 grayscale mouth crops (OpenCV's BGR->GRAY rounding on 8-bit BGR), centre crop
88x88, ``(x / 255 - mean) / std``.

    wav = load_audio_int16("clip.mp4")              # (N,) float64, int16 values, 16 kHz mono
    rows = stack_frames(logfbank(wav))              # (ceil(F / 4), 104) float32
    lip = read_lip_frames("clip.lip.mp4")           # (T, 96, 96) uint8
    video = image_transform(lip, 0.421, 0.165)      # (T, 88, 88) float32

Length rule (:func:`align_rows`): with video, audio rows beyond the video's frame count are
dropped from the end and missing rows are appended as zeros; audio alone keeps ``ceil(F / 4)``.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import fail
from ..timing import FACE_SIZE, SAMPLE_RATE

# python_speech_features.logfbank defaults at 16 kHz
FRAME_LEN = 400  # samples (25 ms)
FRAME_STEP = 160  # samples (10 ms)
NFFT = 512
NFILT = 26
PREEMPH = 0.97
STACK = 4  # filterbank frames per 25 Hz row (stack_order_audio)
LAYER_NORM_EPS = 1e-5  # F.layer_norm's default, as the reference normalises
INT16_SCALE = 32768.0  # float audio in [-1, 1) * this = int16 sample values


def num_fbank_frames(num_samples: int) -> int:
    """Frames ``logfbank`` makes of ``num_samples``: 1 if N <= 400 else 1 + ceil((N - 400) / 160)."""
    if num_samples <= FRAME_LEN:
        return 1
    return 1 + math.ceil((num_samples - FRAME_LEN) / FRAME_STEP)


def num_rows(num_samples: int) -> int:
    """25 Hz rows of stacked features from ``num_samples`` audio samples: ``ceil(F / 4)``."""
    return -(-num_fbank_frames(num_samples) // STACK)


def _hz_to_mel(hz):
    return 2595.0 * np.log10(1.0 + hz / 700.0)


def _mel_to_hz(mel):
    return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)


def fbank_matrix(sample_rate: int = SAMPLE_RATE, nfilt: int = NFILT, nfft: int = NFFT) -> np.ndarray:
    """Triangular mel filters between 0 Hz and Nyquist on floor'ed FFT bins.

    Returns:
        ``(nfilt, nfft // 2 + 1)`` float64.
    """
    mels = np.linspace(_hz_to_mel(0.0), _hz_to_mel(sample_rate / 2), nfilt + 2)
    bins = np.floor((nfft + 1) * _mel_to_hz(mels) / sample_rate)
    fb = np.zeros((nfilt, nfft // 2 + 1))
    for j in range(nfilt):
        lo, mid, hi = bins[j], bins[j + 1], bins[j + 2]
        for i in range(int(lo), int(mid)):
            fb[j, i] = (i - lo) / (mid - lo)
        for i in range(int(mid), int(hi)):
            fb[j, i] = (hi - i) / (hi - mid)
    return fb


def logfbank(samples: np.ndarray, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Log mel filterbank energies of int16-scale samples (computed in float64).

    Args:
        samples: ``(N,)`` sample values on the int16 scale (not divided by 32768).
        sample_rate: Hz (16000 for mAV-HuBERT).

    Returns:
        ``(F, 26)`` float32, ``F = num_fbank_frames(N)``.
    """
    x = np.asarray(samples, dtype=np.float64).reshape(-1)
    if x.size == 0:
        raise ValueError("logfbank of an empty signal")
    y = np.empty_like(x)
    y[0] = x[0]
    y[1:] = x[1:] - PREEMPH * x[:-1]
    n = num_fbank_frames(len(y))
    y = np.concatenate([y, np.zeros((n - 1) * FRAME_STEP + FRAME_LEN - len(y))])
    idx = np.arange(FRAME_LEN)[None, :] + FRAME_STEP * np.arange(n)[:, None]
    power = np.square(np.abs(np.fft.rfft(y[idx], NFFT))) / NFFT  # (F, 257)
    feat = power @ fbank_matrix(sample_rate).T  # (F, 26)
    feat = np.where(feat == 0, np.finfo(np.float64).eps, feat)
    return np.log(feat).astype(np.float32)


def stack_frames(feats: np.ndarray, order: int = STACK) -> np.ndarray:
    """Zero-pad ``(F, D)`` to a multiple of ``order`` rows and join each ``order`` rows.

    Returns:
        ``(ceil(F / order), order * D)`` of the same dtype.
    """
    rest = (-len(feats)) % order
    if rest:
        feats = np.concatenate([feats, np.zeros((rest, feats.shape[1]), dtype=feats.dtype)])
    return feats.reshape(-1, order * feats.shape[1])


def align_rows(rows: np.ndarray, num_frames: int) -> np.ndarray:
    """The length rule with video: drop rows beyond ``num_frames``, append zero rows if short."""
    if len(rows) >= num_frames:
        return rows[:num_frames]
    return np.concatenate([rows, np.zeros((num_frames - len(rows), rows.shape[1]), dtype=rows.dtype)])


def normalize_rows(rows: torch.Tensor) -> torch.Tensor:
    """Layer norm of each row, no affine, eps 1e-5 (an all-zero row stays zero). ``(T, D) -> (T, D)``."""
    return F.layer_norm(rows, rows.shape[-1:], eps=LAYER_NORM_EPS)


def audio_rows(
    samples: np.ndarray, num_frames: int | None = None, normalize: bool = True, stack: int = STACK
) -> tuple[np.ndarray, torch.Tensor]:
    """Stacked filterbank rows of int16-scale samples, aligned and normalised as the reference does.

    Args:
        samples: ``(N,)`` int16-scale values at 16 kHz.
        num_frames: video frames to align to (``None``: audio alone, ``ceil(F / 4)`` rows).
        normalize: per-row layer norm (the checkpoint's ``task.normalize``).
        stack: filterbank frames per row (``task.stack_order_audio``).

    Returns:
        ``(raw (T, 26 * stack) float32 numpy, model input (T, 26 * stack) float32 tensor)``.
    """
    raw = stack_frames(logfbank(samples), stack)
    if num_frames is not None:
        raw = align_rows(raw, num_frames)
    rows = torch.from_numpy(np.ascontiguousarray(raw))
    return raw, normalize_rows(rows) if normalize else rows


def bgr_to_gray(bgr: np.ndarray) -> np.ndarray:
    """OpenCV's 8-bit BGR->GRAY: ``(1868 B + 9617 G + 4899 R + 8192) >> 14``. ``(..., 3) -> (...)`` uint8."""
    b = bgr.astype(np.int32)
    return ((1868 * b[..., 0] + 9617 * b[..., 1] + 4899 * b[..., 2] + 8192) >> 14).astype(np.uint8)


def image_transform(gray: np.ndarray, mean: float, std: float, crop: int = 88) -> np.ndarray:
    """``x / 255``, centre crop ``crop`` x ``crop``, ``(x - mean) / std`` in float64, then float32.

    Args:
        gray: ``(T, H, W)`` uint8 frames.
        mean, std: ``task.image_mean`` / ``task.image_std``.
        crop: ``task.image_crop_size``.

    Returns:
        ``(T, crop, crop)`` float32.
    """
    h, w = gray.shape[-2:]
    top, left = (h - crop) // 2, (w - crop) // 2
    x = gray[:, top : top + crop, left : left + crop].astype(np.float64) / 255.0
    return ((x - mean) / std).astype(np.float32)


def load_audio_int16(path: str | os.PathLike) -> np.ndarray:
    """Audio of any file PyAV reads as AV2AV extracts it (ffmpeg -> 16 kHz mono s16 wav).

    The first audio stream is resampled by FFmpeg's own resampler, quantised to 16 bits and
    trimmed to the stream's duration (not the codec's padding).

    Returns:
        ``(N,)`` float64 holding int16 sample values.

    Raises:
        Unit2AVError: missing file, no audio track, or an undecodable one.
    """
    from ..io.media import read_audio_track

    wav, _ = read_audio_track(path, sample_rate=SAMPLE_RATE, trim=True, int16=True)
    return wav.astype(np.float64) * INT16_SCALE


def float_to_int16_scale(wav: np.ndarray) -> np.ndarray:
    """A float waveform in [-1, 1] -> int16-scale float64 (``x * 32768``; exact for 16-bit sources)."""
    return np.asarray(wav, dtype=np.float64).reshape(-1) * INT16_SCALE


def read_lip_frames(path: str | os.PathLike, size: int = FACE_SIZE) -> np.ndarray:
    """Grayscale frames of a mouth-crop video as the reference reads them (OpenCV decode + BGR2GRAY).

    Frames are converted to 8-bit BGR by FFmpeg's swscale (as OpenCV's reader does), then to gray
    with OpenCV's rounding.

    Returns:
        ``(T, size, size)`` uint8.

    Raises:
        Unit2AVError: missing/undecodable file, no frames, or frames that are not ``size`` x ``size``.
    """
    from ..io.media import decode_video

    path = Path(path)
    frames = []
    for frame in decode_video(path):
        if (frame.width, frame.height) != (size, size):
            raise fail(
                path,
                f"mouth-crop frames are {frame.width}x{frame.height}; mAV-HuBERT reads "
                f"{size}x{size} crops (.lip.mp4 as `unit2av prepare` writes them)",
            )
        frames.append(bgr_to_gray(frame.to_ndarray(format="bgr24")))
    if not frames:
        raise fail(path, "mouth-crop video has no frames")
    return np.stack(frames)


def check_lip_array(lip: np.ndarray, size: int = FACE_SIZE, source=None) -> np.ndarray:
    """Validate in-memory mouth crops: ``(T, size, size)`` uint8 gray (a ``(T, H, W, 3)`` BGR stack is converted)."""
    lip = np.asarray(lip)
    if lip.ndim == 4 and lip.shape[-1] == 3:
        lip = bgr_to_gray(lip)
    if lip.ndim != 3 or lip.shape[1:] != (size, size) or lip.dtype != np.uint8 or len(lip) == 0:
        raise fail(
            source,
            f"mouth crops must be uint8 (T, {size}, {size}) grayscale frames, got {lip.dtype} {tuple(lip.shape)}",
        )
    return lip


__all__ = [
    "align_rows",
    "audio_rows",
    "bgr_to_gray",
    "check_lip_array",
    "fbank_matrix",
    "float_to_int16_scale",
    "image_transform",
    "load_audio_int16",
    "logfbank",
    "normalize_rows",
    "num_fbank_frames",
    "num_rows",
    "read_lip_frames",
    "stack_frames",
]
