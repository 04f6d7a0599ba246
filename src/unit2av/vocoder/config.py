"""Typed vocoder/training config that reads the original ``config.json`` files unchanged.

The field defaults below are the AV2AV / speech-resynthesis HuBERT vocoder; each comment
is the documentation of the key. ``load_config(path)`` accepts the JSON of
speech-resynthesis, fairseq's unit vocoders and AV2AV (known legacy keys accepted,
unknown keys warned) and checks it before any work starts.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from ..errors import fail
from ..timing import HOP_SAMPLES, SAMPLE_RATE

log = logging.getLogger(__name__)


@dataclass
class DurPredictorParams:
    """fairseq ``VariancePredictor`` sizes (``dur_predictor_params``)."""

    encoder_embed_dim: int = 128  # input channels: the unit embedding size
    var_pred_hidden_dim: int = 128  # hidden channels of both convs
    var_pred_kernel_size: int = 3  # conv kernel (odd; the original hard-codes padding 1 in conv2)
    var_pred_dropout: float = 0.5  # dropout after each LayerNorm (train mode only)


@dataclass
class VocoderConfig:
    """Everything a ``config.json`` of the original vocoders holds."""

    # --- generator (HiFi-GAN V1 layout)
    resblock: str = "1"  # residual block type; only "1" (3 dilated conv pairs) is used by unit vocoders
    upsample_rates: list[int] = field(default_factory=lambda: [5, 4, 4, 2, 2])  # product = code_hop_size
    upsample_kernel_sizes: list[int] = field(default_factory=lambda: [11, 8, 8, 4, 4])  # one per rate
    upsample_initial_channel: int = 512  # channels after conv_pre; halved by each upsampling
    resblock_kernel_sizes: list[int] = field(default_factory=lambda: [3, 7, 11])  # parallel blocks per stage
    resblock_dilation_sizes: list[list[int]] = field(
        default_factory=lambda: [[1, 3, 5], [1, 3, 5], [1, 3, 5]]
    )  # dilations per block
    # --- inputs
    num_embeddings: int = 1000  # unit vocabulary (k-means clusters), rows of `dict`
    embedding_dim: int = 128  # unit (and projected speaker) embedding size
    model_in_dim: int = 256  # conv_pre input channels = embedding_dim (+ embedding_dim speaker) (+ f0)
    multispkr: bool = True  # condition on a speaker
    embedder_params: Any = True  # truthy: speaker is an external embedding through Linear (AV2AV: GE2E)
    embedder_dim: int = 256  # size of that external embedding
    num_speakers: int = 200  # rows of the speaker ID table when embedder_params is falsy
    f0: bool = False  # concatenate an f0 track (speech-resynthesis f0 models)
    f0_quant_num_bin: int = 0  # >0: f0 is quantised and embedded
    f0_source: bool = False  # ours: NSF-style harmonic excitation at a predicted f0 (UnitVocoder docs)
    lambda_f0: float = 1.0  # ours: weight of the f0 predictor's loss when f0_source is on
    dur_predictor_params: DurPredictorParams | None = field(default_factory=DurPredictorParams)
    dur_prediction_weight: float = 1.0  # weight of the duration loss in training
    # --- audio and features
    segment_size: int = 8960  # training crop in samples (multiple of code_hop_size)
    code_hop_size: int = HOP_SAMPLES  # samples per unit (16 kHz / 50 Hz; unit2av.timing)
    n_fft: int = 1024  # STFT size of the mel loss
    num_freq: int = 1025  # legacy, = n_fft // 2 + 1
    hop_size: int = 256  # STFT hop of the mel loss
    win_size: int = 1024  # STFT window of the mel loss
    num_mels: int = 80  # mel bands of the mel loss
    sampling_rate: int = SAMPLE_RATE  # audio rate (input is resampled to it)
    fmin: float = 0.0  # lowest mel frequency
    fmax: float | None = 8000.0  # highest mel frequency of the training input features
    fmax_for_loss: float | None = None  # highest mel frequency of the loss (None = Nyquist)
    # --- optimisation
    batch_size: int = 16  # per process (per GPU under DDP)
    learning_rate: float = 0.0002  # AdamW learning rate
    adam_b1: float = 0.8  # AdamW beta1
    adam_b2: float = 0.99  # AdamW beta2
    lr_decay: float = 0.999  # ExponentialLR gamma, applied once per epoch
    seed: int = 1234  # torch / numpy / random seed
    num_workers: int = 4  # data loader worker processes
    lambda_mel: float = 45.0  # weight of the mel L1 loss
    lambda_fm: float = 2.0  # weight of the feature-matching loss
    lambda_adv: float = 1.0  # weight of the adversarial loss
    lambda_stft: float = 0.0  # ours: weight of a multi-resolution STFT loss (0 = off, HiFi-GAN's recipe)
    lambda_pitch: float = 0.0  # ours: weight of the autocorrelation pitch loss (0 = off)
    # --- data
    input_training_file: str | None = None  # training manifest
    input_validation_file: str | None = None  # validation manifest
    dist_config: dict = field(
        default_factory=lambda: {"dist_backend": "nccl", "dist_url": "tcp://localhost:54321", "world_size": 1}
    )  # legacy DDP settings

    # ------------------------------------------------------------------ derived
    @property
    def speaker_embedding(self) -> bool:
        """True when the speaker is an external vector through ``Linear`` (else an ID table)."""
        return bool(self.embedder_params)

    @property
    def expected_model_in_dim(self) -> int:
        n = self.embedding_dim
        if self.f0:
            n += self.embedding_dim if self.f0_quant_num_bin > 0 else 1
        if self.multispkr or self.speaker_embedding:
            n += self.embedding_dim
        return n

    def to_dict(self) -> dict:
        """The config as the original JSON layout (written beside checkpoints)."""
        return dataclasses.asdict(self)

    def validate(self, source: str | os.PathLike | None = None) -> VocoderConfig:
        """Check the config's internal consistency; raise a one-line ``Unit2AVError``."""
        src = source or "config"
        if len(self.upsample_rates) != len(self.upsample_kernel_sizes):
            raise fail(
                src,
                f"upsample_rates has {len(self.upsample_rates)} entries but upsample_kernel_sizes "
                f"has {len(self.upsample_kernel_sizes)}",
            )
        if math.prod(self.upsample_rates) != self.code_hop_size:
            raise fail(
                src,
                f"product of upsample_rates {self.upsample_rates} is {math.prod(self.upsample_rates)}, "
                f"but code_hop_size is {self.code_hop_size}",
            )
        if len(self.resblock_kernel_sizes) != len(self.resblock_dilation_sizes):
            raise fail(src, "resblock_kernel_sizes and resblock_dilation_sizes differ in length")
        if self.upsample_initial_channel % (2 ** len(self.upsample_rates)):
            raise fail(
                src,
                f"upsample_initial_channel {self.upsample_initial_channel} is not divisible by "
                f"2**{len(self.upsample_rates)}",
            )
        if self.model_in_dim != self.expected_model_in_dim:
            parts = f"embedding_dim {self.embedding_dim}"
            if self.multispkr or self.speaker_embedding:
                parts += f" + speaker {self.embedding_dim}"
            if self.f0:
                parts += " + f0"
            raise fail(
                src,
                f"model_in_dim is {self.model_in_dim}, but the embeddings concatenate to "
                f"{self.expected_model_in_dim} ({parts})",
            )
        if self.f0_source and self.f0:
            raise fail(src, "f0_source (a predicted excitation) and f0 (a given f0 input) exclude each other")
        if self.segment_size % self.code_hop_size:
            raise fail(src, f"segment_size {self.segment_size} is not a multiple of code_hop_size {self.code_hop_size}")
        dp = self.dur_predictor_params
        if dp is not None:
            if dp.encoder_embed_dim != self.embedding_dim:
                raise fail(
                    src,
                    f"dur_predictor_params.encoder_embed_dim {dp.encoder_embed_dim} != embedding_dim "
                    f"{self.embedding_dim}",
                )
            if dp.var_pred_kernel_size % 2 == 0:
                raise fail(src, f"dur_predictor_params.var_pred_kernel_size must be odd, got {dp.var_pred_kernel_size}")
        for name in (
            "num_embeddings",
            "embedding_dim",
            "sampling_rate",
            "n_fft",
            "hop_size",
            "win_size",
            "num_mels",
            "batch_size",
        ):
            if getattr(self, name) <= 0:
                raise fail(src, f"{name} must be positive, got {getattr(self, name)}")
        return self


