"""The UTUT vocabulary: fairseq's dictionary as the ``utut_pretraining`` task builds it.

Index order (source and target share it):

    0 <s>, 1 <pad>, 2 </s>, 3 <unk>          fairseq's four special symbols
    4 .. 4+U-1                               the unit symbols of dict.txt, in file order (unit u -> u + 4
                                             for the standard list)
    then one [lang] token per cfg.task.langs entry, in that order, then <mask>

The checkpoint does not carry dict.txt. ``resolve_dict_path`` picks it: the path given, else
``dict.txt`` beside the checkpoint, else the standard list of units 0..999 (UTUT's own file).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import torch

from ..errors import fail

log = logging.getLogger(__name__)

SPECIALS = ("<s>", "<pad>", "</s>", "<unk>")
BOS, PAD, EOS, UNK = 0, 1, 2, 3
MASK = "<mask>"
STANDARD_UNITS = 1000  # UTUT's dict.txt: units 0..999


def lang_token(lang: str) -> str:
    """The dictionary symbol of a language (``"en"`` -> ``"[en]"``)."""
    return f"[{lang}]"


def read_dict_txt(path: str | os.PathLike) -> list[str]:
    """Symbols of a fairseq ``dict.txt`` (``<symbol> <count> [#fairseq:overwrite]`` per line), in order.

    Raises:
        Unit2AVError: missing file, a malformed line, a repeated symbol, or no symbols.
    """
    path = Path(path)
    if not path.is_file():
        raise fail(path, "unit dictionary (dict.txt) not found")
    symbols: list[str] = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise fail(path, f"cannot read the unit dictionary: {e}") from e
    seen = set(SPECIALS)
    for n, line in enumerate(lines, 1):
        line = line.rstrip()
        if not line:
            continue
        overwrite = line.endswith(" #fairseq:overwrite")
        sym, sep, count = line.removesuffix(" #fairseq:overwrite").rpartition(" ")
        if not sep or not sym or not count.isdigit():
            raise fail(path, f"line {n}: expected '<symbol> <count>', got {line[:40]!r}")
        if sym in seen and not overwrite:
            raise fail(path, f"line {n}: duplicate symbol {sym!r}")
        seen.add(sym)
        symbols.append(sym)
    if not symbols:
        raise fail(path, "the unit dictionary is empty")
    return symbols


def resolve_dict_path(ckpt_path: str | os.PathLike, dict_path: str | os.PathLike | None) -> Path | None:
    """``dict_path`` when given, else ``dict.txt`` beside the checkpoint, else ``None`` (standard list)."""
    if dict_path is not None:
        return Path(dict_path)
    beside = Path(ckpt_path).absolute().parent / "dict.txt"
    return beside if beside.is_file() else None


class Vocabulary:
    """Symbols <-> indices of a UTUT model, with the unit and language views.

    Args:
        units: the unit symbols (dict.txt order).
        langs: the task's languages, in ``cfg.task.langs`` order.
    """

    def __init__(self, units: Sequence[str], langs: Sequence[str]):
        self.langs = list(langs)
        self.symbols = [*SPECIALS, *units, *(lang_token(x) for x in self.langs), MASK]
        self.index = {s: i for i, s in enumerate(self.symbols)}
        self.num_units = len(units)
        self.mask_index = len(self.symbols) - 1
        self.lang_indices = {x: self.index[lang_token(x)] for x in self.langs}

    def __len__(self) -> int:
        return len(self.symbols)

    def lang_index(self, lang: str) -> int:
        """The ``[lang]`` token's index.

        Raises:
            Unit2AVError: a language the checkpoint does not know (the known ones are listed).
        """
        if lang not in self.lang_indices:
            raise fail(None, f"unknown language '{lang}': this UTUT checkpoint knows {', '.join(self.langs)}")
        return self.lang_indices[lang]

    def encode_source(self, units: Iterable[int], src_lang: str, path=None) -> torch.Tensor:
        """AV2AV's source encoding: ``<s> u1+4 ... un+4 </s> [src]`` as a 1-D int64 tensor.

        ``units`` must already be free of consecutive repeats.

        Raises:
            Unit2AVError: an empty sequence or a unit without a dictionary entry.
        """
        ids = []
        for u in units:
            i = self.index.get(str(int(u)), -1)
            if not 4 <= i < 4 + self.num_units:
                raise fail(
                    path,
                    f"unit {int(u)} is not in the UTUT vocabulary (units are dictionary symbols "
                    f"{self.symbols[4]}..{self.symbols[3 + self.num_units]}, stored at index unit + 4 "
                    "after the 4 special symbols; are these units already offset?)",
                )
            ids.append(i)
        if not ids:
            raise fail(path, "no units to translate (the sequence is empty)")
        return torch.tensor([BOS, *ids, EOS, self.lang_index(src_lang)], dtype=torch.long)

    def suppressed(self, tgt_lang: str) -> list[int]:
        """Indices the decoder may never emit: every other ``[lang]`` token and ``<mask>``."""
        tgt = self.lang_index(tgt_lang)
        return [i for i in self.lang_indices.values() if i != tgt] + [self.mask_index]

    def string(self, tokens: Iterable[int]) -> str:
        """fairseq's ``Dictionary.string`` with every ``[lang]`` token, ``</s>`` and ``<s>`` left out."""
        drop = {BOS, EOS, *self.lang_indices.values()}
        return " ".join(self.symbols[int(t)] for t in tokens if int(t) not in drop)

    def units(self, tokens: Iterable[int]) -> list[int]:
        """The unit values among ``tokens`` (specials, ``<unk>`` and language tokens left out)."""
        return [
            int(self.symbols[t])
            for t in map(int, tokens)
            if 4 <= t < 4 + self.num_units and self.symbols[t].lstrip("-").isdigit()
        ]


def build_vocabulary(ckpt_path, langs: Sequence[str], table_rows: int, dict_path=None) -> Vocabulary:
    """The vocabulary the checkpoint was trained with, checked against its embedding table.

    Args:
        ckpt_path: the checkpoint (``dict.txt`` beside it is used when ``dict_path`` is None).
        langs: ``cfg.task.langs`` split.
        table_rows: rows of the token embedding matrix.
        dict_path: an explicit ``dict.txt``.

    Raises:
        Unit2AVError: the dictionary's size does not fit the embedding table (both sizes named).
    """
    path = resolve_dict_path(ckpt_path, dict_path)
    if path is None:
        log.info("no dict.txt given or beside %s: using the standard unit list 0..%d", ckpt_path, STANDARD_UNITS - 1)
        units = [str(u) for u in range(STANDARD_UNITS)]
    else:
        units = read_dict_txt(path)
        log.info("unit dictionary: %s (%d units)", path, len(units))
    vocab = Vocabulary(units, langs)
    if len(vocab) != table_rows:
        where = path if path is not None else f"the standard unit list (no dict.txt beside {ckpt_path})"
        raise fail(
            where,
            f"{len(units)} units + 4 specials + {len(langs)} languages + <mask> = {len(vocab)} "
            f"entries, but the checkpoint's embedding table has {table_rows} rows; pass the "
            "dict.txt the model was trained with",
        )
    return vocab
