"""Lip sync without a learned model: mouth motion against speech energy over sliding offsets.

What is measured, per video:

- mouth motion ``m[t]``: the mouth region of frame ``t``'s face box (``MOUTH_ROI``: the lower
  middle of the box) is warped to a fixed 64x32 grey patch; ``m[t]`` is the mean absolute
  difference between the patches of frames ``t`` and ``t + 1`` (centred at ``(t + 0.5) / fps``).
  Pairs with a missing box are left out.
- speech energy ``e[t]``: the 300-3000 Hz band of the soundtrack, its energy in dB over
  ``[t / fps, (t + 1) / fps)`` (centred at the same instant).
- ``r(k)``: the Pearson correlation of ``m[t]`` with ``e[t + k]`` for each audio lag
  ``k = -K .. K`` frames (positive ``k``: the sound comes ``k`` frames after the mouth motion).

Mouth motion precedes the sound it shapes, so real, in-sync speech peaks at a small positive lag
(``NATURAL_LAG_FRAMES``, +2 frames on the LRS3 sample clip), not at 0; the source video, when
given, supplies this lag for its speaker instead. The figures (SyncNet's LSE-D / LSE-C idea with a
correlation instead of a learned embedding distance):

- ``offset_frames``: the peak lag minus the expected lag: 0 in sync, +N when the audio is N
  frames late, -N when it is early.
- ``confidence``: ``r(expected lag) - median_k r(k)``: how far the correlation at the in-sync
  alignment stands above the typical one; drops when the audio is shifted.
- ``peak_confidence``: ``max_k r(k) - median_k r(k)`` (the LSE-C analogue at the best lag).
"""

from __future__ import annotations

import cv2
import numpy as np
from scipy.signal import butter, sosfilt

MOUTH_ROI = (0.25, 0.60, 0.75, 0.90)  # x1, y1, x2, y2 of the mouth region as fractions of the face box
PATCH = (64, 32)  # width, height of the warped mouth patch
BAND_HZ = (300.0, 3000.0)  # speech band of the energy track
MAX_OFFSET = 15  # frames searched either way (SyncNet's default)
MIN_PAIRS = 20  # fewest overlapping frame pairs for a correlation
NATURAL_LAG_FRAMES = 2  # the peak lag of in-sync real speech when no source is given (the sample clip's)
ENERGY_FLOOR = 1e-8  # added to the band energy before the log (silence floor, -80 dB)


def mouth_patch(frame: np.ndarray, box) -> np.ndarray:
    """The grey mouth region of one frame, warped to ``PATCH``.

    Args:
        frame: (H, W, 3) uint8 BGR.
        box: ``[x1, y1, x2, y2]`` face box in pixels, or ``None``.

    Returns:
        (32, 64) float32; all NaN when ``box`` is ``None``.
    """
    if box is None:
        return np.full(PATCH[::-1], np.nan, np.float32)
    fx1, fy1, fx2, fy2 = MOUTH_ROI
    x1, y1, x2, y2 = (float(v) for v in box)
    w, h = x2 - x1, y2 - y1
    src = np.float32([[x1 + fx1 * w, y1 + fy1 * h], [x1 + fx2 * w, y1 + fy1 * h], [x1 + fx1 * w, y1 + fy2 * h]])
    dst = np.float32([[0, 0], [PATCH[0], 0], [0, PATCH[1]]])
    patch = cv2.warpAffine(
        frame, cv2.getAffineTransform(src, dst), PATCH, flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE
    )  # (32, 64, 3) BGR
    return cv2.cvtColor(patch, cv2.COLOR_BGR2GRAY).astype(np.float32)


def mouth_motion(patches: np.ndarray) -> np.ndarray:
    """(N, h, w) patches -> (N - 1,) mean absolute change between consecutive frames (NaN if missing)."""
    if len(patches) < 2:
        return np.zeros(0, np.float32)
    return np.abs(np.diff(patches, axis=0)).mean(axis=(1, 2))


