"""The Python API of unit-to-unit translation (UTUT), as AV2AV's ``unit2unit`` stage runs it.

    from unit2av import load_translator
    tr = load_translator("utut_sts_ft.pt")                  # dict.txt beside it, or the standard 0..999
    best = tr.translate(units, "en", "es")[0]               # units: raw 50 Hz unit values (list or 1-D tensor)
    best.units, best.text, best.score                       # translated unit values, the reference's string
    tr.translate([u1, u2], "en", "es", nbest=3)              # a batch: one n-best list per sequence

Source encoding (AV2AV ``process_unit2unit``): consecutive repeats removed, ``<s> u+4 ... </s> [src]``;
decoding: fairseq's beam search (``translate.search``) with the checkpoint's generation settings as
defaults, the target-language token as start and end symbol.
"""

from __future__ import annotations

import logging
import os
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from ..devices import resolve_device
from ..errors import fail
from .checkpoint import load_utut
from .search import Hypothesis, SearchSettings, beam_search
from .vocab import PAD, build_vocabulary

log = logging.getLogger(__name__)


def dedup(units) -> list[int]:
    """Remove consecutive repeats: [5, 5, 7, 5] -> [5, 7, 5]."""
    seq = units.reshape(-1).tolist() if isinstance(units, torch.Tensor) else [int(u) for u in units]
    return [u for i, u in enumerate(seq) if i == 0 or u != seq[i - 1]]


class Translator:
    """A loaded UTUT model with its vocabulary and generation defaults (see ``load_translator``).

    Attributes:
        model: the ``BartModel`` (float32, eval). vocab: the ``Vocabulary``. defaults: ``SearchSettings``
        from the checkpoint's ``cfg.generation``. path: the checkpoint. device: where it runs.

    Args:
        pack_rows: see ``BartModel.fuse_`` (None: keep the decoder's weights unpacked, the plain path).
    """

    def __init__(
        self, model, vocab, defaults: SearchSettings, path: Path, device: torch.device, pack_rows: int | None = 8
    ):
        self.model, self.vocab, self.defaults = model.fuse_(pack_rows), vocab, defaults
        self.path, self.device = path, device

    @property
    def languages(self) -> list[str]:
        """The checkpoint's languages (``cfg.task.langs`` order)."""
        return list(self.vocab.langs)

    def settings(self, beam=None, max_len_a=None, max_len_b=None, lenpen=None) -> SearchSettings:
        """The checkpoint's generation settings with the given ones replacing them.

        Raises:
            Unit2AVError: beam < 1, a negative length limit.
        """
        over = {
            k: v
            for k, v in dict(beam=beam, max_len_a=max_len_a, max_len_b=max_len_b, lenpen=lenpen).items()
            if v is not None
        }
        s = replace(self.defaults, **over)
        if s.beam < 1:
            raise fail(None, f"beam must be at least 1 (got {s.beam})")
        if s.max_len_a < 0 or s.max_len_b < 0 or s.max_len_a + s.max_len_b <= 0:
            raise fail(None, f"max_len_a/max_len_b must allow at least one token (got {s.max_len_a}, {s.max_len_b})")
        return s

    def encode(self, units, src_lang: str, path=None) -> torch.Tensor:
        """Raw units -> source tokens (S,) int64: repeats removed, ``<s> ... </s> [src]``.

        Args:
            units: 1-D integer sequence. src_lang: its language. path: the file they came from (for messages).
        """
        if isinstance(units, torch.Tensor) and (units.is_floating_point() or units.dim() > 1):
            raise fail(path, f"units must be a 1-D integer sequence (got a {tuple(units.shape)} {units.dtype} tensor)")
        return self.vocab.encode_source(dedup(units), src_lang, path)

    def translate(
        self,
        units,
        src_lang: str,
        tgt_lang: str,
        beam: int | None = None,
        nbest: int = 1,
        max_len_a: float | None = None,
        max_len_b: int | None = None,
        lenpen: float | None = None,
        use_cache: bool = True,
    ):
        """Translate one unit sequence, or a batch of them.

        Args:
            units: raw unit values (list of ints or 1-D int tensor; consecutive repeats are removed first),
                or a list of such sequences (translated as one batch).
            src_lang, tgt_lang: language codes among ``languages``.
            beam, max_len_a, max_len_b, lenpen: override the checkpoint's generation settings
                (max length = max_len_a * source tokens + max_len_b, capped by the decoder's positions).
            nbest: hypotheses returned per sequence (at most ``beam``).
            use_cache: incremental decoding (False: recompute the whole prefix each step; same results).

        Returns:
            For one sequence, ``nbest`` ``Hypothesis`` best first (``tokens`` end with the ``[tgt]`` eos;
            ``text``/``units`` are the output string and its unit values); for a batch, one such list each.

        Raises:
            Unit2AVError: unknown language, a unit outside the vocabulary, an empty sequence, bad settings.
        """
        batch = (
            isinstance(units, (list, tuple))
            and len(units) > 0
            and all(isinstance(u, (list, tuple, torch.Tensor, np.ndarray)) for u in units)
        )
        seqs = list(units) if batch else [units]
        s = self.settings(beam, max_len_a, max_len_b, lenpen)
        if not 1 <= nbest <= s.beam:
            raise fail(None, f"nbest must be between 1 and the beam size {s.beam} (got {nbest})")
        eos = self.vocab.lang_index(tgt_lang)
        self.vocab.lang_index(src_lang)
        src = [self.encode(u, src_lang) for u in seqs]
        lengths = torch.tensor([len(x) for x in src])
        longest = self.model.cfg.max_source_positions
        if int(lengths.max()) > longest:
            raise fail(
                None,
                f"a source of {int(lengths.max()) - 3} units (after removing repeats) is longer than "
                f"the model's {longest - 3}-unit limit; split it",
            )
        tokens = torch.full((len(src), int(lengths.max())), PAD, dtype=torch.long)
        for i, x in enumerate(src):
            tokens[i, : len(x)] = x
        hyps = beam_search(
            self.model, tokens.to(self.device), lengths, eos, self.vocab.suppressed(tgt_lang), s, use_cache=use_cache
        )
        out = [[self._finish(h) for h in hs[:nbest]] for hs in hyps]
        return out if batch else out[0]

    def _finish(self, h: Hypothesis) -> Hypothesis:
        tok = h.tokens.cpu()
        return replace(
            h,
            tokens=tok,
            positional_scores=h.positional_scores.cpu(),
            text=self.vocab.string(tok),
            units=self.vocab.units(tok),
        )


