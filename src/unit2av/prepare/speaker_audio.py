"""Weight-free signal helpers of the GE2E speaker encoder (``prepare.speaker``).

Here live the encoder's audio constants (its 16 kHz rate, partial-utterance layout, loudness target
and silence-detector thresholds), Resemblyzer-style preprocessing (``normalize_volume`` to -30 dBFS,
increase only; ``trim_long_silences`` with a frame-energy voice-activity detector in place of
webrtcvad), ``partial_starts`` (where the 1.6 s partials of an utterance begin) and
``cosine_similarity`` for comparing embeddings.
"""

from __future__ import annotations

import numpy as np
import torch

SAMPLE_RATE = 16000  # the GE2E weights' own audio rate (input is resampled to it); not the pipeline's timing
PARTIAL_FRAMES = 160  # frames per partial utterance (1.6 s)
PARTIAL_OVERLAP = 0.5  # overlap of consecutive partials
MIN_COVERAGE = 0.75  # keep a last, zero-padded partial only when this much of it is real audio
TARGET_DBFS = -30.0  # volume normalisation target (increase only)
VAD_WINDOW_MS = 30  # silence-trim analysis window
VAD_AVERAGE_WIDTH = 8  # windows in the moving average that smooths the voiced/unvoiced decision
VAD_MAX_SILENCE = 6  # unvoiced windows kept on each side of voiced audio
VAD_RELATIVE_DB = 40.0  # a window is voiced when its energy is within this many dB of the loudest one
VAD_FLOOR_DB = -60.0  # ... and above this absolute level (dBFS)
EPS = 1e-12  # guards log and division


def cosine_similarity(a: np.ndarray | torch.Tensor, b: np.ndarray | torch.Tensor) -> float:
    """Cosine similarity of two embeddings (any shape, flattened)."""
    a = np.asarray(a, dtype=np.float64).reshape(-1)
    b = np.asarray(b, dtype=np.float64).reshape(-1)
    return float(a @ b / max(np.linalg.norm(a) * np.linalg.norm(b), EPS))


def normalize_volume(wav: np.ndarray, target_dbfs: float = TARGET_DBFS, increase_only: bool = True) -> np.ndarray:
    """Scale ``wav`` (T,) so its mean power is ``target_dbfs``; never louder-to-quieter when ``increase_only``."""
    power = float(np.mean(np.square(wav, dtype=np.float64))) if wav.size else 0.0
    if power <= 0.0:
        return wav
    change_db = target_dbfs - 10.0 * np.log10(power)
    if change_db < 0 and increase_only:
        return wav
    return (wav * 10.0 ** (change_db / 20.0)).astype(np.float32)


def trim_long_silences(wav: np.ndarray, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Drop silences longer than ``VAD_MAX_SILENCE`` windows (frame-energy detector).

    Args:
        wav: ``(T,)`` float waveform.
        sample_rate: its rate.

    Returns:
        ``(T',)`` with ``T' <= T``; ``wav`` unchanged when nothing is voiced.
    """
    win = VAD_WINDOW_MS * sample_rate // 1000
    n = len(wav) // win
    if n < 1:
        return wav
    frames = wav[: n * win].reshape(n, win)  # (windows, samples)
    energy_db = 10.0 * np.log10(np.mean(np.square(frames, dtype=np.float64), axis=1) + EPS)
    voiced = (energy_db > energy_db.max() - VAD_RELATIVE_DB) & (energy_db > VAD_FLOOR_DB)
    smooth = np.convolve(voiced.astype(np.float64), np.ones(VAD_AVERAGE_WIDTH) / VAD_AVERAGE_WIDTH, mode="same")
    keep = smooth > 0.5
    if not keep.any():
        return wav
    # widen voiced regions by VAD_MAX_SILENCE windows on each side (binary dilation)
    keep = np.convolve(keep.astype(np.float64), np.ones(2 * VAD_MAX_SILENCE + 1), mode="same") > 0
    return frames[keep].reshape(-1)


def partial_starts(
    n_frames: int,
    partial_frames: int = PARTIAL_FRAMES,
    overlap: float = PARTIAL_OVERLAP,
    min_coverage: float = MIN_COVERAGE,
) -> list[int]:
    """First frame of each partial utterance covering ``n_frames`` mel frames.

    Full partials every ``partial_frames * (1 - overlap)`` frames; one more, zero-padded
    partial when at least ``min_coverage`` of it is real; always at least one.
    """
    step = max(1, int(round(partial_frames * (1.0 - overlap))))
    starts = list(range(0, max(n_frames - partial_frames, 0) + 1, step))
    nxt = starts[-1] + step
    if n_frames > starts[-1] + partial_frames and (n_frames - nxt) / partial_frames >= min_coverage:
        starts.append(nxt)
    return starts


__all__ = [
    "EPS",
    "MIN_COVERAGE",
    "PARTIAL_FRAMES",
    "PARTIAL_OVERLAP",
    "SAMPLE_RATE",
    "TARGET_DBFS",
    "cosine_similarity",
    "normalize_volume",
    "partial_starts",
    "trim_long_silences",
]