# Keys the original files carry that we read but do not use.
LEGACY_KEYS = {
    "num_gpus",
    "dur_predictor_weight",
    "training_epochs",
    "checkpoint_interval",
    "stdout_interval",
    "summary_interval",
    "validation_interval",
    "multispkr_embedder",
    "lambda_adv_weight",
    "lang",
    "f0_stats",
    "f0_normalize",
    "f0_feats",
    "f0_median",
    "f0_inf",
    "f0_interp",
    "code_vq_params",
    "lambda_commit",
    "f0_vq_params",
    "f0_quantizer_path",
    "encoder_params",
    "embedder_type",
    "model_type",
    "vqvae",
    "f0_encoder_params",
    "f0_quantizer",
    "input_wavs_dir",
    "input_mels_dir",
    "input_code_dir",
}

_REQUIRED = (
    "upsample_rates",
    "upsample_kernel_sizes",
    "upsample_initial_channel",
    "resblock_kernel_sizes",
    "resblock_dilation_sizes",
    "num_embeddings",
    "embedding_dim",
    "model_in_dim",
    "code_hop_size",
    "sampling_rate",
)


def _coerce(name: str, value: Any, default: Any, src) -> Any:
    """Check one JSON value's type against the dataclass default's."""
    if value is None or default is None:
        return value
    if isinstance(default, bool):
        if isinstance(value, (bool, int)) or value is None:
            return bool(value) if not isinstance(default, dict) else value
    elif isinstance(default, int):
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
    elif isinstance(default, float):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif isinstance(default, str):
        if isinstance(value, (str, int)):
            return str(value)
    elif isinstance(default, list):
        if isinstance(value, list):
            return value
    elif isinstance(default, dict):
        if isinstance(value, dict):
            return value
    else:
        return value
    raise fail(src, f"key '{name}' should be {type(default).__name__}, got {type(value).__name__} {value!r}")


