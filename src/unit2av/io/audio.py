"""Audio I/O and THE mel spectrogram (HiFi-GAN's definition).

- ``load_audio``: any file soundfile reads (wav/flac/ogg) or, failing that, the audio track
  of any container PyAV decodes (mp4, m4a, mp3 ...); mixed to mono, resampled.
- ``MelSpectrogram``: log-mel with the filterbank and window as module buffers (no
  module-level cache); ``mel_spectrogram`` is the functional form.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from scipy.signal import resample_poly

from ..errors import Unit2AVError, fail
from .safe import atomic_path

log = logging.getLogger(__name__)

MAX_WAV_VALUE = 32768.0
SOUNDFILE_SUFFIXES = (".wav", ".flac", ".ogg", ".aiff", ".aif")  # formats that must open with soundfile


AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3", ".m4a", ".mp4", ".mkv", ".webm", ".avi", ".mov")


def find_audio_files(root: str | os.PathLike, extensions: Sequence[str] = AUDIO_EXTENSIONS) -> list[Path]:
    """All audio/video files under ``root`` (recursive, sorted).

    Raises:
        Unit2AVError: ``root`` is missing or holds no such file.
    """
    root = Path(root)
    if not root.is_dir():
        raise fail(root, "audio root not found (expected a folder)")
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in extensions)
    if not files:
        raise fail(root, f"no audio files ({', '.join(extensions[:3])} ...) found")
    return files


def resample(wav: np.ndarray, orig_sr: int, target_sr: int) -> np.ndarray:
    """Polyphase resampling of a 1-D float array (exact rational ratio)."""
    if orig_sr == target_sr:
        return wav
    frac = Fraction(target_sr, orig_sr)
    return resample_poly(wav, frac.numerator, frac.denominator).astype(np.float32)


def load_audio(path: str | os.PathLike, sample_rate: int | None = None) -> tuple[np.ndarray, int]:
    """Read an audio file (or a video's audio track) as mono float32 in [-1, 1].

    Args:
        path: the file.
        sample_rate: resample to this rate (``None`` keeps the file's rate).

    Returns:
        ``(wav (T,), rate)``.

    Raises:
        Unit2AVError: missing, unreadable or empty audio.
    """
    path = Path(path)
    if not path.is_file():
        raise fail(path, "audio file not found")
    try:
        wav, sr = sf.read(str(path), dtype="float32", always_2d=True)
        wav = wav.mean(axis=1)
    except Exception as sf_error:  # noqa: BLE001 - not a soundfile format: try the container decoder
        from .media import read_audio_track

        try:
            wav, sr = read_audio_track(path)
        except Unit2AVError as e:
            if path.suffix.lower() in SOUNDFILE_SUFFIXES:  # an audio file neither decoder can read
                raise fail(path, f"unreadable audio ({' '.join(str(sf_error).split())})") from e
            raise
    if wav.size == 0:
        raise fail(path, "audio is empty")
    if not np.all(np.isfinite(wav)):
        raise fail(path, "audio contains NaN or infinite samples")
    if sample_rate is not None and sr != sample_rate:
        wav = resample(wav, sr, sample_rate)
        sr = sample_rate
    return np.ascontiguousarray(wav, dtype=np.float32), int(sr)


def save_wav(path: str | os.PathLike, wav: np.ndarray | torch.Tensor, sample_rate: int, fmt: str = "int16") -> None:
    """Write a mono wav atomically; ``fmt`` is ``"int16"`` (PCM_16) or ``"float"`` (FLOAT)."""
    if isinstance(wav, torch.Tensor):
        wav = wav.detach().float().cpu().numpy()
    wav = np.asarray(wav, dtype=np.float32).reshape(-1)
    subtype = {"int16": "PCM_16", "float": "FLOAT"}[fmt]
    if fmt == "int16":
        wav = np.clip(wav, -1.0, 32767 / 32768)
    with atomic_path(path, suffix=".wav") as tmp:
        sf.write(str(tmp), wav, sample_rate, subtype=subtype)
