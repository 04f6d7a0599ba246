"""mAV-HuBERT units from speech and/or mouth crops: ``load_av2unit`` and the ``AV2Unit`` model.

    model = load_av2unit("mavhubert_large_noise.pt", device="auto")
    units = model.units(audio="clip.mp4", lip="clip.lip.mp4")      # LongTensor (2T,), 50 Hz
    text = model.unit_string(audio="clip.mp4", lip="clip.lip.mp4")  # "12 12 873 ..." as AV2AV writes it

Inputs: ``audio`` is a float32 mono 16 kHz array in [-1, 1] (or int16 samples) or a path (any file PyAV reads: its first
audio track, resampled by FFmpeg, 16-bit, trimmed to the stream's duration); ``lip`` is ``(T, 96, 96)``
uint8 grayscale mouth crops or a path to a ``.lip.mp4``. ``modalities`` (``"audio,video"``, ``"audio"``,
``"video"``) picks what the model sees; by default whatever is given. An absent modality is zeros.

Length rule: with video, ``T`` = the number of mouth-crop frames (25 fps) and the audio rows are
trimmed or zero-padded to ``T``; audio alone gives ``T = ceil(F / 4)`` rows for ``F`` filterbank
frames (``1 + ceil((N - 400) / 160)`` for ``N > 400`` samples). Audio and video that differ by more
than ``max_mismatch`` frames are refused (``None``: pad/trim any difference, as the reference does).
Two units per row: ``2T`` units at 50 Hz.

Long inputs: the video front end runs over ``frame_batch`` frames at a time (exact); the
transformer sees the whole input up to ``max_frames`` frames (60 s) and otherwise overlapping
windows (``model.windows``).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..devices import resolve_device
from ..errors import Unit2AVError, fail
from ..timing import HOP_SAMPLES
from .features import (
    INT16_SCALE,
    audio_rows,
    check_lip_array,
    float_to_int16_scale,
    image_transform,
    load_audio_int16,
    num_rows,
    read_lip_frames,
)
from .model import MODEL_NAMES, TASK_NAMES, WINDOW_OVERLAP, AVHubert, AVHubertConfig, interleave

log = logging.getLogger(__name__)

MODALITIES = ("audio", "video")
MAX_MISMATCH = 5  # frames (0.2 s) audio rows and mouth-crop frames may differ before inputs are refused
MAX_FRAMES = 1500  # frames (60 s) the transformer attends over at once
FRAME_BATCH = 128  # frames per pass of the video front end (memory stays flat in video length; 2 threads: best)
SPECIAL_UNIT = -1  # value ``units`` gives a predicted special symbol (<s>, <pad>, </s>, <unk>)


@dataclass
class AV2UnitInputs:
    """What the model receives for one clip.

    Attributes:
        modalities: the modalities used, in ``("audio", "video")`` order.
        num_frames: ``T``, steps at 25 Hz.
        audio_raw: ``(T, F)`` float32 stacked filterbank rows before normalisation, or None.
        audio: ``(T, F)`` float32 model input (normalised when the checkpoint says so), or None.
        video: ``(T, 88, 88)`` float32 normalised crops, or None.
    """

    modalities: tuple[str, ...]
    num_frames: int
    audio_raw: np.ndarray | None = None
    audio: torch.Tensor | None = None
    video: torch.Tensor | None = None


def parse_modalities(modalities, have_audio: bool, have_lip: bool) -> tuple[str, ...]:
    """``"audio,video"`` / ``["audio"]`` / None (whatever is given) -> a checked tuple in canonical order."""
    if modalities is None:
        chosen = {m for m, have in zip(MODALITIES, (have_audio, have_lip)) if have}
    else:
        parts = modalities.split(",") if isinstance(modalities, str) else list(modalities)
        chosen = {str(p).strip() for p in parts if str(p).strip()}
        unknown = chosen - set(MODALITIES)
        if unknown:
            raise fail(None, f"unknown modality {sorted(unknown)[0]!r} (audio,video | audio | video)")
    if not chosen:
        raise fail(None, "no input: give audio, mouth crops (lip) or both")
    if "audio" in chosen and not have_audio:
        raise fail(None, "modality 'audio' asked for but no audio given")
    if "video" in chosen and not have_lip:
        raise fail(None, "modality 'video' asked for but no mouth crops (lip) given")
    return tuple(m for m in MODALITIES if m in chosen)


def _audio_samples(audio) -> tuple[np.ndarray, object]:
    """An array/tensor in [-1, 1] or a path -> (int16-scale float64 samples, source for messages)."""
    if isinstance(audio, (str, os.PathLike)):
        return load_audio_int16(audio), audio
    if isinstance(audio, torch.Tensor):
        audio = audio.detach().cpu().numpy()
    wav = np.asarray(audio)
    if wav.ndim != 1 or wav.size == 0 or (wav.dtype.kind != "f" and wav.dtype != np.int16):
        raise fail(
            None, f"audio must be a 1-D float (or int16) array at 16 kHz, or a path (got {wav.dtype} {wav.shape})"
        )
    if wav.dtype == np.int16:  # already int16 sample values
        return wav.astype(np.float64), None
    if not np.all(np.isfinite(wav)):
        raise fail(None, "audio contains NaN or infinite samples")
    return float_to_int16_scale(wav), None


class AV2Unit:
    """A loaded mAV-HuBERT with its label dictionaries.

    Args:
        model: the network (weights loaded, in eval mode).
        dictionaries: each label head's symbols (``"<s>", "<pad>", "</s>", "<unk>", "0", ...``).
        device: where the network runs.
        frame_batch: frames per pass of the video front end.
        max_frames: whole-input attention up to this many frames; longer inputs in windows.
        max_mismatch: default for the methods' ``max_mismatch``.
    """

    def __init__(
        self,
        model: AVHubert,
        dictionaries: list[list[str]],
        device: torch.device | str = "cpu",
        frame_batch: int | None = FRAME_BATCH,
        max_frames: int | None = MAX_FRAMES,
        max_mismatch: int | None = MAX_MISMATCH,
    ):
        self.model, self.symbols = model, list(dictionaries[0])
        self.device = torch.device(device)
        self.frame_batch, self.max_frames, self.max_mismatch = frame_batch, max_frames, max_mismatch
        self._skip = {self.symbols.index(w) for w in ("<s>", "</s>") if w in self.symbols}
        self._values = torch.tensor([int(s) if s.isdigit() else SPECIAL_UNIT for s in self.symbols])

    @property
    def cfg(self) -> AVHubertConfig:
        return self.model.cfg

    def features(self, audio=None, lip=None, modalities=None, max_mismatch="default") -> AV2UnitInputs:
        """The model's inputs (see the module doc for the length rule).

        Args:
            audio: float32 16 kHz array in [-1, 1], or a path.
            lip: ``(T, 96, 96)`` uint8 grayscale crops, or a path to a ``.lip.mp4``.
            modalities: ``"audio,video"``, ``"audio"``, ``"video"`` or None (whatever is given).
            max_mismatch: frames audio and video may differ by (``None``: any; default: the model's).

        Raises:
            Unit2AVError: missing inputs, unreadable files, wrong crop size, lengths too far apart.
        """
        use = parse_modalities(modalities, audio is not None, lip is not None)
        max_mismatch = self.max_mismatch if max_mismatch == "default" else max_mismatch
        cfg, out = self.cfg, AV2UnitInputs(use, 0)
        if "video" in use:
            src = lip if isinstance(lip, (str, os.PathLike)) else None
            gray = read_lip_frames(lip) if src is not None else check_lip_array(lip)
            out.video = torch.from_numpy(image_transform(gray, cfg.image_mean, cfg.image_std, cfg.image_crop_size))
            out.num_frames = len(gray)
        if "audio" in use:
            samples, src = _audio_samples(audio)
            rows = num_rows(len(samples))
            if out.video is not None and max_mismatch is not None and abs(rows - out.num_frames) > max_mismatch:
                raise fail(
                    src,
                    f"audio gives {rows} frames ({rows / 25:.2f} s at 25 fps) but the mouth crops have "
                    f"{out.num_frames} ({out.num_frames / 25:.2f} s): more than {max_mismatch} frames "
                    "apart (wrong .lip.mp4?)",
                )
            out.audio_raw, out.audio = audio_rows(
                samples, out.num_frames if out.video is not None else None, cfg.normalize, cfg.stack_order_audio
            )
            out.num_frames = len(out.audio)
        return out

    @torch.inference_mode()
    def encode(self, inputs: AV2UnitInputs) -> torch.Tensor:
        """Encoder output ``x (T, D)`` for ``features(...)``'s result."""
        a = inputs.audio.T[None].to(self.device) if inputs.audio is not None else None  # (1, F, T)
        v = inputs.video[None, None].to(self.device) if inputs.video is not None else None  # (1, 1, T, 88, 88)
        return self.model.encode(a, v, self.frame_batch, self.max_frames, WINDOW_OVERLAP)[0]

    @torch.inference_mode()
    def logits(self, audio=None, lip=None, modalities=None, max_mismatch="default") -> list[torch.Tensor]:
        """Each label head's logits ``[(T, C)] * heads`` (head 0: even 50 Hz units, head 1: odd), on the CPU."""
        x = self.encode(self.features(audio, lip, modalities, max_mismatch))
        return [h[0].float().cpu() for h in self.model.head_logits(x[None])]

    def indices(self, audio=None, lip=None, modalities=None, max_mismatch="default") -> torch.Tensor:
        """Dictionary indices of the predicted labels, interleaved to 50 Hz: ``LongTensor (2T,)``."""
        return interleave([h.argmax(dim=-1) for h in self.logits(audio, lip, modalities, max_mismatch)])

    def units(self, audio=None, lip=None, modalities=None, max_mismatch="default") -> torch.Tensor:
        """Unit values at 50 Hz: ``LongTensor (2T,)`` (a predicted special symbol gives -1)."""
        return self.values(self.indices(audio, lip, modalities, max_mismatch))

    def code(self, audio, lip=None, modalities=None, source=None, num_samples: int | None = None) -> torch.Tensor:
        """Units on the vocoders' grid: ``LongTensor (num_samples // 320,)`` (the seed's ``code``).

        Length rule: audio gives ``2T = 2 ceil(F / 4)`` units, which is always ``len(audio) // 320``
        plus 0, 1 or 2 (units of the zero-padded tail frames); those extra units are dropped. With
        mouth crops ``2T`` = twice their frame count (within ``max_mismatch`` frames of the audio):
        trimmed, or padded by repeating the last unit (as is a 1-unit shortfall when ``num_samples``
        comes from another reader of the same file).

        Args:
            audio: float32 16 kHz mono in [-1, 1], or a path (read as ``units`` reads it).
            lip, modalities: see ``features`` (default: audio only).
            source: the file, named in errors.
            num_samples: the samples the units must cover (default: the audio's own length).
        """
        try:
            samples, _ = _audio_samples(audio)
            n = (len(samples) if num_samples is None else int(num_samples)) // HOP_SAMPLES
            if n < 1:
                raise fail(None, f"audio shorter than one unit (fewer than {HOP_SAMPLES} samples at 16 kHz)")
            units = self.units(samples / INT16_SCALE, lip, modalities or "audio")  # exact: a power of 2
        except Unit2AVError as e:
            if source is None:
                raise
            raise fail(source, str(e)) from e
        if len(units) < n:
            units = torch.cat([units, units[-1:].expand(n - len(units))])
        return units[:n]

    def values(self, indices: torch.Tensor) -> torch.Tensor:
        """Dictionary indices -> unit values (the symbols' numbers; -1 for special symbols)."""
        return self._values[indices.long().cpu()]

    def to_string(self, indices: torch.Tensor) -> str:
        """Indices -> the unit string as fairseq's ``Dictionary.string`` prints it (``<s>``/``</s>`` dropped)."""
        return " ".join(
            self.symbols[i] if i < len(self.symbols) else "<unk>" for i in indices.tolist() if i not in self._skip
        )

    def unit_string(self, audio=None, lip=None, modalities=None, max_mismatch="default") -> str:
        """The unit string AV2AV's ``av2unit/inference.py`` writes for these inputs."""
        return self.to_string(self.indices(audio, lip, modalities, max_mismatch))


def _check_kind(ck, path: Path) -> None:
    model_name = ck.cfg.get("model", {}).get("_name")
    task_name = ck.cfg.get("task", {}).get("_name")
    if model_name not in MODEL_NAMES or task_name not in TASK_NAMES:
        raise fail(
            path,
            f"not an mAV-HuBERT checkpoint: it holds model {model_name!r} for task {task_name!r} "
            f"(expected model 'av_hubert' for task 'av_hubert_unit_pretraining')",
        )
    if not ck.dictionaries or "label_embs_concat" not in ck.model:
        raise fail(
            path,
            f"not an mAV-HuBERT unit checkpoint: model {model_name!r} has no label dictionaries/heads "
            "(a fine-tuned AV-HuBERT?)",
        )


def build_model(ck, manual_attention: bool = False) -> AVHubert:
    """An ``AVHubert`` with a fairseq checkpoint's weights, loaded strictly (``ck``: ``load_fairseq_checkpoint``)."""
    try:
        cfg = AVHubertConfig.from_cfg(
            ck.cfg.get("model", {}), ck.cfg.get("task", {}), [len(d) for d in ck.dictionaries]
        )
    except (TypeError, ValueError) as e:
        raise fail(ck.path, f"unsupported mAV-HuBERT config: {e}") from e
    model = AVHubert(cfg, manual_attention)
    state = {k: v.float() if v.is_floating_point() else v for k, v in ck.model.items()}
    missing, unexpected = sorted(set(model.state_dict()) - set(state)), sorted(set(state) - set(model.state_dict()))
    if missing or unexpected:
        raise fail(
            ck.path,
            f"state dict does not match its config: {len(missing)} missing "
            f"({', '.join(missing[:3])}), {len(unexpected)} unexpected ({', '.join(unexpected[:3])})",
        )
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise fail(ck.path, f"state dict does not match its config: {str(e).splitlines()[-1].strip()}") from e
    return model.eval()


def load_av2unit(
    path: str | os.PathLike,
    device: str | torch.device = "auto",
    optimize: bool = True,
    frame_batch: int | None = FRAME_BATCH,
    max_frames: int | None = MAX_FRAMES,
    max_mismatch: int | None = MAX_MISMATCH,
) -> AV2Unit:
    """Load an mAV-HuBERT checkpoint (fairseq's container, read safely without fairseq).

    Args:
        path: e.g. AV2AV's ``mavhubert_large_noise.pt``.
        device: ``"auto"``, ``"cpu"``, ``"cuda"``...
        optimize: fold BatchNorm/weight norm, pack q/k/v, channels-last ResNet (same function).
        frame_batch, max_frames, max_mismatch: see ``AV2Unit``.

    Raises:
        Unit2AVError: unreadable/refused file, or not an mAV-HuBERT checkpoint (names what it is).
    """
    from ..io.fairseq import load_fairseq_checkpoint

    path = Path(path)
    ck = load_fairseq_checkpoint(path, what="mAV-HuBERT checkpoint")
    _check_kind(ck, path)
    dev = resolve_device(device)
    model = build_model(ck).to(dev)
    if optimize:
        model.fuse_for_inference(channels_last=dev.type == "cpu")
    cfg = model.cfg
    log.info(
        "%s: mAV-HuBERT, %d layers x %d wide, %d heads of %s classes, on %s",
        path,
        cfg.encoder_layers,
        cfg.encoder_embed_dim,
        len(cfg.num_classes),
        "/".join(map(str, cfg.num_classes)),
        dev,
    )
    return AV2Unit(model, ck.dictionaries, dev, frame_batch, max_frames, max_mismatch)


__all__ = ["AV2Unit", "AV2UnitInputs", "build_model", "load_av2unit", "parse_modalities"]