def config_from_dict(
    data: dict, source: str | os.PathLike | None = None, validate: bool = True, require: bool = True
) -> VocoderConfig:
    """Build a ``VocoderConfig`` from a parsed JSON dict."""
    src = source or "config"
    if not isinstance(data, dict):
        raise fail(src, "config must be a JSON object")
    if require:
        missing = [k for k in _REQUIRED if k not in data]
        if missing:
            more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
            raise fail(src, f"missing key '{missing[0]}'{more}")
    defaults = VocoderConfig()
    kwargs: dict[str, Any] = {}
    names = {f.name for f in dataclasses.fields(VocoderConfig)}
    for key, value in data.items():
        if key in names:
            if key == "dur_predictor_params":
                kwargs[key] = _dur_params(value, src)
            elif key == "embedder_params":
                kwargs[key] = value
            else:
                kwargs[key] = _coerce(key, value, getattr(defaults, key), src)
        elif key not in LEGACY_KEYS:
            log.warning("%s: unknown key '%s' ignored", src, key)
    if "dur_predictor_params" not in data:
        kwargs["dur_predictor_params"] = None
    cfg = VocoderConfig(**kwargs)
    return cfg.validate(src) if validate else cfg


def _dur_params(value, src) -> DurPredictorParams | None:
    if value is None or value is False:
        return None
    if not isinstance(value, dict):
        raise fail(src, f"key 'dur_predictor_params' should be an object, got {type(value).__name__}")
    names = {f.name for f in dataclasses.fields(DurPredictorParams)}
    defaults = DurPredictorParams()
    kw = {}
    for k, v in value.items():
        if k in names:
            kw[k] = _coerce(f"dur_predictor_params.{k}", v, getattr(defaults, k), src)
        else:
            log.warning("%s: unknown key 'dur_predictor_params.%s' ignored", src, k)
    return DurPredictorParams(**kw)


def load_config(path: str | os.PathLike | None = None) -> VocoderConfig:
    """Read and check a vocoder config JSON; ``None`` gives the bundled AV2AV config.

    Raises:
        Unit2AVError: missing file, bad JSON, a missing or mistyped key, inconsistent sizes.
    """
    if path is None:
        text = resources.files("unit2av.configs").joinpath("av2av.json").read_text()
        return config_from_dict(json.loads(text), "av2av.json (bundled)")
    path = Path(path)
    if not path.is_file():
        raise fail(path, "config not found")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise fail(path, f"not valid JSON ({e})") from e
    return config_from_dict(data, path)


def save_config(cfg: VocoderConfig, path: str | os.PathLike) -> None:
    """Write ``cfg`` as JSON (atomically) in the original key layout."""
    from ..io.safe import write_bytes_atomic

    write_bytes_atomic(path, (json.dumps(cfg.to_dict(), indent=2) + "\n").encode())
