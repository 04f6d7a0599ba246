"""UTUT unit-to-unit translation: fairseq's BART/mBART model and beam search, without fairseq.

``load_translator(path)`` -> ``Translator.translate(units, src_lang, tgt_lang)``; see ``translate.api``.
"""

from .api import Translator, dedup, load_translator
from .search import Hypothesis

__all__ = ["Hypothesis", "Translator", "dedup", "load_translator"]
