"""Unit/audio training data: speech-resynthesis ``CodeDataset`` behaviour, without its defects.

Each item is an utterance's codes aligned to its audio by ``code_hop_size`` (both trimmed
to the shorter), clips shorter than ``segment_size`` repeated, a random aligned segment of
``segment_size`` samples (``segment_size / code_hop_size`` codes), the log-mel target
(``fmax_for_loss``) and the speaker (the unit file's ``spkr`` embedding, or an ID from a
speaker table for ID-based configs). Validation items are whole utterances (no random crop),
so the validation error is comparable between checkpoints.
"""

from __future__ import annotations

import logging
import random
from collections import OrderedDict
from collections.abc import Iterator

import numpy as np
import torch
from torch.utils.data import Dataset, DistributedSampler

from ..errors import fail
from ..io.audio import load_audio
from ..io.units import load_unit_file
from ..spectral import mel_for_config
from .config import VocoderConfig
from .manifest import ManifestEntry

log = logging.getLogger(__name__)

PEAK = 0.95  # audio is peak-normalised to this amplitude, as speech-resynthesis does
CACHE_MB = 256  # default decoded-audio cache per data-loader worker, in MiB
MISMATCH_WARN = 0.1  # warn when codes and audio lengths differ by more than this fraction


def speaker_table(entries: list[ManifestEntry]) -> dict[str, int]:
    """Speaker name -> ID (sorted names), for configs with a speaker ID table."""
    return {name: i for i, name in enumerate(sorted({e.speaker for e in entries}))}


class _LRU:
    """A small least-recently-used cache bounded by total bytes (one per worker process)."""

    def __init__(self, max_bytes: int):
        self.max_bytes, self.bytes, self.items = max_bytes, 0, OrderedDict()

    def get(self, key):
        if key in self.items:
            self.items.move_to_end(key)
            return self.items[key][0]
        return None

    def put(self, key, value, nbytes: int) -> None:
        if nbytes > self.max_bytes:
            return
        self.items[key] = (value, nbytes)
        self.bytes += nbytes
        while self.bytes > self.max_bytes:
            _, (_, n) = self.items.popitem(last=False)
            self.bytes -= n


