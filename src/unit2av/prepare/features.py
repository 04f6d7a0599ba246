"""Frame features and unit sources for ``unit2av units``, keyed by a spec string.

- Features (``FEATURES``, ``register_feature``): ``"logmel"`` (built in) or ``"hubert:DIR[:LAYER]"``
  (``unit2av.prepare.hubert.HubertFeatures``). Every extractor maps a mono waveform at its
  ``sample_rate`` ``(T,)`` to ``(T // hop_size, D)`` float32; k-means turns them into units.
- Unit sources (``UNIT_SOURCES``, ``register_unit_source``) give units straight from a model, without
  k-means: ``"mavhubert:CKPT[:MODALITIES]"`` (mAV-HuBERT's label heads, ``unit2av.av2unit``; audio only
  by default, ``video`` reads the ``<stem>.lip.mp4`` beside each file).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from ..errors import Unit2AVError, fail
from ..spectral import MelSpectrogram
from ..timing import HOP_SAMPLES, SAMPLE_RATE  # HuBERT models: 16 kHz input, one frame per 20 ms

log = logging.getLogger(__name__)

LOGMEL_BANDS = 40  # mel bands of the "logmel" feature
LOGMEL_WINDOW_HOPS = 2  # "logmel" analysis window = this many code hops (640 samples = 40 ms at 16 kHz)

# factory(arg after "name:", cfg, params stored in a k-means file or None, device) -> extractor
FeatureFactory = Callable[[str, object, "dict | None", str], "FeatureExtractor"]
FEATURES: dict[str, FeatureFactory] = {}  # spec name -> factory


class FeatureExtractor:
    """Interface of a frame-feature extractor (subclass or duck-type it).

    Attributes:
        spec: the spec string that rebuilds it (stored in the k-means file).
        sample_rate: rate the waveform must have.
        hop_size: samples per frame (= the config's ``code_hop_size``).
    """

    spec: str = ""
    sample_rate: int = SAMPLE_RATE
    hop_size: int = HOP_SAMPLES

    def __call__(self, wav: np.ndarray) -> np.ndarray:  # (T,) -> (T // hop_size, D)
        raise NotImplementedError

    def params(self) -> dict:
        """Plain values (ints, floats, strings) stored in the k-means file to rebuild it."""
        return {}


def register_feature(name: str) -> Callable[[FeatureFactory], FeatureFactory]:
    """Decorator: ``@register_feature("name")`` adds ``factory(arg, cfg, params, device)`` for ``"name[:arg]"``."""

    def deco(factory: FeatureFactory) -> FeatureFactory:
        FEATURES[name] = factory
        return factory

    return deco


class LogMelFeatures(FeatureExtractor):
    """Log-mel frames at the code rate (one frame per ``hop_size`` samples).

    Frame ``i`` is centred on sample ``i * hop_size + hop_size / 2`` (reflect padding at the
    edges); the tail shorter than one hop is dropped, so ``T // hop_size`` frames (trim).

    Args:
        sample_rate: audio rate.
        hop_size: samples per frame (``code_hop_size``).
        num_mels: mel bands.
        win_size: analysis window (also the FFT size).
        fmin, fmax: mel range in Hz (``None`` = Nyquist).
    """

    def __init__(
        self,
        sample_rate: int = SAMPLE_RATE,
        hop_size: int = HOP_SAMPLES,
        num_mels: int = LOGMEL_BANDS,
        win_size: int | None = None,
        fmin: float = 0.0,
        fmax: float | None = None,
    ):
        self.spec = "logmel"
        self.sample_rate, self.hop_size, self.num_mels = int(sample_rate), int(hop_size), int(num_mels)
        self.win_size = int(win_size or LOGMEL_WINDOW_HOPS * hop_size)
        self.fmin, self.fmax = float(fmin), float(fmax if fmax is not None else sample_rate / 2)
        self.mel = MelSpectrogram(
            self.sample_rate, self.win_size, self.hop_size, self.win_size, self.num_mels, self.fmin, self.fmax
        )

    def __call__(self, wav: np.ndarray) -> np.ndarray:
        n = len(wav) // self.hop_size
        if n < 1:
            raise Unit2AVError(f"audio shorter than one unit ({len(wav)} < {self.hop_size} samples)")
        with torch.no_grad():
            feats = self.mel(torch.from_numpy(np.ascontiguousarray(wav, dtype=np.float32)))[0].T  # (frames, mels)
        return feats.numpy()[:n].astype(np.float32)  # (n, mels); n or n - 1 rows when win - hop is odd

    def params(self) -> dict:
        return {"num_mels": self.num_mels, "win_size": self.win_size, "fmin": self.fmin, "fmax": self.fmax}


@register_feature("logmel")
def _logmel_factory(arg: str, cfg, params: dict | None = None, device: str = "cpu") -> LogMelFeatures:
    if arg:
        raise Unit2AVError(f"feature spec 'logmel' takes no argument (got 'logmel:{arg}')")
    return LogMelFeatures(cfg.sampling_rate, cfg.code_hop_size, **(params or {}))


class _HubertAdapter(FeatureExtractor):
    """Wraps ``unit2av.prepare.hubert.HubertFeatures`` (16 kHz, 320-sample hop)."""

    def __init__(self, spec: str, model):
        self.spec, self.model, self.sample_rate, self.hop_size = spec, model, SAMPLE_RATE, HOP_SAMPLES

    def __call__(self, wav: np.ndarray) -> np.ndarray:
        return np.asarray(self.model(wav), dtype=np.float32)


@register_feature("hubert")
def _hubert_factory(arg: str, cfg, params: dict | None = None, device: str = "cpu") -> FeatureExtractor:
    model_dir, layer = arg, None
    head, _, tail = arg.rpartition(":")
    if head and tail.isdigit():
        model_dir, layer = head, int(tail)
    if not model_dir:
        raise Unit2AVError("feature spec 'hubert' needs a model folder: hubert:DIR[:LAYER]")
    if cfg.sampling_rate != SAMPLE_RATE or cfg.code_hop_size != HOP_SAMPLES:
        raise Unit2AVError(
            f"hubert features are 50 Hz at 16 kHz; the config has sampling_rate "
            f"{cfg.sampling_rate}, code_hop_size {cfg.code_hop_size}"
        )
    try:
        from .hubert import HubertFeatures
    except ImportError as e:
        raise Unit2AVError(f"hubert features are not available in this installation ({e})") from e
    return _HubertAdapter(f"hubert:{arg}", HubertFeatures(model_dir, layer=layer, device=device))


def make_feature_extractor(spec: str, cfg=None, params: dict | None = None, device: str = "cpu") -> FeatureExtractor:
    """Build the extractor named by ``spec`` (``"logmel"``, ``"hubert:DIR[:LAYER]"``).

    Args:
        spec: feature spec; the part after the first ``:`` goes to the factory.
        cfg: a ``VocoderConfig`` (``sampling_rate``, ``code_hop_size``); ``None`` = the bundled one.
        params: extra keyword values for the factory (those stored in a k-means file).
        device: where a neural feature model runs (``"cpu"``, ``"cuda"``, ``"auto"``).
    """
    from ..vocoder.config import load_config

    cfg = load_config(None) if cfg is None else cfg
    name, _, arg = spec.partition(":")
    if name not in FEATURES:
        raise Unit2AVError(f"unknown feature spec {spec!r} (known: {', '.join(sorted(FEATURES))})")
    return FEATURES[name](arg, cfg, params, device)


class UnitSource:
    """Interface of a model that maps audio straight to units at the code rate (no k-means).

    Attributes:
        spec: the spec string that rebuilds it.
        sample_rate: rate the waveform must have.
        hop_size: samples per unit.
    """

    spec: str = ""
    sample_rate: int = SAMPLE_RATE
    hop_size: int = HOP_SAMPLES

    def __call__(self, wav: np.ndarray, path: Path) -> torch.Tensor:  # (T,) -> LongTensor (T // hop_size,)
        raise NotImplementedError


UNIT_SOURCES: dict[str, Callable[[str, str], UnitSource]] = {}  # spec name -> factory(arg, device)


def register_unit_source(name: str):
    """Decorator: ``@register_unit_source("name")`` adds ``factory(arg, device)`` for ``"name:arg"``."""

    def deco(factory):
        UNIT_SOURCES[name] = factory
        return factory

    return deco


def make_unit_source(spec: str | None, device: str = "cpu") -> UnitSource | None:
    """The unit source ``spec`` names (``"mavhubert:CKPT[:audio|video|audio,video]"``), or None for a feature spec."""
    name, _, arg = (spec or "").partition(":")
    return UNIT_SOURCES[name](arg, device) if name in UNIT_SOURCES else None


def is_unit_source(spec: str | None) -> bool:
    """True when ``spec`` names a unit source (units without k-means)."""
    return (spec or "").partition(":")[0] in UNIT_SOURCES


class _MavhubertUnits(UnitSource):
    """mAV-HuBERT label-head units (``unit2av.av2unit``); the length rule is ``AV2Unit.code``'s."""

    def __init__(self, spec: str, model, modalities: str):
        self.spec, self.model, self.modalities = spec, model, modalities

    def __call__(self, wav: np.ndarray, path: Path) -> torch.Tensor:
        lip = None
        if "video" in self.modalities:
            lip = path.with_name(f"{path.stem}.lip.mp4")
            if not lip.is_file():
                raise fail(path, f"no mouth crops {lip.name} beside it (modality video)")
        # features from the file as the reference reads it (FFmpeg's resampler, 16-bit, codec padding
        # trimmed); the units cover ``len(wav)``, the audio the vocoder trainer loads
        return self.model.code(path, lip, self.modalities, source=path, num_samples=len(wav))


@register_unit_source("mavhubert")
def _mavhubert_factory(arg: str, device: str = "cpu") -> UnitSource:
    ckpt, modalities = arg, "audio"
    head, _, tail = arg.rpartition(":")
    if head and tail in ("audio", "video", "audio,video", "video,audio"):
        ckpt, modalities = head, tail
    if not ckpt:
        raise Unit2AVError("unit source 'mavhubert' needs a checkpoint: mavhubert:CKPT[:audio|video|audio,video]")
    from ..av2unit.api import load_av2unit

    return _MavhubertUnits(f"mavhubert:{arg}", load_av2unit(ckpt, device=device), modalities)


__all__ = [
    "FEATURES",
    "FeatureExtractor",
    "LOGMEL_BANDS",
    "LOGMEL_WINDOW_HOPS",
    "LogMelFeatures",
    "UNIT_SOURCES",
    "UnitSource",
    "is_unit_source",
    "make_feature_extractor",
    "make_unit_source",
    "register_feature",
    "register_unit_source",
]
