"""The vocoder's speaker input from what a user names: a speaker id, a stored embedding, or a voice.

One function for ``unit2av synth --speaker`` and ``unit2av render`` (``--speaker-wav`` or the
video's own audio track):

- an integer (or a string of digits): a speaker id, for vocoders with a speaker table;
- a tensor / array: an embedding (or an id) as it is;
- a ``.pt`` file: the embedding (or id) stored in it;
- any other file: audio, or a video's audio track, embedded by the GE2E speaker encoder.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from ..errors import fail
from ..io.safe import load_torch
from ..vocoder.model import UnitVocoder
from ..vocoder.synth import speaker_tensor


def _is_id(value) -> bool:
    return isinstance(value, int) or (isinstance(value, str) and value.lstrip("-").isdigit())


def speaker_value(value, encoder=None, device: str | torch.device = "cpu") -> torch.Tensor | None:
    """The raw speaker input ``value`` names (see the module docstring), not yet shaped for a vocoder.

    Args:
        value: ``None``, an id, a tensor / array, or a path (``.pt`` embedding, or audio / video).
        encoder: a ``SpeakerEncoder``, a path to its weights, or ``None`` (Resemblyzer's weights);
            loaded only when a voice has to be embedded.
        device: where a speaker encoder loaded here runs.

    Returns:
        ``None``, a (1,) long id, or an embedding tensor (``(embedder_dim,)`` float for a voice).
    """
    if value is None or isinstance(value, torch.Tensor):
        return value
    if _is_id(value):
        return torch.tensor([int(value)])
    if isinstance(value, np.ndarray):
        return torch.from_numpy(value)
    path = Path(value)
    if path.suffix == ".pt":
        return load_torch(path, "speaker embedding")
    return torch.from_numpy(voice_encoder(encoder, device).embed_file(path))


def voice_encoder(encoder=None, device: str | torch.device = "cpu"):
    """A loaded ``SpeakerEncoder``: ``encoder`` itself, or loaded from a path / the default weights."""
    if encoder is None or isinstance(encoder, (str, os.PathLike)):
        from ..prepare.speaker import SpeakerEncoder

        return SpeakerEncoder.load(encoder, device=device)
    return encoder


def resolve_speaker(
    vocoder: UnitVocoder, value, encoder=None, device: str | torch.device = "cpu", source=None
) -> torch.Tensor | None:
    """The vocoder's speaker input: (1, 1, embedder_dim) float, (1, 1) long id, or ``None``.

    Args:
        vocoder: the vocoder it is for.
        value: what the user named (see ``speaker_value``). ``None`` (nothing named) gives ``None``,
            as does a vocoder that is not speaker-conditioned; neither loads anything.
        encoder, device: see ``speaker_value``.
        source: the file named in errors (default: ``value``).

    Raises:
        Unit2AVError: no speaker for a conditioned vocoder, a voice for a vocoder that takes
            ids, an embedding of the wrong size, or an unreadable file.
    """
    if vocoder.speaker is None or value is None:
        return None
    voice = not _is_id(value) and not isinstance(value, (torch.Tensor, np.ndarray)) and Path(value).suffix != ".pt"
    if voice and vocoder.speaker == "id":
        raise fail(value, "this vocoder takes speaker ids, not voices; give the id in a .pt units file")
    return speaker_tensor(vocoder, speaker_value(value, encoder, device), source or value)


__all__ = ["resolve_speaker", "speaker_value", "voice_encoder"]
