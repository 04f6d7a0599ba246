"""A worker's models, loaded once and reused across its jobs, and running one job with them.

A worker serving jobs for two languages keeps both vocoders; jobs of one AV2AV container share
its face renderer; the GE2E speaker encoder is loaded the first time a job needs it.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from pathlib import Path

from ..errors import Unit2AVError
from .registry import COMMANDS

log = logging.getLogger(__name__)

# Internal test hook, not a user feature: "<line>:<flag file>" makes the worker that starts job
# <line> kill itself with SIGKILL (once: the flag file records that it happened), after its models
# are loaded, so the tests can check that a dead worker's job is retried elsewhere.
_KILL_HOOK = "_UNIT2AV_BATCH_TEST_KILL"


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
    """Models a worker has loaded, keyed by the files and settings that chose them.

    Attributes:
        loads: how many models were loaded (the benchmark and tests read it).
    """

    def __init__(self):
        self._vocoders: dict = {}
        self._renderers: dict = {}
        self._faces: dict = {}
        self._encoders: dict = {}
        self._others: dict = {}  # mAV-HuBERT unit extractors and UTUT translators
        self.loads = 0

    @staticmethod
    def _file_key(path) -> str:
        p = Path(path)
        try:
            st = p.stat()
            return f"{p.resolve()}@{st.st_mtime_ns}:{st.st_size}"
        except OSError:
            return str(p)

    def renderer(self, path, config, lang, device, backend):
        """``load_renderer``'s ``(vocoder, face_renderer)``, one face renderer per container and device."""
        from ..pipeline.render import load_renderer

        key = (self._file_key(path), config and self._file_key(config), lang, str(device), backend)
        if key not in self._renderers:
            vocoder, face = load_renderer(path, config, lang, device, backend)
            face_key = (self._file_key(path), str(device), backend)
            face = self._faces.setdefault(face_key, face)  # a second language reuses the first's renderer
            self._renderers[key] = (vocoder, face)
            self.loads += 1
            log.info("loaded %s (%s) on %s", path, lang, device)
        return self._renderers[key]

    def vocoder(self, path, config, lang, device, backend):
        """A vocoder from any checkpoint ``load_vocoder`` reads, on the fast path ``backend``."""
        from ..runtime.fast import fast_vocoder
        from ..vocoder.checkpoint import load_vocoder

        key = (self._file_key(path), config and self._file_key(config), lang, str(device), backend)
        if key not in self._vocoders:
            self._vocoders[key] = fast_vocoder(load_vocoder(path, config, lang=lang, device=device), backend)
            self.loads += 1
        return self._vocoders[key]

    def lazy_renderer(self, path, config, lang, device, backend) -> LazyModels:
        """``renderer(...)``, loaded when ``render`` unpacks it (so a bad job fails with render's own line)."""
        return LazyModels(lambda: self.renderer(path, config, lang, device, backend))

    def av2unit(self, path, device):
        """``load_av2unit``'s mAV-HuBERT, one per checkpoint and device."""
        from ..av2unit.api import load_av2unit

        key = ("av2unit", self._file_key(path), str(device))
        if key not in self._others:
            self._others[key] = load_av2unit(path, device=device)
            self.loads += 1
        return self._others[key]

    def translator(self, path, dict_path, device):
        """``load_translator``'s UTUT model, one per checkpoint, unit dictionary and device."""
        from ..translate.api import load_translator

        key = ("utut", self._file_key(path), dict_path and self._file_key(dict_path), str(device))
        if key not in self._others:
            self._others[key] = load_translator(path, dict_path=dict_path, device=device)
            self.loads += 1
        return self._others[key]

    def dub_models(self, params: dict) -> tuple:
        """``dub``'s ``(av2unit, translator, (vocoder, face_renderer))``, each loaded once per worker."""
        device = params.get("device", "auto")
        av2unit = self.av2unit(params["av2unit_path"], device)
        translator = self.translator(params["utut_path"], params.get("utut_dict"), device)
        renderer = self.lazy_renderer(
            params["unit2av_path"], params.get("config"), params.get("tgt_lang"), device, params.get("backend", "auto")
        )
        return av2unit, translator, renderer

    def speaker_encoder(self, path, device):
        """The GE2E ``SpeakerEncoder`` (``path`` ``None``: the default weights)."""
        from ..prepare.speaker import SpeakerEncoder

        key = (path and self._file_key(path), str(device))
        if key not in self._encoders:
            self._encoders[key] = SpeakerEncoder.load(path, device=device)
            self.loads += 1
        return self._encoders[key]

    def lazy_speaker_encoder(self, path, device) -> LazySpeakerEncoder:
        return LazySpeakerEncoder(self, path, device)


def _one_line(e: BaseException) -> str:
    """A Unit2AVError's own line; other errors as ``Type: message`` on one line."""
    if isinstance(e, Unit2AVError):
        return " ".join(str(e).split())
    return " ".join(f"{type(e).__name__}: {e}".split())[:500]


def _test_kill(line: int) -> None:
    spec = os.environ.get(_KILL_HOOK)
    if not spec:
        return
    target, _, flag = spec.partition(":")
    if int(target) == line and not os.path.exists(flag):
        Path(flag).write_text(str(os.getpid()))
        os.kill(os.getpid(), signal.SIGKILL)


def execute(job: dict, cache: ModelCache) -> dict:
    """Run one job (``Job.to_dict()``) with the worker's models; never raises for a job's own failure.

    Returns:
        ``{"line", "status": "done" | "failed", "reason", "seconds", ...durations}``.
    """
    t0 = time.perf_counter()
    cmd = COMMANDS[job["command"]]
    params = dict(job["params"])
    try:
        if cmd.models is not None:
            params.update(cmd.models(cache, params))
        _test_kill(job["line"])
        result = cmd.resolve()(**params)
        out = {"status": "done", "reason": None}
        if cmd.summary is not None:
            out.update(cmd.summary(result))
    except Exception as e:  # a bad input fails its own job only
        log.debug("job %d failed", job["line"], exc_info=True)
        out = {"status": "failed", "reason": _one_line(e)}
    out.update(line=job["line"], seconds=round(time.perf_counter() - t0, 3))
    return out


__all__ = ["LazySpeakerEncoder", "ModelCache", "execute"]
