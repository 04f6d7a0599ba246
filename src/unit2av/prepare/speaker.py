"""GE2E speaker encoder (Resemblyzer / Real-Time-Voice-Cloning definition).

A 3-layer LSTM (40 -> 256) reads 40-band mel power frames (16 kHz, 25 ms window, 10 ms
hop); the last layer's final hidden state goes through Linear(256, 256) + ReLU and is
L2-normalised. An utterance is cut into partials of 160 frames (1.6 s) overlapping by
50 %; their embeddings are averaged and L2-normalised again.

Weights: by default Resemblyzer's pretrained GE2E weights, shipped in this package
(``assets/ge2e_resemblyzer.bin``, Apache 2.0, see ``assets/GE2E_WEIGHTS.md``; the same bits as
the ``pretrained.pt`` inside the ``resemblyzer`` package, which is not needed).
Resemblyzer ``pretrained.pt``, Real-Time-Voice-Cloning ``encoder.pt`` files
(``{"model_state": sd}``) and bare state dicts load too; all through
``unit2av.io.safe.load_torch`` (weights only).

Preprocessing follows Resemblyzer: volume normalised to -30 dBFS (increase only) and long
silences trimmed; the trim uses a simple frame-energy detector instead of webrtcvad. That
preprocessing, the partial layout and ``cosine_similarity`` live in ``prepare.speaker_audio``; here
are the network, its weights and ``embed_files``.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..devices import resolve_device
from ..errors import Unit2AVError, fail
from ..io.audio import load_audio, resample
from ..io.packed import read_packed_state
from ..io.safe import load_torch, save_torch
from ..spectral import mel_filterbank
from .speaker_audio import (
    EPS,
    PARTIAL_FRAMES,
    SAMPLE_RATE,
    TARGET_DBFS,
    normalize_volume,
    partial_starts,
    trim_long_silences,
)

log = logging.getLogger(__name__)

MEL_WINDOW_MS = 25  # STFT window (and n_fft) in milliseconds -> 400 samples
MEL_STEP_MS = 10  # STFT hop in milliseconds -> 160 samples
MEL_CHANNELS = 40  # mel bands


DEFAULT_WEIGHTS = "ge2e_resemblyzer.bin"  # Resemblyzer's pretrained.pt tensors, packed (unit2av.io.packed)


def default_weights() -> Path:
    """Path of the bundled GE2E weights (Resemblyzer's, see ``assets/GE2E_WEIGHTS.md``)."""
    from importlib import resources

    return Path(str(resources.files("unit2av.assets").joinpath(DEFAULT_WEIGHTS)))


def resemblyzer_weights() -> Path:
    """Path of the ``pretrained.pt`` inside an installed ``resemblyzer`` package (not needed: see ``default_weights``).

    Raises:
        Unit2AVError: the package is not installed (or ships no weights).
    """
    spec = importlib.util.find_spec("resemblyzer")
    if spec is None or not spec.submodule_search_locations:
        raise fail(None, "the resemblyzer package is not installed (unit2av ships its weights: SpeakerEncoder.load())")
    path = Path(next(iter(spec.submodule_search_locations))) / "pretrained.pt"
    if not path.is_file():
        raise fail(path, "the installed resemblyzer package ships no pretrained.pt")
    return path


class SpeakerEncoder(nn.Module):
    """GE2E speaker encoder.

    Args:
        mel_channels: input mel bands.
        hidden_size: LSTM units per layer.
        num_layers: stacked LSTM layers.
        embedding_size: output size.
        sample_rate: audio rate of the mel front end.

    Shapes:
        ``forward``: mels ``(B, frames, mel_channels)`` -> ``(B, embedding_size)``, unit norm.
    """

    def __init__(
        self,
        mel_channels: int = MEL_CHANNELS,
        hidden_size: int = 256,
        num_layers: int = 3,
        embedding_size: int = 256,
        sample_rate: int = SAMPLE_RATE,
    ):
        super().__init__()
        self.sample_rate = sample_rate
        self.n_fft = sample_rate * MEL_WINDOW_MS // 1000
        self.hop = sample_rate * MEL_STEP_MS // 1000
        self.lstm = nn.LSTM(mel_channels, hidden_size, num_layers=num_layers, batch_first=True)
        self.linear = nn.Linear(hidden_size, embedding_size)
        # GE2E loss scale and bias: unused for embedding, kept so training checkpoints load strictly
        self.similarity_weight = nn.Parameter(torch.tensor([10.0]))
        self.similarity_bias = nn.Parameter(torch.tensor([-5.0]))
        fb = mel_filterbank(sample_rate, self.n_fft, mel_channels)  # (mels, n_fft // 2 + 1), slaney
        self.register_buffer("mel_basis", torch.from_numpy(fb), persistent=False)
        self.register_buffer("window", torch.hann_window(self.n_fft), persistent=False)

    @property
    def embedding_size(self) -> int:
        return self.linear.out_features

    def forward(self, mels: torch.Tensor) -> torch.Tensor:
        _, (hidden, _) = self.lstm(mels)  # hidden: (num_layers, B, hidden)
        embeds = F.relu(self.linear(hidden[-1]))  # (B, embedding)
        return embeds / (embeds.norm(dim=1, keepdim=True) + EPS)

    def mel_frames(self, wav: torch.Tensor) -> torch.Tensor:
        """Mel power frames as librosa's default ``melspectrogram`` (centred, zero-padded STFT).

        Args:
            wav: ``(T,)`` float waveform at ``sample_rate``.

        Returns:
            ``(1 + T // hop, mel_channels)``.
        """
        spec = torch.stft(
            wav,
            self.n_fft,
            hop_length=self.hop,
            win_length=self.n_fft,
            window=self.window,
            center=True,
            pad_mode="constant",
            return_complex=True,
        )  # (F, frames)
        power = spec.real.pow(2) + spec.imag.pow(2)
        return (self.mel_basis @ power).T  # (frames, mels)

    def embed_segments(self, wavs: torch.Tensor) -> torch.Tensor:
        """Differentiable embeddings of equal-length segments (for training losses).

        Each segment is volume-normalised like ``embed`` (raised to -30 dBFS, never lowered) and
        embedded whole as one partial; no silence trimming.

        Args:
            wavs: ``(B, T)`` float at ``sample_rate``.

        Returns:
            ``(B, embedding_size)``, unit norm; gradients flow to ``wavs``.
        """
        rms = wavs.float().pow(2).mean(dim=1, keepdim=True).clamp_min(EPS).sqrt()
        gain = (10.0 ** (TARGET_DBFS / 20.0) / rms).clamp_min(1.0)
        mels = torch.stack([self.mel_frames(w) for w in wavs.float() * gain])  # (B, frames, mels)
        return self(mels)

    def preprocess(self, wav: np.ndarray, sample_rate: int) -> np.ndarray:
        """Mono float32 at ``self.sample_rate``, volume-normalised, long silences trimmed."""
        wav = np.asarray(wav, dtype=np.float32)
        if wav.ndim == 2:  # (T, C) or (C, T): mix to mono along the short axis
            wav = wav.mean(axis=int(np.argmin(wav.shape)))
        if wav.ndim != 1 or wav.size == 0:
            raise Unit2AVError(f"speaker encoder: expected a non-empty 1-D waveform, got shape {wav.shape}")
        if not np.all(np.isfinite(wav)):
            raise Unit2AVError("speaker encoder: waveform contains NaN or infinite samples")
        if not np.any(wav):
            raise Unit2AVError("speaker encoder: the audio is silent (all samples are zero)")
        wav = resample(wav, int(sample_rate), self.sample_rate)
        wav = normalize_volume(wav)
        return trim_long_silences(wav, self.sample_rate)

    @torch.no_grad()
    def embed(self, wav: np.ndarray, sample_rate: int) -> np.ndarray:
        """Utterance embedding.

        Args:
            wav: ``(T,)`` waveform in [-1, 1] (``(T, C)`` is mixed to mono).
            sample_rate: its rate (resampled to 16 kHz).

        Returns:
            ``(embedding_size,)`` float32, L2-normalised.
        """
        wav = self.preprocess(wav, sample_rate)
        starts = partial_starts(len(wav) // self.hop + 1)
        needed = (starts[-1] + PARTIAL_FRAMES) * self.hop  # samples covering the last partial
        wav = np.pad(wav, (0, max(0, needed - len(wav))))
        device = self.linear.weight.device
        with _cpu_threads(1 if device.type == "cpu" else None):
            mels = self.mel_frames(torch.from_numpy(wav).to(device))  # (frames, mels)
            batch = torch.stack([mels[s : s + PARTIAL_FRAMES] for s in starts])  # (partials, 160, mels)
            partials = self(batch)  # (partials, embedding)
        mean = partials.mean(dim=0)
        return (mean / (mean.norm() + EPS)).cpu().numpy().astype(np.float32)

    def embed_file(self, path: str | os.PathLike) -> np.ndarray:
        """Embedding of an audio file or of a video's audio track (``(embedding_size,)`` float32)."""
        wav, sr = load_audio(path, self.sample_rate)
        try:
            return self.embed(wav, sr)
        except Unit2AVError as e:
            raise fail(path, str(e)) from e

    @classmethod
    def load(cls, path: str | os.PathLike | None = None, device: str | torch.device = "cpu") -> SpeakerEncoder:
        """Build an encoder and load weights (eval mode).

        Args:
            path: Resemblyzer ``pretrained.pt``, RTVC ``encoder.pt`` (``{"model_state": sd}``)
                or a bare state dict; ``None`` = Resemblyzer's weights, bundled (``default_weights``).
            device: ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"`` ...

        Raises:
            Unit2AVError: missing weights, or a file that is not a GE2E encoder.
        """
        if path is None:
            path = default_weights()
            obj = read_packed_state(path)
        else:
            path = Path(path)
            obj = load_torch(path, what="speaker encoder")
        sd = obj.get("model_state", obj) if isinstance(obj, dict) else None
        if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
            raise fail(path, "not a speaker-encoder state dict (expected {'model_state': {...}} or tensors)")
        sd = {k.removeprefix("module."): v for k, v in sd.items()}
        if "lstm.weight_ih_l0" not in sd or "linear.weight" not in sd:
            raise fail(path, "not a GE2E speaker encoder: keys lstm.weight_ih_l0 / linear.weight missing")
        hidden = sd["lstm.weight_hh_l0"].shape[1] if "lstm.weight_hh_l0" in sd else 0
        layers = len([k for k in sd if k.startswith("lstm.weight_ih_l")])
        model = cls(
            mel_channels=sd["lstm.weight_ih_l0"].shape[1],
            hidden_size=hidden,
            num_layers=layers,
            embedding_size=sd["linear.weight"].shape[0],
        )
        try:
            missing, unexpected = model.load_state_dict(sd, strict=False)
        except RuntimeError as e:  # shape mismatch
            raise fail(path, f"speaker encoder weights do not fit: {str(e).splitlines()[-1].strip()}") from e
        missing = [k for k in missing if not k.startswith("similarity_")]
        if missing or unexpected:
            raise fail(path, f"speaker encoder keys do not fit: missing {missing[:3]}, unexpected {unexpected[:3]}")
        log.debug("speaker encoder %s: %d layers x %d units", path, layers, hidden)
        return model.to(resolve_device(device)).eval()


def embed_files(
    inputs: list[str | os.PathLike], out_dir: str | os.PathLike, encoder: SpeakerEncoder, progress: bool = True
) -> list[Path]:
    """Write ``<out_dir>/<stem>.pt`` = FloatTensor (256,) for each audio or video file.

    Args:
        inputs: files, or folders searched recursively for audio/video files.
        out_dir: output folder.
        encoder: a loaded ``SpeakerEncoder``.
        progress: show a tqdm bar.

    Raises:
        Unit2AVError: a missing input, unreadable audio, two inputs with the same stem.
    """
    from tqdm import tqdm

    from ..io.audio import find_audio_files

    files: list[Path] = []
    for item in map(Path, inputs):
        if item.is_dir():
            files.extend(find_audio_files(item))
        elif item.is_file():
            files.append(item)
        else:
            raise fail(item, "input not found")
    outs = [Path(out_dir) / f"{f.stem}.pt" for f in files]
    seen: dict[Path, Path] = {}
    for f, o in zip(files, outs):
        if o in seen:
            raise fail(f, f"same output name {o.name} as {seen[o]}; embed them into different folders")
        seen[o] = f
    for f, o in tqdm(list(zip(files, outs)), desc="speaker", unit="file", disable=not progress):
        save_torch(torch.from_numpy(encoder.embed_file(f)).float(), o)
    return outs


@contextlib.contextmanager
def _cpu_threads(n: int | None):
    """Run the block with ``n`` torch CPU threads (``None``: unchanged), then restore.

    The LSTM over a few partials is a chain of tiny matrix products: extra threads only
    add synchronisation, and on a busy machine they made one embedding 50x slower.
    """
    old = torch.get_num_threads()
    if n is None or n == old:
        yield
        return
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


__all__ = [
    "SpeakerEncoder",
    "default_weights",
    "embed_files",
    "resemblyzer_weights",
]
