"""Voice: GE2E speaker similarity to the source speaker, and the pitch of both.

The speaker encoder is the project's (``unit2av.prepare.speaker.SpeakerEncoder``, Resemblyzer's
GE2E weights): the cosine of the two utterance embeddings, about 0.9+ for the same voice and
markedly lower for another. Pitch is ``unit2av.spectral.frame_f0``'s track at 50 Hz.
"""

from __future__ import annotations

import numpy as np
import torch

from ..prepare.speaker_audio import cosine_similarity
from ..spectral import frame_f0
from ..timing import HOP_SAMPLES, SAMPLE_RATE


def pitch_stats(wav: np.ndarray, sample_rate: int = SAMPLE_RATE) -> dict:
    """Median f0 of the voiced frames and the voiced share of all frames.

    Args:
        wav: (T,) float speech.

    Returns:
        ``{"f0_median_hz": float | None, "voiced_share": float}`` (``None`` when nothing is voiced).
    """
    hop = HOP_SAMPLES * sample_rate // SAMPLE_RATE
    track = frame_f0(torch.from_numpy(np.asarray(wav, np.float32)), sample_rate, hop)
    voiced = track[track > 0]
    return {
        "f0_median_hz": float(voiced.median()) if voiced.numel() else None,
        "voiced_share": float((track > 0).float().mean()) if track.numel() else 0.0,
    }


def speaker_similarity(encoder, wav: np.ndarray, speaker_wav: np.ndarray, sample_rate: int = SAMPLE_RATE) -> float:
    """Cosine similarity of the GE2E embeddings of ``wav`` and ``speaker_wav``.

    Args:
        encoder: a loaded ``SpeakerEncoder``.
        wav, speaker_wav: (T1,), (T2,) float speech at ``sample_rate``.
    """
    return cosine_similarity(encoder.embed(wav, sample_rate), encoder.embed(speaker_wav, sample_rate))


__all__ = ["pitch_stats", "speaker_similarity"]
