"""mAV-HuBERT (AV-HuBERT with two 25 Hz label heads) without fairseq, built from a checkpoint's config.

Audio half: ``Linear(audio_feat_dim -> D)`` per step; video half: ``ResEncoder`` then
``Linear(512 -> D)``; an absent modality contributes zeros. ``concat`` (or ``add``) fusion,
LayerNorm, ``post_extract_proj``, the transformer encoder -> ``x (B, T, D)``. The label heads:
``final_proj(x)`` split per head, cosine similarity with each head's label embeddings divided by
``logit_temp`` -> ``(B, T, C)`` per head; head 0 predicts the even 50 Hz units, head 1 the odd ones.
Module and parameter names follow fairseq's ``AVHubertModel`` so the state dict loads strictly.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
from torch import nn

from ..onednn import available as onednn_available
from .encoder import TransformerEncoder
from .resnet import ResEncoder

MODEL_NAMES = ("av_hubert",)  # cfg.model._name of the models this module builds
TASK_NAMES = ("av_hubert_unit_pretraining", "av_hubert_pretraining")  # tasks whose checkpoints carry label heads
WINDOW_OVERLAP = 200  # frames (8 s) two neighbouring encoder windows share; each kept frame sees >= 4 s around it


@dataclass(frozen=True)
class AVHubertConfig:
    """The model and task settings inference needs (AV-HuBERT's own defaults; unknown keys ignored)."""

    encoder_layers: int = 12
    encoder_embed_dim: int = 768
    encoder_ffn_embed_dim: int = 3072
    encoder_attention_heads: int = 12
    activation_fn: str = "gelu"
    layer_norm_first: bool = False
    final_dim: int = 0
    untie_final_proj: bool = False
    audio_feat_dim: int = 104
    modality_fuse: str = "concat"
    sub_encoder_layers: int = 0
    conv_pos: int = 128
    conv_pos_groups: int = 16
    logit_temp: float = 0.1
    sim_type: str = "cosine"
    resnet_relu_type: str = "prelu"
    masking_type: str = "input"
    target_glu: bool = False
    layer_type: str = "transformer"
    # task
    normalize: bool = False
    stack_order_audio: int = 1
    image_crop_size: int = 88
    image_mean: float = 0.421
    image_std: float = 0.165
    num_classes: tuple[int, ...] = ()

    @classmethod
    def from_cfg(cls, model_cfg: dict, task_cfg: dict, num_classes: list[int]) -> AVHubertConfig:
        """Pick the known keys of ``cfg["model"]`` and ``cfg["task"]`` (None values keep the default)."""
        names = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for src in (model_cfg, task_cfg) for k, v in src.items() if k in names and v is not None}
        values["num_classes"] = tuple(int(n) for n in num_classes)
        cfg = cls(**values)
        cfg.check()
        return cfg

    @property
    def head_dim(self) -> int:
        """Width of each head's projection (``final_dim``, or the model width when <= 0)."""
        return self.final_dim if self.final_dim > 0 else self.encoder_embed_dim

    def check(self) -> None:
        """Raise ``ValueError`` for settings this implementation does not build."""
        if self.layer_type != "transformer":
            raise ValueError(f"encoder layer_type {self.layer_type!r} (only 'transformer' is supported)")
        if self.modality_fuse not in ("concat", "add"):
            raise ValueError(f"modality_fuse {self.modality_fuse!r} (concat or add)")
        if self.sim_type not in ("cosine", "dot"):
            raise ValueError(f"sim_type {self.sim_type!r} (cosine or dot)")
        if self.audio_feat_dim != 26 * self.stack_order_audio:
            raise ValueError(
                f"audio_feat_dim {self.audio_feat_dim} != 26 filterbank bands x stack_order_audio "
                f"{self.stack_order_audio}"
            )
        if len(self.num_classes) < 1:
            raise ValueError("no label dictionaries (a fine-tuned model without label heads?)")


def _encoder(cfg: AVHubertConfig, layers: int, manual_attention: bool) -> TransformerEncoder:
    return TransformerEncoder(
        cfg.encoder_embed_dim,
        cfg.encoder_ffn_embed_dim,
        cfg.encoder_attention_heads,
        layers,
        cfg.conv_pos,
        cfg.conv_pos_groups,
        cfg.activation_fn,
        cfg.layer_norm_first,
        manual_attention,
    )


