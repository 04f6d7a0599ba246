"""Loaded models kept for reuse: one cache for a batch worker's jobs and for the app's dubs.

``ModelCache`` loads each model the first time a key (the files, language, device and inference path
that choose it) is asked for and returns the same object afterwards. A batch worker keeps every
model it meets (a worker serving two languages keeps both vocoders; jobs of one AV2AV container
share its face renderer); the app keeps one model of each kind (``keep=1``: a new choice replaces
the old one, so memory stays bounded). A replaced file on disk has a new key (its modification
time and size are in it), so it is loaded again. Thread-safe.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from pathlib import Path

log = logging.getLogger(__name__)


class LazySpeakerEncoder:
    """Stands in for a ``SpeakerEncoder`` (``embed``, ``embed_file``, ...): loads it through the cache on first use."""

    def __init__(self, cache: ModelCache, path, device):
        self._cache, self._path, self._device = cache, path, device

    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._cache.speaker_encoder(self._path, self._device), name)


class LazyModels:
    """Stands in for render's ``models=(vocoder, face)``: loads them through the cache when unpacked.

    Loading at the point where ``render`` would load them keeps its checks in the same order, so a
    bad job fails with exactly the line the single command prints.
    """

    def __init__(self, load):
        self._load = load

    def __iter__(self):
        return iter(self._load())


class ModelCache:
    """Models loaded once per key and reused.

    Args:
        keep: models kept per kind (renderer, vocoder, mAV-HuBERT, UTUT, speaker encoder); the least
            recently used one goes first. None: keep all.

    Attributes:
        loads: how many models were loaded (benchmarks and tests read it).
    """

    def __init__(self, keep: int | None = None):
        self.keep = keep
        self._kinds: dict[str, OrderedDict] = {}
        self._faces: dict = {}  # one face renderer per container, device and path, shared by its languages
        self._lock = threading.RLock()
        self.loads = 0

    @staticmethod
    def _file_key(path) -> str:
        p = Path(path)
        try:
            st = p.stat()
            return f"{p.resolve()}@{st.st_mtime_ns}:{st.st_size}"
        except OSError:
            return str(p)

    def _get(self, kind: str, key: tuple, load):
        """The model of ``kind`` under ``key``, loaded by ``load()`` the first time."""
        with self._lock:
            kept = self._kinds.setdefault(kind, OrderedDict())
            if key in kept:
                kept.move_to_end(key)
                return kept[key]
            if self.keep is not None:
                while len(kept) >= max(1, self.keep):  # free the old model before loading its replacement
                    kept.popitem(last=False)
                if kind == "renderer":
                    self._faces.clear()
            model = load()
            kept[key] = model
            self.loads += 1
            log.info("loaded the %s %s", kind, key[0])
            return model

    def renderer(self, path, config, lang, device, backend):
        """``load_renderer``'s ``(vocoder, face_renderer)``, one face renderer per container and device."""
        from .render import load_renderer

        def load():
            vocoder, face = load_renderer(path, config, lang, device, backend)
            face_key = (self._file_key(path), str(device), backend)
            return vocoder, self._faces.setdefault(face_key, face)  # a second language reuses the first's renderer

        key = (self._file_key(path), config and self._file_key(config), lang, str(device), backend)
        return self._get("renderer", key, load)

    def vocoder(self, path, config, lang, device, backend):
        """A vocoder from any checkpoint ``load_vocoder`` reads, on the fast path ``backend``."""
        from ..runtime.fast import fast_vocoder
        from ..vocoder.checkpoint import load_vocoder

        key = (self._file_key(path), config and self._file_key(config), lang, str(device), backend)
        return self._get(
            "vocoder", key, lambda: fast_vocoder(load_vocoder(path, config, lang=lang, device=device), backend)
        )

    def lazy_renderer(self, path, config, lang, device, backend) -> LazyModels:
        """``renderer(...)``, loaded when ``render`` unpacks it (so a bad job fails with render's own line)."""
        return LazyModels(lambda: self.renderer(path, config, lang, device, backend))

    def av2unit(self, path, device):
        """``load_av2unit``'s mAV-HuBERT, one per checkpoint and device."""
        from ..av2unit.api import load_av2unit

        return self._get("mAV-HuBERT", (self._file_key(path), str(device)), lambda: load_av2unit(path, device=device))

    def translator(self, path, dict_path, device):
        """``load_translator``'s UTUT model, one per checkpoint, unit dictionary and device."""
        from ..translate.api import load_translator

        key = (self._file_key(path), dict_path and self._file_key(dict_path), str(device))
        return self._get("UTUT", key, lambda: load_translator(path, dict_path=dict_path, device=device))

    def speaker_encoder(self, path, device):
        """The GE2E ``SpeakerEncoder`` (``path`` ``None``: the default weights)."""
        from ..prepare.speaker import SpeakerEncoder

        key = (path and self._file_key(path), str(device))
        return self._get("speaker encoder", key, lambda: SpeakerEncoder.load(path, device=device))

    def lazy_speaker_encoder(self, path, device) -> LazySpeakerEncoder:
        return LazySpeakerEncoder(self, path, device)


__all__ = ["LazyModels", "LazySpeakerEncoder", "ModelCache"]
