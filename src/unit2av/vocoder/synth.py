"""Unit2A inference: unit files -> waveforms.

Inputs: a ``.pt`` (a dict with ``code`` and optionally ``spkr``, or a bare tensor), a
``.txt`` of space-separated unit ids, or a folder of them. The same functions back
``unit2av synth`` and the Python API.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from ..errors import fail
from ..io.audio import save_wav
from ..io.safe import load_torch
from .model import UnitVocoder

log = logging.getLogger(__name__)

UNIT_SUFFIXES = (".pt", ".txt")


@dataclass
class Units:
    """One utterance of units: ``code`` (T,) long, optional ``spkr`` (embedder_dim,) float or id."""

    code: torch.Tensor
    spkr: torch.Tensor | None
    path: Path


def _parse_text_units(path: Path) -> list[int]:
    text = path.read_text(errors="replace")
    tokens = text.replace(",", " ").split()
    try:
        return [int(t) for t in tokens]
    except ValueError as e:
        bad = next(t for t in tokens if not re.fullmatch(r"[-+]?\d+", t))
        raise fail(path, f"units must be whitespace-separated integers, found '{bad[:20]}'") from e


def read_units(path: str | os.PathLike, num_embeddings: int | None = None, deduplicate: bool = False) -> Units:
    """Read one units file and check it.

    Args:
        path: ``.pt`` or ``.txt``.
        num_embeddings: the vocoder's vocabulary; ids at or above it are an error.
        deduplicate: remove consecutive repeats (for units that will get predicted durations).

    Negative ids are dropped with a warning (as the original renderer does).
    """
    path = Path(path)
    if not path.is_file():
        raise fail(path, "units file not found")
    spkr = None
    if path.suffix == ".txt":
        ids = torch.tensor(_parse_text_units(path), dtype=torch.long)
    else:
        obj = load_torch(path, "units file")
        if isinstance(obj, dict):
            if "code" not in obj:
                raise fail(path, f"units file has no 'code' entry (keys: {', '.join(map(str, obj))})")
            ids, spkr = obj["code"], obj.get("spkr")
        else:
            ids = obj
        if not isinstance(ids, torch.Tensor) or ids.is_floating_point() or ids.is_complex():
            ids = torch.as_tensor(np.asarray(ids))
            if ids.is_floating_point():
                raise fail(path, "'code' must hold integer unit ids")
        ids = ids.long().reshape(-1)
        if spkr is not None:
            spkr = torch.as_tensor(spkr).reshape(-1)
    negative = int((ids < 0).sum())
    if negative:
        log.warning("%s: dropped %d negative unit ids", path, negative)
        ids = ids[ids >= 0]
    if ids.numel() == 0:
        raise fail(path, "no valid unit ids (the sequence is empty)")
    if num_embeddings is not None and int(ids.max()) >= num_embeddings:
        raise fail(path, f"unit id {int(ids.max())} is out of range: the vocoder has {num_embeddings} units (0.."
                         f"{num_embeddings - 1}); check the id offset of your units (fairseq dictionaries add 4)")
    if deduplicate:
        ids = torch.unique_consecutive(ids)
    return Units(ids, spkr, path)


def speaker_tensor(model: UnitVocoder, spkr, source) -> torch.Tensor | None:
    """Shape a speaker embedding / id for ``model``: (1, 1, embedder_dim) float or (1, 1) long."""
    if model.speaker is None:
        return None
    if spkr is None:
        raise fail(source, "the vocoder is speaker-conditioned but no speaker was given "
                           "(the units file has no 'spkr'; pass --speaker)")
    spkr = torch.as_tensor(spkr)
    if model.speaker == "id":
        return spkr.long().reshape(1, 1)
    want = model.spkr.in_features
    spkr = spkr.float().reshape(-1)
    if spkr.numel() != want:
        raise fail(source, f"speaker embedding has {spkr.numel()} values, the vocoder expects {want}")
    return spkr.view(1, 1, want)


@torch.inference_mode()
def synthesize(model: UnitVocoder, code: torch.Tensor, spkr: torch.Tensor | None = None,
               dur_prediction: bool = False) -> tuple[np.ndarray, torch.Tensor]:
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
    wav, codes = model(code=code.view(1, -1).to(device), spkr=None if spkr is None else spkr.to(device),
                       dur_prediction=dur_prediction)
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


def synth_files(model: UnitVocoder, inputs: list[Path], output_folder: str | os.PathLike, step: int = 0,
                speaker=None, dur_prediction: bool = False, output_format: str = "int16") -> list[Path]:
    """Synthesise every input into ``<output_folder>/<input stem>_<step>step.wav``.

    Every input is read and checked before the first wav is written.

    Args:
        speaker: a speaker embedding / id used for inputs without their own ``spkr``.
    """
    out_dir = Path(output_folder)
    rate = model.config.sampling_rate if model.config else 16000
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