class SubModel(nn.Module):
    """One modality's front end: optional ResNet, ``proj`` to the model width, optional own encoder."""

    def __init__(
        self, cfg: AVHubertConfig, input_dim: int, resnet: ResEncoder | None = None, manual_attention: bool = False
    ):
        super().__init__()
        self.resnet = resnet
        self.proj = nn.Linear(input_dim, cfg.encoder_embed_dim)
        self.encoder = _encoder(cfg, cfg.sub_encoder_layers, manual_attention) if cfg.sub_encoder_layers > 0 else None

    def forward(self, x: torch.Tensor, frame_batch: int | None = None) -> torch.Tensor:
        """Audio ``(B, F, T)`` or video ``(B, 1, T, H, W)`` -> ``(B, T, D)``."""
        if self.resnet is not None:
            x = self.resnet(x, frame_batch)  # (B, 512, T)
        x = self.proj(x.transpose(1, 2))
        return self.encoder(x) if self.encoder is not None else x


class AVHubert(nn.Module):
    """mAV-HuBERT at inference: fused features -> encoder -> two label heads.

    Args:
        cfg: sizes and settings (``AVHubertConfig.from_cfg``).
        manual_attention: written-out attention (the plain reference path for benchmarks).
    """

    def __init__(self, cfg: AVHubertConfig, manual_attention: bool = False):
        super().__init__()
        self.cfg = cfg
        d = cfg.encoder_embed_dim
        self.mask_emb = nn.Parameter(torch.zeros(cfg.audio_feat_dim if cfg.masking_type == "input" else d))
        self.label_embs_concat = nn.Parameter(torch.zeros(sum(cfg.num_classes), cfg.head_dim))
        self.feature_extractor_audio = SubModel(cfg, cfg.audio_feat_dim, None, manual_attention)
        resnet = ResEncoder(cfg.resnet_relu_type)
        self.feature_extractor_video = SubModel(cfg, resnet.backend_out, resnet, manual_attention)
        fused = 2 * d if cfg.modality_fuse == "concat" else d
        self.post_extract_proj = nn.Linear(fused, d) if fused != d else None
        self.encoder = _encoder(cfg, cfg.encoder_layers, manual_attention)
        self.layer_norm = nn.LayerNorm(fused)
        if cfg.target_glu:  # unused at inference; present so that such state dicts load strictly
            self.target_glu = nn.Sequential(nn.Linear(cfg.head_dim, 2 * cfg.head_dim), nn.GLU())
        heads = len(cfg.num_classes) if cfg.untie_final_proj else 1
        self.final_proj = nn.Linear(d, cfg.head_dim * heads)

    def fuse_features(
        self, audio: torch.Tensor | None = None, video: torch.Tensor | None = None, frame_batch: int | None = None
    ) -> torch.Tensor:
        """Front ends, fusion, LayerNorm and ``post_extract_proj``: the encoder's input.

        Args:
            audio: ``(B, audio_feat_dim, T)`` normalised filterbank rows, or None.
            video: ``(B, 1, T, 88, 88)`` normalised crops, or None.
            frame_batch: frames per pass of the video front end (``None``: all at once; same result).

        Returns:
            ``(B, T, D)``.
        """
        if audio is None and video is None:
            raise ValueError("neither audio nor video given")
        fa = self.feature_extractor_audio(audio) if audio is not None else None
        fv = self.feature_extractor_video(video, frame_batch) if video is not None else None
        if fa is not None and fv is not None and fa.shape[1] != fv.shape[1]:
            raise ValueError(f"audio has {fa.shape[1]} steps, video {fv.shape[1]}")
        fa = fa if fa is not None else torch.zeros_like(fv)
        fv = fv if fv is not None else torch.zeros_like(fa)
        x = torch.cat([fa, fv], dim=-1) if self.cfg.modality_fuse == "concat" else fa + fv
        x = self.layer_norm(x)
        return self.post_extract_proj(x) if self.post_extract_proj is not None else x

    def encode(
        self,
        audio: torch.Tensor | None = None,
        video: torch.Tensor | None = None,
        frame_batch: int | None = None,
        max_frames: int | None = None,
        overlap: int = WINDOW_OVERLAP,
    ) -> torch.Tensor:
        """The fine-tuning feature path (``extract_finetune``): ``x (B, T, D)``.

        Args:
            audio, video, frame_batch: see ``fuse_features``.
            max_frames: longest sequence the encoder sees at once (``None``: the whole input, as the
                reference); longer inputs go through ``windows`` of this length.
            overlap: frames shared by neighbouring windows.
        """
        x = self.fuse_features(audio, video, frame_batch)
        if max_frames is None or x.shape[1] <= max_frames:
            return self.encoder(x)
        return torch.cat(
            [self.encoder(x[:, s:e])[:, a - s : b - s] for s, e, a, b in windows(x.shape[1], max_frames, overlap)],
            dim=1,
        )

    def head_logits(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Each label head's logits for encoder output ``x (B, T, D)`` -> ``[(B, T, C_h)]``."""
        proj = self.final_proj(x)
        n = len(self.cfg.num_classes)
        projs = proj.chunk(n, dim=-1) if self.cfg.untie_final_proj else [proj] * n
        out = []
        for p, emb in zip(projs, self.label_embs_concat.split(list(self.cfg.num_classes), 0)):
            if self.cfg.sim_type == "dot":
                logits = p @ emb.T
            else:
                denom = p.norm(dim=-1, keepdim=True) * emb.norm(dim=-1)[None, None, :]  # (B, T, C)
                logits = (p @ emb.T) / denom.clamp(min=1e-6)
            out.append(logits / self.cfg.logit_temp)
        return out

    def fuse_for_inference(self, channels_last: bool = True, onednn: bool | None = None) -> AVHubert:
        """Fold BatchNorms and weight norm, pack q/k/v, channels-last ResNet; call after loading and moving.

        Args:
            channels_last: channels-last 2-D convolutions in the ResNet trunk.
            onednn: transformer products prepacked for oneDNN and attention as batched products
                (``None``: when the weights are float32 on the CPU; the packed copies take about
                1.2 GB more at the released size).
        """
        self.eval()
        if onednn is None:
            w = self.final_proj.weight
            onednn = w.device.type == "cpu" and w.dtype == torch.float32 and onednn_available()
        self.feature_extractor_video.resnet.fuse_for_inference(channels_last)
        for enc in (self.encoder, self.feature_extractor_audio.encoder, self.feature_extractor_video.encoder):
            if enc is not None:
                enc.fuse_for_inference(onednn)
        return self


def windows(length: int, size: int, overlap: int = WINDOW_OVERLAP) -> list[tuple[int, int, int, int]]:
    """Overlapping windows covering ``length`` frames and the part of each that is kept.

    Windows of ``size`` frames start every ``size - overlap`` frames (the last one is moved back to
    end at ``length``); neighbouring windows hand over in the middle of their shared frames, so every
    kept frame has at least ``overlap // 2`` frames of context on each side inside its window (or
    reaches the input's own edge).

    Returns:
        ``[(start, end, keep_start, keep_end)]``: run ``[start, end)``, keep ``[keep_start, keep_end)``;
        the kept parts tile ``[0, length)``.
    """
    if length <= size:
        return [(0, length, 0, length)]
    if not 0 <= overlap < size:
        raise ValueError(f"overlap {overlap} must be in [0, {size})")
    starts = list(range(0, length - size, size - overlap)) + [length - size]
    out, keep = [], 0
    for i, s in enumerate(starts):
        e = s + size
        nxt = (starts[i + 1] + e) // 2 if i + 1 < len(starts) else length
        out.append((s, e, keep, nxt))
        keep = nxt
    return out


def interleave(preds: list[torch.Tensor]) -> torch.Tensor:
    """Per-head predictions ``[(T,)] * H`` -> ``(H * T,)`` as ``[h0_0, h1_0, h0_1, h1_1, ...]``."""
    return torch.stack(preds, dim=1).reshape(-1)


__all__ = ["MODEL_NAMES", "TASK_NAMES", "WINDOW_OVERLAP", "AVHubert", "AVHubertConfig", "interleave", "windows"]
