"""Frame features from a HuBERT-family model stored locally in Hugging Face format.

    feats = HubertFeatures("models/hubert-base-ls960", layer=6)   # a folder with config.json + weights
    x = feats(wav16k)                                              # (len(wav16k) // 320, 768) float32

Any model ``transformers.AutoModel`` loads from a local folder and that returns hidden states
works (HuBERT, wav2vec 2.0, WavLM, data2vec-audio). Nothing is downloaded
(``local_files_only=True``). Needs the ``hubert`` extra: ``pip install unit2av[hubert]``.

Length contract (as for the log-mel features): one frame per 320 samples at 16 kHz, exactly
``len(wav) // 320`` frames. The model itself gives ``(len(wav) - 400) // 320 + 1`` frames (its
convolutions have a 400-sample receptive field and a 320-sample stride), which is one frame
short when ``len(wav) % 320 < 80``; such a missing last frame is **padded by repeating the last
model frame**, and any surplus frame is trimmed. The waveform itself is not padded, so the
features equal fairseq's HuBERT reader's and k-means models fitted on those still apply.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np
import torch

from ..devices import resolve_device
from ..errors import fail
from ..timing import HOP_SAMPLES

log = logging.getLogger(__name__)

FRAME_HOP = HOP_SAMPLES  # samples per feature frame: HuBERT's 20 ms stride is the 50 Hz unit rate
RECEPTIVE_FIELD = 400  # samples the convolutional front end needs for its first frame
# Longest stretch of audio run through the model at once (100 s, like fairseq's HuBERT reader);
# longer audio is cut into chunks of this many samples (a multiple of FRAME_HOP).
MAX_CHUNK = 1_600_000


def _wants_normalize(model_dir: Path) -> bool:
    """Whether the model expects zero-mean unit-variance input (``do_normalize`` in preprocessor_config.json)."""
    path = model_dir / "preprocessor_config.json"
    if not path.is_file():
        return False  # HuBERT base's own setting; large models ship a preprocessor_config.json saying True
    try:
        return bool(json.loads(path.read_text()).get("do_normalize", False))
    except (OSError, ValueError) as e:
        raise fail(path, f"cannot read preprocessor config: {e}") from e


def fit_length(feats: np.ndarray, num_frames: int) -> np.ndarray:
    """Trim or pad ``feats`` (T, D) to ``num_frames`` rows; padding repeats the last row (zeros if none)."""
    if len(feats) >= num_frames:
        return feats[:num_frames]
    if len(feats) == 0:
        return np.zeros((num_frames, feats.shape[1]), dtype=feats.dtype)
    pad = np.repeat(feats[-1:], num_frames - len(feats), axis=0)
    return np.concatenate([feats, pad], axis=0)


class HubertFeatures:
    """Callable ``wav16k (T,) float32 -> features (T // 320, D) float32``.

    Args:
        model_dir: a local folder in Hugging Face format (``config.json`` + weights).
        layer: hidden state to return: ``None`` = the last layer; ``0`` = the input to the first
            transformer layer; ``k`` = the output of transformer layer ``k`` (fairseq's
            ``output_layer=k``; 6 is the usual choice for HuBERT base units, 9 for iteration 2).
        device: ``"cpu"``, ``"cuda"``, ... or ``"auto"`` (cuda when available).

    Raises:
        Unit2AVError: ``transformers`` missing, the folder not loadable, or ``layer`` out of range.
    """

    def __init__(self, model_dir: str | os.PathLike, layer: int | None = None, device: str = "cpu"):
        self.model_dir = Path(model_dir)
        if not (self.model_dir / "config.json").is_file():
            raise fail(self.model_dir, "not a Hugging Face model folder (no config.json)")
        try:
            from transformers import AutoModel
        except ImportError as e:
            raise fail(None, "HuBERT features need transformers: pip install 'unit2av[hubert]'") from e
        try:
            model = AutoModel.from_pretrained(str(self.model_dir), local_files_only=True)
        except (OSError, ValueError, KeyError) as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise fail(self.model_dir, f"cannot load the model: {first}") from e
        num_layers = int(getattr(model.config, "num_hidden_layers", 0))
        if layer is not None and not 0 <= layer <= num_layers:
            raise fail(self.model_dir, f"layer {layer} is out of range: the model has layers 0..{num_layers}")
        self.layer = layer
        self.device = resolve_device(device)
        self.model = model.to(self.device).eval()
        self.normalize = _wants_normalize(self.model_dir)
        self.dim = int(model.config.hidden_size)
        log.info(
            "%s: %s, %d layers, dim %d, using %s",
            self.model_dir,
            type(model).__name__,
            num_layers,
            self.dim,
            "last layer" if layer is None else f"layer {layer}",
        )

    @torch.inference_mode()
    def _forward(self, wav: np.ndarray) -> np.ndarray:
        """Model frames for one chunk (T,) -> ((T - 400) // 320 + 1, D)."""
        if len(wav) < RECEPTIVE_FIELD:
            wav = np.pad(wav, (0, RECEPTIVE_FIELD - len(wav)))
        x = torch.from_numpy(np.ascontiguousarray(wav, dtype=np.float32)).to(self.device)[None]  # (1, T)
        if self.normalize:
            x = (x - x.mean()) / torch.sqrt(x.var(unbiased=False) + 1e-7)
        out = self.model(x, output_hidden_states=self.layer is not None)
        hidden = out.last_hidden_state if self.layer is None else out.hidden_states[self.layer]  # (1, F, D)
        return hidden[0].float().cpu().numpy()

    def __call__(self, wav: np.ndarray) -> np.ndarray:
        """Features of a 16 kHz mono waveform.

        Args:
            wav: (T,) float32 in [-1, 1] at 16 kHz.

        Returns:
            (T // 320, D) float32 (see the module docstring for the pad/trim rule).
        """
        wav = np.asarray(wav, dtype=np.float32).reshape(-1)
        num_frames = len(wav) // FRAME_HOP
        if num_frames == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        parts = []
        for start in range(0, len(wav), MAX_CHUNK):
            chunk = wav[start : start + MAX_CHUNK]
            want = len(chunk) // FRAME_HOP
            if want:
                parts.append(fit_length(self._forward(chunk), want))
        return np.ascontiguousarray(fit_length(np.concatenate(parts), num_frames), dtype=np.float32)


def parse_hubert_spec(spec: str) -> tuple[str, int | None]:
    """Parse ``"hubert:DIR[:LAYER]"`` -> ``(DIR, LAYER or None)``.

    The layer is taken from the last ``:`` only when it is an integer, so Windows drive letters
    and other colons in ``DIR`` survive.
    """
    if not spec.startswith("hubert:"):
        raise fail(None, f"bad feature spec {spec!r}: expected hubert:DIR[:LAYER]")
    rest = spec[len("hubert:") :]
    head, sep, tail = rest.rpartition(":")
    if sep and tail.strip().lstrip("-").isdigit():
        return head, int(tail)
    return rest, None


__all__ = ["FRAME_HOP", "HubertFeatures", "fit_length", "parse_hubert_spec"]
