"""STOI / ESTOI of dubbed speech against a time-aligned reference (``pystoi``).

The reference is the same utterance, aligned in time (for a dub: the vocoder's copy-synthesis
of the units, or the clean original when measuring a degradation). A codec or a container can
shift the soundtrack by a few milliseconds (AAC priming), so the two are first aligned by the
lag of their cross-correlation peak within ``MAX_LAG_S``, then cut to the common length.
"""

from __future__ import annotations

import numpy as np
from scipy.signal import correlate

from .extras import require

MAX_LAG_S = 0.1  # largest shift searched when aligning the reference, seconds


def align(
    reference: np.ndarray, degraded: np.ndarray, sample_rate: int, max_lag_s: float = MAX_LAG_S
) -> tuple[np.ndarray, np.ndarray, int]:
    """Shift ``degraded`` onto ``reference`` by the cross-correlation peak.

    Args:
        reference, degraded: (T1,), (T2,) float waveforms at ``sample_rate``.
        max_lag_s: search range, seconds either way.

    Returns:
        ``(ref, deg, lag)``: equal-length aligned copies, and ``lag`` in samples (positive: the
        degraded signal is late by that much).
    """
    ref, deg = np.asarray(reference, np.float64), np.asarray(degraded, np.float64)
    max_lag = int(max_lag_s * sample_rate)
    xc = correlate(deg, ref, mode="full", method="fft")  # index i <-> lag i - (len(ref) - 1)
    zero = len(ref) - 1
    lo, hi = max(0, zero - max_lag), min(len(xc), zero + max_lag + 1)
    lag = int(np.argmax(xc[lo:hi])) + lo - zero
    if lag >= 0:
        deg = deg[lag:]
    else:
        ref = ref[-lag:]
    n = min(len(ref), len(deg))
    return ref[:n], deg[:n], lag


def stoi_scores(reference: np.ndarray, degraded: np.ndarray, sample_rate: int) -> dict:
    """STOI and ESTOI (0..1, higher = more intelligible) of ``degraded`` against ``reference``.

    Args:
        reference, degraded: (T,) float waveforms at ``sample_rate``, the same utterance.

    Returns:
        ``{"stoi", "estoi", "reference_lag_ms"}``.

    Raises:
        MissingExtra: ``pystoi`` is not installed.
    """
    pystoi = require("pystoi", "stoi", "STOI / ESTOI")
    ref, deg, lag = align(reference, degraded, sample_rate)
    return {
        "stoi": float(pystoi.stoi(ref, deg, sample_rate, extended=False)),
        "estoi": float(pystoi.stoi(ref, deg, sample_rate, extended=True)),
        "reference_lag_ms": 1000.0 * lag / sample_rate,
    }


__all__ = ["MAX_LAG_S", "align", "stoi_scores"]