def speech_energy(wav: np.ndarray, sample_rate: int, fps: float, num: int) -> np.ndarray:
    """Band energy in dB over each frame interval ``[t / fps, (t + 1) / fps)``, ``t < num``.

    Args:
        wav: (T,) float speech.

    Returns:
        (num,) float64; the floor value past the end of the audio.
    """
    sos = butter(4, BAND_HZ, btype="band", fs=sample_rate, output="sos")
    band = sosfilt(sos, np.asarray(wav, np.float64)) if len(wav) > 0 else np.zeros(0)
    edges = np.round(np.arange(num + 1) * sample_rate / fps).astype(np.int64)
    power = np.cumsum(np.concatenate([[0.0], band**2]))
    lo, hi = np.minimum(edges[:-1], len(band)), np.minimum(edges[1:], len(band))
    mean = (power[hi] - power[lo]) / np.maximum(hi - lo, 1)
    return 10.0 * np.log10(mean + ENERGY_FLOOR)


def lag_correlations(motion: np.ndarray, energy: np.ndarray, max_offset: int) -> dict[int, float]:
    """Pearson correlation of ``motion[t]`` with ``energy[t + k]`` for ``|k| <= max_offset``.

    Args:
        motion, energy: (N,) sequences on the same frame grid (NaN in ``motion`` = left out).

    Returns:
        ``{k: r}`` for the lags with at least ``MIN_PAIRS`` valid pairs.
    """
    n = len(motion)
    out = {}
    for k in range(-max_offset, max_offset + 1):
        t = np.arange(max(0, -k), min(n, n - k))
        a, b = motion[t], energy[t + k]
        ok = np.isfinite(a) & np.isfinite(b)
        if ok.sum() < MIN_PAIRS:
            continue
        a, b = a[ok] - a[ok].mean(), b[ok] - b[ok].mean()
        den = np.sqrt((a @ a) * (b @ b))
        out[k] = float(a @ b / den) if den > 0 else 0.0
    return out


def sync_scores(
    patches: np.ndarray,
    wav: np.ndarray,
    sample_rate: int,
    fps: float,
    expected_lag: int | None = None,
    max_offset: int = MAX_OFFSET,
) -> dict:
    """Offset and confidence of the soundtrack against the mouth (see the module docstring).

    Args:
        patches: (N, 32, 64) ``mouth_patch`` of each of the video's N frames.
        wav: (T,) float soundtrack at ``sample_rate``.
        fps: the video's frame rate.
        expected_lag: the in-sync peak lag (``None``: ``NATURAL_LAG_FRAMES``); ``peak_lag_frames``
            of the source video makes a per-speaker reference.
        max_offset: lags searched either way, frames.

    Returns:
        ``{"offset_frames", "confidence", "peak_confidence", "correlation", "peak_lag_frames",
        "expected_lag_frames", "frames_used"}``; the figures are ``None`` when the video is too
        short (fewer than ``MIN_PAIRS`` frame pairs at some lag).
    """
    motion = mouth_motion(patches)
    max_offset = int(min(max_offset, max(0, len(motion) - MIN_PAIRS)))
    energy = speech_energy(wav, sample_rate, fps, len(motion))
    r = lag_correlations(motion, energy, max_offset)
    expected = NATURAL_LAG_FRAMES if expected_lag is None else int(expected_lag)
    result = {
        "offset_frames": None,
        "confidence": None,
        "peak_confidence": None,
        "correlation": None,
        "peak_lag_frames": None,
        "expected_lag_frames": expected,
        "frames_used": int(np.isfinite(motion).sum()),
    }
    if len(r) < 3 or expected not in r:
        return result
    lags = np.array(sorted(r))
    values = np.array([r[k] for k in lags])
    median = float(np.median(values))
    peak = int(lags[np.argmax(values)])
    result.update(
        offset_frames=peak - expected,
        confidence=r[expected] - median,
        peak_confidence=float(values.max()) - median,
        correlation=r[expected],
        peak_lag_frames=peak,
    )
    return result


__all__ = [
    "MAX_OFFSET",
    "MOUTH_ROI",
    "NATURAL_LAG_FRAMES",
    "lag_correlations",
    "mouth_motion",
    "mouth_patch",
    "speech_energy",
    "sync_scores",
]
