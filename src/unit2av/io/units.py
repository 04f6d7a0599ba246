"""Unit files: the one reader of ``.pt`` and ``.txt`` units.

Formats: a ``.pt`` holding ``{"code": ids, "spkr": embedding or id}`` (``spkr`` optional) or a bare
id tensor (read with ``load_torch``, weights only); a ``.txt`` of whitespace- (or comma-) separated
integer ids. ``load_unit_file`` reads either as it is (training data: ids are checked by the
dataset); ``read_units`` adds the inference policy that ``synth`` and ``render`` share.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import fail
from .safe import load_torch

log = logging.getLogger(__name__)

UNIT_SUFFIXES = (".pt", ".txt")  # what a folder of unit files is searched for


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


def load_unit_file(path: str | os.PathLike) -> Units:
    """Read a unit file as it is: ``code`` (T,) long (any values), ``spkr`` flattened or ``None``.

    Raises:
        Unit2AVError: missing file, no ``code`` entry, non-integer ids or an unreadable file.
    """
    path = Path(path)
    if not path.is_file():
        raise fail(path, "units file not found")
    spkr = None
    if path.suffix == ".txt":
        return Units(torch.tensor(_parse_text_units(path), dtype=torch.long), None, path)
    obj = load_torch(path, "units file")
    if isinstance(obj, dict):
        if "code" not in obj:
            raise fail(path, f"units file has no 'code' entry (keys: {', '.join(map(str, obj))})")
        ids, spkr = obj["code"], obj.get("spkr")
    else:
        ids = obj
    if not isinstance(ids, torch.Tensor) or ids.is_floating_point() or ids.is_complex():
        try:
            ids = torch.as_tensor(np.asarray(ids))
        except (TypeError, ValueError, RuntimeError) as e:
            raise fail(path, f"'code' is not a sequence of unit ids ({type(ids).__name__})") from e
        if ids.is_floating_point() or ids.is_complex():
            raise fail(path, "'code' must hold integer unit ids")
    if spkr is not None:
        spkr = torch.as_tensor(spkr).reshape(-1)
    return Units(ids.long().reshape(-1), spkr, path)


def read_units(path: str | os.PathLike, num_embeddings: int | None = None, deduplicate: bool = False) -> Units:
    """Read one units file for synthesis and check it.

    Policy (``synth`` and ``render``): negative ids are dropped with a warning (as the original
    renderer does); an id at or above ``num_embeddings`` is an error that mentions the id offset;
    an empty sequence is an error.

    Args:
        path: ``.pt`` or ``.txt``.
        num_embeddings: the model's vocabulary; ids at or above it are an error.
        deduplicate: remove consecutive repeats (for units that will get predicted durations).
    """
    units = load_unit_file(path)
    ids, path = units.code, units.path
    negative = int((ids < 0).sum())
    if negative:
        log.warning("%s: dropped %d negative unit ids", path, negative)
        ids = ids[ids >= 0]
    if ids.numel() == 0:
        raise fail(path, "no valid unit ids (the sequence is empty)")
    if num_embeddings is not None and int(ids.max()) >= num_embeddings:
        raise fail(
            path,
            f"unit id {int(ids.max())} is out of range: the vocoder has {num_embeddings} units (0.."
            f"{num_embeddings - 1}); check the id offset of your units (fairseq dictionaries add 4)",
        )
    if deduplicate:
        ids = torch.unique_consecutive(ids)
    return Units(ids, units.spkr, path)


__all__ = ["UNIT_SUFFIXES", "Units", "load_unit_file", "read_units"]