def load_translator(
    path: str | os.PathLike, dict_path: str | os.PathLike | None = None, device: str | torch.device | None = "auto"
) -> Translator:
    """Load a UTUT checkpoint (fairseq, read safely) for ``translate``.

    Args:
        path: the checkpoint (``utut_sts_ft.pt`` ...).
        dict_path: the unit ``dict.txt``; default: ``dict.txt`` beside the checkpoint, else the
            standard units 0..999 (logged).
        device: "auto" (CUDA when available), "cpu", "cuda:0" ...

    Raises:
        Unit2AVError: unreadable/refused file, not a UTUT/BART checkpoint, no language list, or a
            dictionary that does not fit the embedding table.
    """
    model, ck, gen = load_utut(path)
    task = ck.cfg.get("task") or {}
    langs = [x.strip() for x in str(task.get("langs") or "").split(",") if x.strip()]
    if not langs:
        raise fail(
            ck.path,
            f"no language list (cfg.task.langs) in this checkpoint (task '{task.get('_name')}'): not a UTUT checkpoint",
        )
    vocab = build_vocabulary(ck.path, langs, model.cfg.vocab_size, dict_path)
    dev = resolve_device(device)
    log.info(
        "UTUT %s: %d+%d layers, width %d, %d languages",
        ck.path,
        model.cfg.encoder_layers,
        model.cfg.decoder_layers,
        model.cfg.encoder_embed_dim,
        len(langs),
    )
    return Translator(model.to(dev), vocab, gen, ck.path, dev)


__all__ = ["Hypothesis", "Translator", "dedup", "load_translator"]
