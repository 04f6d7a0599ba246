"""unit2av: unit-based audio-visual speech resynthesis.

Units (HuBERT / mAV-HuBERT k-means codes, 50 per second) -> speech (Unit2A, a
speaker-conditioned CodeHiFiGAN) -> a lip-synced talking-face video (Unit2AV).

The public API is imported lazily so that ``import unit2av`` stays fast:

    from unit2av import load_vocoder, load_config, SpeakerEncoder, render, load_renderer
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_LAZY = {
    "load_config": "unit2av.vocoder.config",
    "VocoderConfig": "unit2av.vocoder.config",
    "Unit2AVError": "unit2av.errors",
    "UnitVocoder": "unit2av.vocoder.model",
    "load_vocoder": "unit2av.vocoder.checkpoint",
    "synthesize": "unit2av.vocoder.synth",
    "SpeakerEncoder": "unit2av.prepare.speaker",
    "FaceRenderer": "unit2av.face.model",
    "render": "unit2av.pipeline.render",
    "dub": "unit2av.pipeline.dub",
    "load_renderer": "unit2av.pipeline.render",
    "load_translator": "unit2av.translate.api",
    "load_av2unit": "unit2av.av2unit.api",
    "AV2Unit": "unit2av.av2unit.api",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'unit2av' has no attribute {name!r}")