class UnitAudioDataset(Dataset):
    """Aligned (codes, audio, mel, speaker) items from a manifest.

    Args:
        entries: manifest entries (``unit2av.vocoder.manifest.read_manifest``).
        cfg: the vocoder config (sampling_rate, code_hop_size, segment_size, mel keys, speaker keys).
        segment: ``True`` for random training crops of ``cfg.segment_size`` samples;
            ``False`` for whole utterances (validation).
        speakers: speaker name -> ID table for ID-based configs (default: built from ``entries``).
        cache_mb: decoded audio/units kept per worker, in MiB.

    Items (``__getitem__(index)`` or ``__getitem__((index, crop_seed))``) are dicts:
        ``code`` LongTensor (S,), ``audio`` FloatTensor (S * code_hop_size,), ``mel``
        FloatTensor (num_mels, frames), ``spkr`` FloatTensor (1, embedder_dim) or LongTensor (1,)
        (absent for single-speaker configs), ``name`` str.
    """

    def __init__(
        self,
        entries: list[ManifestEntry],
        cfg: VocoderConfig,
        segment: bool = True,
        speakers: dict[str, int] | None = None,
        cache_mb: float = CACHE_MB,
    ):
        if not entries:
            raise fail(None, "the manifest has no entries")
        self.entries, self.cfg, self.segment = entries, cfg, segment
        self.hop = cfg.code_hop_size
        self.segment_codes = cfg.segment_size // cfg.code_hop_size
        self.use_embedding = bool(cfg.embedder_params)
        self.use_ids = bool(cfg.multispkr) and not self.use_embedding
        self.speakers = speakers if speakers is not None else (speaker_table(entries) if self.use_ids else None)
        self.mel = mel_for_config(cfg, for_loss=True)
        self._cache = _LRU(int(cache_mb * 2**20))
        self._rng = random.Random(cfg.seed)

    def __len__(self) -> int:
        return len(self.entries)

    # ------------------------------------------------------------------ loading
    def _load_units(self, entry: ManifestEntry) -> tuple[np.ndarray, torch.Tensor | None]:
        """Codes (T,) int64 and the unit file's ``spkr`` (or None)."""
        spkr = None
        if entry.unit_path is None:
            codes = entry.codes
        else:
            units = load_unit_file(entry.unit_path)
            codes, spkr = units.code.numpy(), units.spkr
        if codes.size == 0:
            raise fail(entry.unit_path or entry.audio, "empty code sequence")
        if codes.min() < 0 or codes.max() >= self.cfg.num_embeddings:
            raise fail(
                entry.unit_path or entry.audio,
                f"unit ids must lie in [0, {self.cfg.num_embeddings}), found {int(codes.min())}..{int(codes.max())}",
            )
        return codes, spkr

    def _speaker(self, entry: ManifestEntry, spkr) -> torch.Tensor | None:
        """The speaker input: embedding (1, embedder_dim) float, ID (1,) long, or None."""
        if self.use_embedding:
            if spkr is None:
                raise fail(
                    entry.unit_path or entry.audio,
                    "the config needs a speaker embedding but the unit file has no 'spkr'",
                )
            spkr = torch.as_tensor(spkr, dtype=torch.float32).reshape(-1)
            if spkr.numel() != self.cfg.embedder_dim:
                raise fail(
                    entry.unit_path,
                    f"'spkr' has {spkr.numel()} values, the config's embedder_dim is {self.cfg.embedder_dim}",
                )
            return spkr.view(1, -1)
        if self.use_ids:
            if entry.speaker not in self.speakers:
                raise fail(entry.audio, f"speaker {entry.speaker!r} is not in the training speaker table")
            return torch.tensor([self.speakers[entry.speaker]], dtype=torch.long)
        return None

    def _load(self, index: int) -> tuple[np.ndarray, np.ndarray, torch.Tensor | None]:
        """Aligned (audio (n * hop,), codes (n,), speaker) of one utterance, cached."""
        hit = self._cache.get(index)
        if hit is not None:
            return hit
        entry = self.entries[index]
        codes, spkr = self._load_units(entry)
        audio, _ = load_audio(entry.audio, self.cfg.sampling_rate)
        peak = float(np.abs(audio).max())
        if peak > 0:
            audio = audio * (PEAK / peak)
        n_audio = len(audio) // self.hop
        if abs(n_audio - len(codes)) > MISMATCH_WARN * max(n_audio, len(codes)):
            log.warning(
                "%s: %d codes but audio for %d (code_hop_size %d): check the unit rate",
                entry.unit_path or entry.audio,
                len(codes),
                n_audio,
                self.hop,
            )
        n = min(n_audio, len(codes))
        if n == 0:
            raise fail(entry.audio, f"audio shorter than one unit ({self.hop} samples)")
        item = (
            np.ascontiguousarray(audio[: n * self.hop], dtype=np.float32),
            codes[:n].copy(),
            self._speaker(entry, spkr),
        )
        self._cache.put(index, item, item[0].nbytes + item[1].nbytes)
        return item

    # ------------------------------------------------------------------ items
    def __getitem__(self, key) -> dict:
        index, crop_seed = key if isinstance(key, tuple) else (key, None)
        audio, codes, spkr = self._load(index)
        if self.segment:
            if len(codes) < self.segment_codes:  # short clip: repeat it
                reps = -(-self.segment_codes // len(codes))
                audio, codes = np.tile(audio, reps), np.tile(codes, reps)
            rng = self._rng if crop_seed is None else random.Random(crop_seed)
            start = rng.randint(0, len(codes) - self.segment_codes)
            codes = codes[start : start + self.segment_codes]
            audio = audio[start * self.hop : (start + self.segment_codes) * self.hop]
        audio_t = torch.from_numpy(np.array(audio, dtype=np.float32))
        with torch.no_grad():
            mel = self.mel(audio_t.unsqueeze(0)).squeeze(0)  # (num_mels, frames)
        item = {
            "code": torch.from_numpy(np.array(codes, dtype=np.int64)),
            "audio": audio_t,
            "mel": mel,
            "name": str(self.entries[index].audio),
        }
        if spkr is not None:
            item["spkr"] = spkr
        return item


class SegmentSampler(DistributedSampler):
    """``DistributedSampler`` that shuffles on one process too, resumes mid-epoch, and seeds crops.

    Yields ``(index, crop_seed)``: the crop of an item depends only on (seed, epoch, index),
    not on worker processes or restarts, so a resumed run sees the same data.

    Args:
        dataset: the dataset.
        num_replicas / rank: DDP world size and this process's rank (1 / 0 on one process).
        seed: shuffling and crop seed (the config's ``seed``).
        shuffle: shuffle every epoch (``set_epoch``).
    """

    def __init__(self, dataset: Dataset, num_replicas: int = 1, rank: int = 0, seed: int = 0, shuffle: bool = True):
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=shuffle, seed=seed, drop_last=False)
        self.skip = 0

    def set_position(self, epoch: int, skip: int) -> None:
        """Start at ``epoch``, skipping this process's first ``skip`` samples (for resuming)."""
        self.set_epoch(epoch)
        self.skip = skip

    def __iter__(self) -> Iterator[tuple[int, int]]:
        indices = list(super().__iter__())[self.skip :]
        self.skip = 0
        base = (self.seed * 1_000_003 + self.epoch) * 1_000_003
        return iter([(i, base + i) for i in indices])

    def __len__(self) -> int:
        return max(0, self.num_samples - self.skip)


__all__ = ["SegmentSampler", "UnitAudioDataset", "speaker_table"]
