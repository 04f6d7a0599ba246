"""Unit2A inference: unit files -> waveforms.

Inputs: a ``.pt`` (a dict with ``code`` and optionally ``spkr``, or a bare tensor), a
``.txt`` of space-separated unit ids, or a folder of them. The same functions back
``unit2av synth`` and the Python API.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from ..errors import fail
from ..io.audio import save_wav
from ..io.units import UNIT_SUFFIXES, read_units
from ..timing import SAMPLE_RATE
from .model import UnitVocoder

log = logging.getLogger(__name__)


def speaker_tensor(model: UnitVocoder, spkr, source) -> torch.Tensor | None:
    """Shape a speaker embedding / id for ``model``: (1, 1, embedder_dim) float or (1, 1) long."""
    if model.speaker is None:
        return None
    if spkr is None:
        raise fail(
            source,
            "the vocoder is speaker-conditioned but no speaker was given "
            "(the units file has no 'spkr'; pass --speaker)",
        )
    spkr = torch.as_tensor(spkr)
    if model.speaker == "id":
        return spkr.long().reshape(1, 1)
    want = model.spkr.in_features
    spkr = spkr.float().reshape(-1)
    if spkr.numel() != want:
        raise fail(source, f"speaker embedding has {spkr.numel()} values, the vocoder expects {want}")
    return spkr.view(1, 1, want)


@torch.inference_mode()
def synthesize(
    model: UnitVocoder, code: torch.Tensor, spkr: torch.Tensor | None = None, dur_prediction: bool = False
) -> tuple[np.ndarray, torch.Tensor]:
    """Run the vocoder on one utterance.

    Args:
        model: an eval-mode ``UnitVocoder``.
        code: (T,) unit ids.
        spkr: from ``speaker_tensor``.
        dur_prediction: expand units by predicted durations (for deduplicated units).

    Returns:
        ``(wav (T * hop,) float32 numpy, codes actually voiced (T',))``.
    """
    device = next(model.parameters()).device
    wav, codes = model(
        code=code.view(1, -1).to(device), spkr=None if spkr is None else spkr.to(device), dur_prediction=dur_prediction
    )
    return wav.view(-1).float().cpu().numpy(), codes.view(-1).cpu()


def collect_inputs(input_path: str | os.PathLike) -> list[Path]:
    """A unit file, or every ``.pt`` / ``.txt`` under a folder (sorted)."""
    path = Path(input_path)
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.suffix in UNIT_SUFFIXES and p.is_file())
        if not files:
            raise fail(path, "folder holds no .pt or .txt unit files")
        return files
    if not path.is_file():
        raise fail(path, "input not found")
    return [path]


def synth_files(
    model: UnitVocoder,
    inputs: list[Path],
    output_folder: str | os.PathLike,
    step: int = 0,
    speaker=None,
    dur_prediction: bool = False,
    output_format: str = "int16",
) -> list[Path]:
    """Synthesise every input into ``<output_folder>/<input stem>_<step>step.wav``.

    Every input is read and checked before the first wav is written.

    Args:
        speaker: a speaker embedding / id used for inputs without their own ``spkr``.
    """
    out_dir = Path(output_folder)
    rate = model.config.sampling_rate if model.config else SAMPLE_RATE
    vocab = model.dict.num_embeddings
    units = [read_units(p, vocab, deduplicate=dur_prediction) for p in inputs]
    spkrs = [speaker_tensor(model, u.spkr if u.spkr is not None else speaker, u.path) for u in units]
    written = []
    for u, s in tqdm(list(zip(units, spkrs)), desc="synth", unit="utt", disable=len(units) < 2):
        wav, _ = synthesize(model, u.code, s, dur_prediction)
        out = out_dir / f"{u.path.stem}_{step}step.wav"
        save_wav(out, wav, rate, output_format)
        written.append(out)
    return written
