"""Unit files in, translated unit files out: what ``unit2av translate`` and the batch ``translate`` job run.

    from unit2av.translate.files import translate_file
    translate_file("ep01.en.txt", "ep01.es.txt", "utut_sts_ft.pt", "en", "es")   # loads the model
    translate_file(..., translator=tr)                                          # an already loaded one

An output holds the translated unit string as AV2AV's ``unit2unit/inference.py`` writes it (``nbest``
lines, best first, no trailing newline). Every input is read and checked before the first output is
written; each output is written atomically.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import fail
from .api import Translator, load_translator
from .search import Hypothesis

log = logging.getLogger(__name__)


@dataclass
class TranslateResult:
    """What one translated file holds.

    Attributes:
        path: the file written.
        units: the best hypothesis' unit values.
        hypotheses: the ``nbest`` hypotheses written, best first.
    """

    path: Path
    units: list[int]
    hypotheses: list[Hypothesis]


def read_sources(translator: Translator, paths, src_lang: str) -> list[torch.Tensor]:
    """Read and check every unit file (nothing is translated when one is bad).

    Args:
        translator: the loaded model (its vocabulary checks the units).
        paths: ``.txt`` (space-separated unit ids) or ``.pt`` (``code``) files.
        src_lang: their language.

    Returns:
        Each file's raw units, ``LongTensor (N,)``.

    Raises:
        Unit2AVError: an unreadable or empty file, a unit outside the vocabulary (naming the file).
    """
    from ..io.units import read_units

    units = []
    for path in paths:
        code = read_units(path).code
        translator.encode(code, src_lang, path)
        units.append(code)
    return units


def translate_files(
    translator: Translator,
    pairs,
    src_lang: str,
    tgt_lang: str,
    beam: int | None = None,
    nbest: int = 1,
    max_len_a: float | None = None,
    max_len_b: int | None = None,
    lenpen: float | None = None,
    batch_size: int = 1,
    progress: bool = True,
) -> list[TranslateResult]:
    """Translate each ``(input, output)`` pair's unit file, ``batch_size`` files at a time.

    Args:
        translator: the loaded UTUT model.
        pairs: ``(input unit file, output text file)`` pairs.
        src_lang, tgt_lang: language codes among ``translator.languages``.
        beam, max_len_a, max_len_b, lenpen: override the checkpoint's generation settings.
        nbest: hypotheses written per input, one per line (at most the beam size).
        batch_size: inputs translated together (same results as one at a time).
        progress: a progress bar when there are two files or more.

    Returns:
        One ``TranslateResult`` per pair, in order.

    Raises:
        Unit2AVError: unknown language, bad settings, a bad input (before anything is written).
    """
    from tqdm import tqdm

    from ..io.safe import write_bytes_atomic

    if batch_size < 1:
        raise fail(None, f"batch_size must be at least 1 (got {batch_size})")
    pairs = [(Path(src), Path(out)) for src, out in pairs]
    translator.vocab.lang_index(src_lang)
    translator.vocab.lang_index(tgt_lang)
    translator.settings(beam, max_len_a, max_len_b, lenpen)  # check the settings before any work
    units = read_sources(translator, [src for src, _ in pairs], src_lang)
    results = []
    bar = tqdm(total=len(pairs), desc="translate", unit="file", disable=not progress or len(pairs) < 2)
    for i in range(0, len(pairs), batch_size):
        hyps = translator.translate(
            units[i : i + batch_size],
            src_lang,
            tgt_lang,
            beam=beam,
            nbest=nbest,
            max_len_a=max_len_a,
            max_len_b=max_len_b,
            lenpen=lenpen,
        )
        for (_, out), hs in zip(pairs[i : i + batch_size], hyps):
            write_bytes_atomic(out, "\n".join(h.text for h in hs).encode())
            results.append(TranslateResult(out, list(hs[0].units), list(hs)))
            bar.update(1)
    bar.close()
    return results


def translate_file(
    in_unit_path: str | os.PathLike,
    out_unit_path: str | os.PathLike,
    utut_path: str | os.PathLike,
    src_lang: str,
    tgt_lang: str,
    utut_dict: str | os.PathLike | None = None,
    beam: int | None = None,
    nbest: int = 1,
    max_len_a: float | None = None,
    max_len_b: int | None = None,
    lenpen: float | None = None,
    device: str = "auto",
    translator: Translator | None = None,
) -> TranslateResult:
    """Translate one unit file into ``out_unit_path`` (written atomically).

    Args:
        in_unit_path: ``.txt`` of space-separated unit ids (repeats removed first) or ``.pt`` with ``code``.
        out_unit_path: the text file to write (``nbest`` lines, best first).
        utut_path: the UTUT checkpoint (loaded unless ``translator`` is given).
        src_lang, tgt_lang: language codes (``en``, ``es``, ...).
        utut_dict: the unit ``dict.txt`` (default: beside the checkpoint, else the units 0..999).
        beam, max_len_a, max_len_b, lenpen: override the checkpoint's generation settings.
        nbest: hypotheses written, one per line.
        device: ``"auto"``, ``"cpu"``, ``"cuda:1"`` ... (for loading ``utut_path``).
        translator: an already loaded model (``utut_path`` is then not read).

    Raises:
        Unit2AVError: a missing or bad input, checkpoint, language or setting (one line naming the file).
    """
    src = Path(in_unit_path)
    if not src.is_file():
        raise fail(src, "unit file not found")
    if translator is None:
        translator = load_translator(utut_path, utut_dict, device)
    results = translate_files(
        translator, [(src, out_unit_path)], src_lang, tgt_lang, beam, nbest, max_len_a, max_len_b, lenpen
    )
    log.info("%s -> %s (%d units, %s -> %s)", src, out_unit_path, len(results[0].units), src_lang, tgt_lang)
    return results[0]


__all__ = ["TranslateResult", "read_sources", "translate_file", "translate_files"]
