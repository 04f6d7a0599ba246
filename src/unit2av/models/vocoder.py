"""UnitVocoder: fairseq's ``CodeGenerator`` (speaker-conditioned CodeHiFiGAN) with its duration predictor.

State-dict keys match the released checkpoints: ``dict``, ``spkr``, ``conv_pre``, ``ups.N``,
``resblocks.N.convs{1,2}.M``, ``conv_post``, ``dur_predictor.{conv1.0,ln1,conv2.0,ln2,proj}``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..config import DurPredictorParams, VocoderConfig
from .weightnorm import remove_weight_norm, weight_norm

LRELU_SLOPE = 0.1  # HiFi-GAN body slope; the activation before conv_post uses torch's default 0.01


def _padding(kernel: int, dilation: int = 1) -> int:
    return (kernel * dilation - dilation) // 2


class ResBlock(nn.Module):
    """HiFi-GAN residual block type 1: pairs (dilated conv, plain conv) with skip connections.

    Shapes: (B, C, T) -> (B, C, T).
    """

    def __init__(self, channels: int, kernel_size: int, dilations: list[int]):
        super().__init__()
        self.convs1 = nn.ModuleList(
            weight_norm(nn.Conv1d(channels, channels, kernel_size, 1, dilation=d, padding=_padding(kernel_size, d)))
            for d in dilations)
        self.convs2 = nn.ModuleList(
            weight_norm(nn.Conv1d(channels, channels, kernel_size, 1, dilation=1, padding=_padding(kernel_size)))
            for _ in dilations)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for c1, c2 in zip(self.convs1, self.convs2):
            xt = c2(F.leaky_relu(c1(F.leaky_relu(x, LRELU_SLOPE)), LRELU_SLOPE))
            x = xt + x
        return x


class DurationPredictor(nn.Module):
    """fairseq ``VariancePredictor``: (Conv1d, ReLU, LayerNorm, Dropout) x 2, Linear.

    Predicts log(duration + 1) per unit. Shapes: (B, T, C) -> (B, T).
    """

    def __init__(self, params: DurPredictorParams):
        super().__init__()
        k, h = params.var_pred_kernel_size, params.var_pred_hidden_dim
        # The original hard-codes padding=1 in conv2: (k - 1) // 2 is the same for k = 3 and right otherwise.
        self.conv1 = nn.Sequential(nn.Conv1d(params.encoder_embed_dim, h, k, padding=(k - 1) // 2), nn.ReLU())
        self.ln1 = nn.LayerNorm(h)
        self.conv2 = nn.Sequential(nn.Conv1d(h, h, k, padding=(k - 1) // 2), nn.ReLU())
        self.ln2 = nn.LayerNorm(h)
        self.dropout = nn.Dropout(params.var_pred_dropout)
        self.proj = nn.Linear(h, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.dropout(self.ln1(self.conv1(x.transpose(1, 2)).transpose(1, 2)))  # (B, T, H)
        x = self.dropout(self.ln2(self.conv2(x.transpose(1, 2)).transpose(1, 2)))  # (B, T, H)
        return self.proj(x).squeeze(2)  # (B, T)


def predicted_durations(log_dur: torch.Tensor) -> torch.Tensor:
    """Frames per unit from predicted log(d + 1): ``max(1, round(exp(x) - 1))`` (long)."""
    return torch.clamp(torch.round(torch.exp(log_dur) - 1).long(), min=1)


class UnitVocoder(nn.Module):
    """Speaker-conditioned unit-to-waveform generator (HiFi-GAN) with a duration predictor.

    Args:
        num_embeddings: unit vocabulary size.
        embedding_dim: unit embedding size (also the projected speaker size).
        upsample_rates, upsample_kernel_sizes, upsample_initial_channel: HiFi-GAN upsampling stack.
        resblock_kernel_sizes, resblock_dilation_sizes: parallel residual blocks per stage.
        speaker: ``"embedding"`` (Linear over an external vector of ``embedder_dim``), ``"id"``
            (table of ``num_speakers`` rows) or ``None``.
        dur_params: duration predictor sizes, or ``None`` for no predictor.
        f0: concatenate a continuous f0 track.
    """

    def __init__(self, num_embeddings: int, embedding_dim: int, upsample_rates: list[int],
                 upsample_kernel_sizes: list[int], upsample_initial_channel: int, resblock_kernel_sizes: list[int],
                 resblock_dilation_sizes: list[list[int]], speaker: str | None = "embedding", embedder_dim: int = 256,
                 num_speakers: int = 200, dur_params: DurPredictorParams | None = None, f0: bool = False):
        super().__init__()
        self.config: VocoderConfig | None = None
        self.step = 0  # training step of the loaded checkpoint (names synthesised files)
        self.hop = 1
        for r in upsample_rates:
            self.hop *= r
        self.dict = nn.Embedding(num_embeddings, embedding_dim)
        self.speaker = speaker
        if speaker == "embedding":
            self.spkr = nn.Linear(embedder_dim, embedding_dim)
        elif speaker == "id":
            self.spkr = nn.Embedding(num_speakers, embedding_dim)
        self.f0 = f0
        in_dim = embedding_dim * (2 if speaker else 1) + (1 if f0 else 0)
        self.dur_predictor = DurationPredictor(dur_params) if dur_params is not None else None
        self.num_kernels = len(resblock_kernel_sizes)
        ch = upsample_initial_channel
        self.conv_pre = weight_norm(nn.Conv1d(in_dim, ch, 7, 1, padding=3))
        self.ups = nn.ModuleList()
        self.resblocks = nn.ModuleList()
        for u, k in zip(upsample_rates, upsample_kernel_sizes):
            self.ups.append(weight_norm(nn.ConvTranspose1d(ch, ch // 2, k, u, padding=(k - u) // 2)))
            ch //= 2
            for rk, rd in zip(resblock_kernel_sizes, resblock_dilation_sizes):
                self.resblocks.append(ResBlock(ch, rk, rd))
        self.conv_post = weight_norm(nn.Conv1d(ch, 1, 7, 1, padding=3))

    @classmethod
    def from_config(cls, cfg: VocoderConfig) -> UnitVocoder:
        """Build the generator a (checked) ``VocoderConfig`` describes."""
        speaker = "embedding" if cfg.speaker_embedding else "id" if cfg.multispkr else None
        model = cls(cfg.num_embeddings, cfg.embedding_dim, cfg.upsample_rates, cfg.upsample_kernel_sizes,
                    cfg.upsample_initial_channel, cfg.resblock_kernel_sizes, cfg.resblock_dilation_sizes,
                    speaker=speaker, embedder_dim=cfg.embedder_dim, num_speakers=cfg.num_speakers,
                    dur_params=cfg.dur_predictor_params, f0=cfg.f0)
        model.config = cfg
        return model

    # ------------------------------------------------------------------ pieces
    def generate(self, x: torch.Tensor) -> torch.Tensor:
        """HiFi-GAN body. (B, model_in_dim, T) -> (B, 1, T * hop) in [-1, 1]."""
        x = self.conv_pre(x)
        for i, up in enumerate(self.ups):
            x = up(F.leaky_relu(x, LRELU_SLOPE))
            blocks = self.resblocks[i * self.num_kernels:(i + 1) * self.num_kernels]
            xs = blocks[0](x)
            for block in blocks[1:]:
                xs = xs + block(x)
            x = xs / self.num_kernels
        return torch.tanh(self.conv_post(F.leaky_relu(x)))  # default slope 0.01 here, as the original

    def speaker_features(self, spkr: torch.Tensor, frames: int) -> torch.Tensor:
        """Project the speaker and repeat it over time. spkr (B, 1, D) float or (B, 1) ids -> (B, E, frames)."""
        if self.speaker == "id":
            spkr = spkr.long().view(spkr.shape[0], 1)
        elif spkr.dim() == 2:
            spkr = spkr.unsqueeze(1)  # (B, D) -> (B, 1, D)
        s = self.spkr(spkr).transpose(1, 2)  # (B, E, 1)
        return s.expand(-1, -1, frames)

    def duration_loss(self, code: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        """MSE of predicted log-durations against log(run length + 1) over runs of equal units.

        The first and last run of a row are cut by the random segment, so they are dropped when
        a row has more than two runs. The kept runs' embeddings (at each run's first frame) are
        zero-padded to a batch, predicted together, and the loss is the mean over real runs.

        Args:
            code: (B, T) unit ids.
            emb: (B, T, C) their embeddings.
        """
        rows, targets = [], []
        for b in range(code.shape[0]):
            _, counts = torch.unique_consecutive(code[b], return_counts=True)
            starts = torch.cumsum(counts, 0) - counts
            if counts.numel() > 2:
                starts, counts = starts[1:-1], counts[1:-1]
            rows.append(emb[b, starts])  # (N_b, C)
            targets.append(torch.log(counts.to(emb.dtype) + 1))
        longest = max(r.shape[0] for r in rows)
        batch = torch.stack([F.pad(r, (0, 0, 0, longest - r.shape[0])) for r in rows])  # (B, N, C), zero-padded
        log_dur = self.dur_predictor(batch)  # (B, N)
        preds = torch.cat([log_dur[b, :t.numel()] for b, t in enumerate(targets)])
        return F.mse_loss(preds, torch.cat(targets))

    # ------------------------------------------------------------------ forward
    def forward(self, code: torch.Tensor, spkr: torch.Tensor | None = None, dur_prediction: bool = False,
                f0: torch.Tensor | None = None):
        """Units to waveform.

        Args:
            code: (B, T) unit ids.
            spkr: (B, 1, embedder_dim) speaker embedding, or (B, 1) speaker ids; required when conditioned.
            dur_prediction: expand each unit by its predicted duration first (B must be 1).
            f0: (B, T_f0) f0 track for f0-conditioned configs.

        Returns:
            train mode: ``(wav (B, 1, T * hop), duration_loss)`` (loss ``None`` without a predictor);
            ``dur_prediction``: ``(wav, expanded_codes (T',))``; otherwise ``(wav, code)``.
        """
        emb = self.dict(code)  # (B, T, C)
        out_codes = code
        dur_loss = None
        if self.training and self.dur_predictor is not None:
            dur_loss = self.duration_loss(code, emb)
        elif dur_prediction:
            if self.dur_predictor is None:
                raise ValueError("this vocoder has no duration predictor (dur_predictor_params is unset)")
            if code.shape[0] != 1:
                raise ValueError("dur_prediction supports a single sequence (batch size 1)")
            dur = predicted_durations(self.dur_predictor(emb)).view(-1)  # (T,)
            emb = torch.repeat_interleave(emb, dur, dim=1)  # (1, T', C)
            out_codes = torch.repeat_interleave(code.view(-1), dur)
        x = emb.transpose(1, 2)  # (B, C, T')
        if self.f0:
            if f0 is None:
                raise ValueError("this vocoder is f0-conditioned: pass f0")
            x = torch.cat([x, _match_length(f0.unsqueeze(1).to(x.dtype), x.shape[-1])], dim=1)
        if self.speaker is not None:
            if spkr is None:
                raise ValueError("this vocoder is speaker-conditioned: pass spkr")
            x = torch.cat([x, self.speaker_features(spkr.to(x.device), x.shape[-1]).to(x.dtype)], dim=1)
        wav = self.generate(x)
        if self.training:
            return wav, dur_loss
        return wav, out_codes

    def remove_weight_norm(self) -> UnitVocoder:
        """Fold weight norm into plain weights (inference); safe to call twice."""
        return remove_weight_norm(self)


def _match_length(feat: torch.Tensor, frames: int) -> torch.Tensor:
    """Repeat a (B, C, t) track so it spans ``frames`` (frames must be a multiple of t)."""
    t = feat.shape[-1]
    if t == frames:
        return feat
    if frames % t:
        raise ValueError(f"cannot align a feature of {t} frames to {frames} frames")
    return feat.repeat_interleave(frames // t, dim=2)
