"""mAV-HuBERT units (AV2AV's first stage) without fairseq: ``load_av2unit(path).units(audio=..., lip=...)``."""

from .api import AV2Unit, load_av2unit

__all__ = ["AV2Unit", "load_av2unit"]
