"""UnitVocoder: fairseq's ``CodeGenerator`` (speaker-conditioned CodeHiFiGAN) with its duration predictor.

State-dict keys match the released checkpoints: ``dict``, ``spkr``, ``conv_pre``, ``ups.N``,
``resblocks.N.convs{1,2}.M``, ``conv_post``, ``dur_predictor.{conv1.0,ln1,conv2.0,ln2,proj}``.
The building blocks (residual block, duration and f0 predictors) are in ``vocoder.layers``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..timing import SAMPLE_RATE
from ..weightnorm import remove_weight_norm, weight_norm
from .config import DurPredictorParams, VocoderConfig
from .layers import LRELU_SLOPE, DurationPredictor, F0Predictor, ResBlock, fit_length, predicted_durations

SOURCE_PARTS = ("f0_predictor.", "source_merge.", "source_downs.")  # parameters only f0_source models have


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
        f0_source: ours, off in every original config: add a harmonic (NSF-style) excitation at an f0
            the model predicts from units and speaker (``F0Predictor``) to every upsampling stage.
            Training passes the real f0 (``unit2av.io.audio.frame_f0``) and the predictor learns it;
            inference predicts it. Small generators trained briefly get low voices' pitch right this way.
        source_harmonics: harmonics of that excitation.
    """

    def __init__(
        self,
        num_embeddings: int,
        embedding_dim: int,
        upsample_rates: list[int],
        upsample_kernel_sizes: list[int],
        upsample_initial_channel: int,
        resblock_kernel_sizes: list[int],
        resblock_dilation_sizes: list[list[int]],
        speaker: str | None = "embedding",
        embedder_dim: int = 256,
        num_speakers: int = 200,
        dur_params: DurPredictorParams | None = None,
        f0: bool = False,
        f0_source: bool = False,
        source_harmonics: int = 8,
        sampling_rate: int = SAMPLE_RATE,
    ):
        super().__init__()
        self.config: VocoderConfig | None = None
        self.step = 0  # training step of the loaded checkpoint (names synthesised files)
        self.hop = math.prod(upsample_rates)  # samples per unit: the one definition (= code_hop_size)
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
        self.f0_source = f0_source
        self.sampling_rate = sampling_rate
        self.last_f0_loss: torch.Tensor | None = None  # set by a training forward of an f0_source model
        if f0_source:
            if f0:
                raise ValueError("f0 and f0_source exclude each other")
            self.f0_predictor = F0Predictor(in_dim)
            self.source_merge = nn.Linear(source_harmonics, 1)
            self.source_downs = nn.ModuleList()
            ch, hop = upsample_initial_channel, self.hop
            for u in upsample_rates:
                ch, hop = ch // 2, hop // u  # channels and remaining upsampling after this stage
                self.source_downs.append(nn.Conv1d(1, ch, 2 * hop if hop > 1 else 1, hop, padding=hop // 2))

    @classmethod
    def from_config(cls, cfg: VocoderConfig) -> UnitVocoder:
        """Build the generator a (checked) ``VocoderConfig`` describes."""
        speaker = "embedding" if cfg.speaker_embedding else "id" if cfg.multispkr else None
        model = cls(
            cfg.num_embeddings,
            cfg.embedding_dim,
            cfg.upsample_rates,
            cfg.upsample_kernel_sizes,
            cfg.upsample_initial_channel,
            cfg.resblock_kernel_sizes,
            cfg.resblock_dilation_sizes,
            speaker=speaker,
            embedder_dim=cfg.embedder_dim,
            num_speakers=cfg.num_speakers,
            dur_params=cfg.dur_predictor_params,
            f0=cfg.f0,
            f0_source=cfg.f0_source,
            sampling_rate=cfg.sampling_rate,
        )
        model.config = cfg
        return model

    # ------------------------------------------------------------------ pieces
    def generate(self, x: torch.Tensor, source: torch.Tensor | None = None) -> torch.Tensor:
        """HiFi-GAN body. (B, model_in_dim, T) [+ excitation (B, 1, T * hop)] -> (B, 1, T * hop) in [-1, 1]."""
        x = self.conv_pre(x)
        for i, up in enumerate(self.ups):
            x = up(F.leaky_relu(x, LRELU_SLOPE))
            if source is not None:
                x = x + fit_length(self.source_downs[i](source), x.shape[-1])
            blocks = self.resblocks[i * self.num_kernels : (i + 1) * self.num_kernels]
            xs = blocks[0](x)
            for block in blocks[1:]:
                xs = xs + block(x)
            x = xs / self.num_kernels
        return torch.tanh(self.conv_post(F.leaky_relu(x)))  # default slope 0.01 here, as the original

    def excitation(self, f0: torch.Tensor) -> torch.Tensor:
        """Harmonic excitation for frame-level f0 (B, T) in Hz (0 = unvoiced) -> (B, 1, T * hop).

        Sines at the first harmonics of f0 (those below Nyquist), merged by a learned layer, zero
        in unvoiced frames; phase is continuous and deterministic (starts at 0).
        """
        f = f0.float().unsqueeze(-1).expand(-1, -1, self.hop).flatten(1)  # (B, T * hop), exportable
        phase = torch.cumsum(f.double() / self.sampling_rate, dim=-1)
        phase = (2 * math.pi * torch.remainder(phase, 1.0)).float()
        k = torch.arange(1, self.source_merge.in_features + 1, device=f.device, dtype=f.dtype)
        below = (f.unsqueeze(-1) * k < self.sampling_rate / 2).to(f.dtype)  # no aliased harmonics
        harmonics = torch.sin(phase.unsqueeze(-1) * k) * below * (f > 0).unsqueeze(-1).to(f.dtype)
        return torch.tanh(self.source_merge(harmonics.to(self.source_merge.weight.dtype))).transpose(1, 2)

    def predict_f0(self, x: torch.Tensor) -> torch.Tensor:
        """Frame-level f0 (B, T) in Hz, 0 where unvoiced, from the body's input x (B, model_in_dim, T)."""
        out = self.f0_predictor(x.detach()).float()
        return torch.where(out[:, 1] > 0, torch.exp(out[:, 0]), torch.zeros_like(out[:, 0]))

    def f0_loss(self, x: torch.Tensor, f0: torch.Tensor) -> torch.Tensor:
        """Predictor loss against a real f0 track (B, T) Hz: log-f0 MSE on voiced frames + voicing BCE."""
        out = self.f0_predictor(x.detach()).float()
        voiced = f0 > 0
        bce = F.binary_cross_entropy_with_logits(out[:, 1], voiced.float())
        if not voiced.any():
            return bce
        return F.mse_loss(out[:, 0][voiced], torch.log(f0[voiced].float())) + bce

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
        preds = torch.cat([log_dur[b, : t.numel()] for b, t in enumerate(targets)])
        return F.mse_loss(preds, torch.cat(targets))

    # ------------------------------------------------------------------ forward
    def expand_durations(
        self, code: torch.Tensor, emb: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Repeat each unit (and its embedding) by its predicted duration: the one duration expansion.

        Args:
            code: (1, T) unit ids.
            emb: (1, T, C) their embeddings (``self.dict(code)`` when None).

        Returns:
            ``(emb (1, T', C), codes (T',))``, T' = the sum of the durations (each >= 1).
        """
        if self.dur_predictor is None:
            raise ValueError("this vocoder has no duration predictor (dur_predictor_params is unset)")
        if code.shape[0] != 1:
            raise ValueError("dur_prediction supports a single sequence (batch size 1)")
        emb = self.dict(code) if emb is None else emb
        dur = predicted_durations(self.dur_predictor(emb)).view(-1)  # (T,)
        return torch.repeat_interleave(emb, dur, dim=1), torch.repeat_interleave(code.view(-1), dur)

    def forward(
        self,
        code: torch.Tensor,
        spkr: torch.Tensor | None = None,
        dur_prediction: bool = False,
        f0: torch.Tensor | None = None,
    ):
        """Units to waveform.

        Args:
            code: (B, T) unit ids.
            spkr: (B, 1, embedder_dim) speaker embedding, or (B, 1) speaker ids; required when conditioned.
            dur_prediction: expand each unit by its predicted duration first (B must be 1).
            f0: (B, T_f0) f0 track for f0-conditioned configs; for ``f0_source`` models an optional
                frame-level f0 (B, T) in Hz (0 = unvoiced) that replaces the predicted one (training
                passes the real f0; a training forward then also sets ``last_f0_loss``).

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
            emb, out_codes = self.expand_durations(code, emb)  # (1, T', C), (T',)
        x = emb.transpose(1, 2)  # (B, C, T')
        if self.f0:
            if f0 is None:
                raise ValueError("this vocoder is f0-conditioned: pass f0")
            x = torch.cat([x, _match_length(f0.unsqueeze(1).to(x.dtype), x.shape[-1])], dim=1)
        if self.speaker is not None:
            if spkr is None:
                raise ValueError("this vocoder is speaker-conditioned: pass spkr")
            x = torch.cat([x, self.speaker_features(spkr.to(x.device), x.shape[-1]).to(x.dtype)], dim=1)
        source = None
        if self.f0_source:
            if f0 is None:
                f0 = self.predict_f0(x)
            else:
                f0 = fit_length(f0.to(x.device).unsqueeze(1), x.shape[-1]).squeeze(1)
                if self.training:
                    self.last_f0_loss = self.f0_loss(x, f0)
            source = self.excitation(f0)
        wav = self.generate(x, source)
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
