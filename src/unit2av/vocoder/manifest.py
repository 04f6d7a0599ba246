"""Training manifests: build them from unit files + audio, read ours and the legacy formats.

Our format is JSON lines, one utterance a line::

    {"audio": "A/113/113_003_0012.wav", "unit_path": "U/113_003_0012.pt", "speaker": "113", "duration": 3.2}

``read_manifest`` also reads the legacy speech-resynthesis / NetfLips lines: python-dict
lines (single quotes) with ``audio`` and ``unit_path``, or with inline codes under
``hubert`` / ``codes`` / ``cpc_km100`` / ``vqvae256`` (a string of space-separated ints or
a list). Lines are parsed with ``json`` and then ``ast.literal_eval``; never ``eval``.
"""

from __future__ import annotations

import ast
import json
import logging
import os
import random
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf
from tqdm import tqdm

from ..errors import fail
from ..io.safe import write_bytes_atomic

log = logging.getLogger(__name__)

# Keys of legacy manifests that carry the codes inline, in the order they are tried.
INLINE_CODE_KEYS = ("hubert", "codes", "cpc_km100", "vqvae256", "code")
# Audio extensions tried when looking for an utterance's audio, in order.
AUDIO_EXTENSIONS = (".wav", ".flac")


@dataclass
class ManifestEntry:
    """One utterance of a manifest.

    Attributes:
        audio: path of the audio file.
        unit_path: path of the ``.pt`` unit file (``None`` when the codes are inline).
        codes: inline codes ``(T,)`` int64 (``None`` when they live in ``unit_path``).
        speaker: speaker id (default: the first ``_`` token of the audio file name).
        duration: audio duration in seconds (``None`` if unknown).
    """

    audio: str
    unit_path: str | None = None
    codes: np.ndarray | None = field(default=None, repr=False)
    speaker: str | None = None
    duration: float | None = None

    def __post_init__(self) -> None:
        if self.speaker is None:
            self.speaker = speaker_of(self.audio)

    def to_json(self) -> str:
        """The entry as one line of our JSON-lines format."""
        d: dict = {"audio": str(self.audio)}
        if self.unit_path is not None:
            d["unit_path"] = str(self.unit_path)
        else:
            d["codes"] = " ".join(str(int(c)) for c in self.codes)
        d["speaker"] = self.speaker
        if self.duration is not None:
            d["duration"] = round(float(self.duration), 4)
        return json.dumps(d, ensure_ascii=False)


def speaker_of(path: str | os.PathLike) -> str:
    """Speaker id of a zeroth-style utterance file: the first ``_`` token of its name."""
    return Path(path).name.split("_")[0]


# ----------------------------------------------------------------------------- reading
def _parse_line(text: str, path: Path, lineno: int) -> dict:
    """Parse one manifest line as JSON, then as a python literal; never ``eval``."""
    try:
        obj = json.loads(text)
    except json.JSONDecodeError:
        try:
            obj = ast.literal_eval(text)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError) as e:
            raise fail(f"{path}:{lineno}", f"not a JSON object or python dict literal ({type(e).__name__})") from e
    if not isinstance(obj, dict):
        raise fail(f"{path}:{lineno}", f"expected a dict with 'audio', got {type(obj).__name__}")
    return obj


def _parse_codes(value, where: str) -> np.ndarray:
    """Inline codes: a string of space-separated ints or a list of ints -> ``(T,)`` int64."""
    try:
        if isinstance(value, str):
            codes = np.array([int(x) for x in value.split()], dtype=np.int64)
        elif isinstance(value, (list, tuple)):
            codes = np.array([int(x) for x in value], dtype=np.int64)
        else:
            raise ValueError(type(value).__name__)
    except (ValueError, TypeError) as e:
        raise fail(where, f"codes must be space-separated integers or a list of integers ({e})") from e
    if codes.size == 0:
        raise fail(where, "empty code sequence")
    return codes


def _entry_from_dict(obj: dict, where: str) -> ManifestEntry:
    """Turn one parsed line into a ``ManifestEntry``; relative paths are kept as written."""
    if "audio" not in obj:
        raise fail(where, "line has no 'audio' key")
    codes, unit_path = None, obj.get("unit_path")
    if unit_path is None:
        key = next((k for k in INLINE_CODE_KEYS if k in obj), None)
        if key is None:
            raise fail(where, f"line has neither 'unit_path' nor inline codes ({', '.join(INLINE_CODE_KEYS)})")
        codes = _parse_codes(obj[key], where)
    duration = obj.get("duration")
    speaker = obj.get("speaker")
    return ManifestEntry(
        audio=str(obj["audio"]),
        unit_path=None if unit_path is None else str(unit_path),
        codes=codes,
        speaker=None if speaker is None else str(speaker),
        duration=None if duration is None else float(duration),
    )


def read_manifest(path: str | os.PathLike) -> list[ManifestEntry]:
    """Read a manifest in our JSON-lines format or a legacy python-dict format.

    Args:
        path: the manifest file. Blank lines and lines starting with ``#`` are skipped.

    Returns:
        The entries in file order.

    Raises:
        Unit2AVError: missing file, or a bad line (the message names the file and line number).
    """
    path = Path(path)
    if not path.is_file():
        raise fail(path, "manifest not found")
    entries = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            text = line.strip()
            if not text or text.startswith("#"):
                continue
            where = f"{path}:{lineno}"
            entries.append(_entry_from_dict(_parse_line(text, path, lineno), where))
    if not entries:
        raise fail(path, "manifest has no entries")
    return entries


def write_manifest(entries: list[ManifestEntry], path: str | os.PathLike) -> None:
    """Write ``entries`` as JSON lines, atomically."""
    text = "".join(e.to_json() + "\n" for e in entries)
    write_bytes_atomic(path, text.encode("utf-8"))


# ---------------------------------------------------------------------------- building
@dataclass
class ManifestBuild:
    """Result of ``build_manifest``: the entries found and ``(unit_file, expected_audio)`` misses."""

    entries: list[ManifestEntry]
    missing: list[tuple[str, str]]


def find_audio(
    unit_file: str | os.PathLike, audio_root: str | os.PathLike, unit_suffix: str | None = None
) -> tuple[Path | None, Path]:
    """Find the audio of a unit file in a zeroth-style tree ``audio_root/<spk>/<utt>.wav``.

    The utterance id is the unit file's stem with ``unit_suffix`` removed, or, without a
    suffix, the longest ``_``-separated prefix of the stem whose audio exists (so
    ``113_003_0012_hubert_l6.pt`` finds ``113/113_003_0012.wav``).

    Returns:
        ``(audio path or None, the first path that was expected)``.
    """
    stem, root = Path(unit_file).stem, Path(audio_root)
    if unit_suffix:
        candidates = [stem[: -len(unit_suffix)].rstrip("_") if stem.endswith(unit_suffix) else stem]
    else:
        tokens = stem.split("_")
        candidates = ["_".join(tokens[:k]) for k in range(len(tokens), 0, -1)]
    expected = root / candidates[0].split("_")[0] / (candidates[0] + AUDIO_EXTENSIONS[0])
    for utt in candidates:
        for ext in AUDIO_EXTENSIONS:
            for cand in (root / utt.split("_")[0] / (utt + ext), root / (utt + ext)):
                if cand.is_file():
                    return cand, expected
    return None, expected


def build_manifest(
    audio_root: str | os.PathLike, unit_root: str | os.PathLike, unit_suffix: str | None = None
) -> ManifestBuild:
    """Pair every ``*.pt`` under ``unit_root`` with its audio under ``audio_root``.

    Unit files are the source of truth: audio without units is ignored, units without
    audio are reported in ``missing``.

    Raises:
        Unit2AVError: a root is missing or holds no unit files.
    """
    audio_root, unit_root = Path(audio_root), Path(unit_root)
    for root, what in ((audio_root, "audio root"), (unit_root, "unit root")):
        if not root.is_dir():
            raise fail(root, f"{what} is not a directory")
    unit_files = sorted(unit_root.rglob("*.pt"))
    if not unit_files:
        raise fail(unit_root, "no *.pt unit files found")
    entries, misses = [], []
    for uf in tqdm(unit_files, desc="manifest", unit="file", disable=len(unit_files) < 200):
        audio, expected = find_audio(uf, audio_root, unit_suffix)
        if audio is None:
            misses.append(uf)
            continue
        try:
            duration = sf.info(str(audio)).duration
        except Exception as e:  # noqa: BLE001 - any soundfile failure means unreadable audio
            raise fail(audio, f"unreadable audio ({e})") from e
        entries.append(ManifestEntry(audio=str(audio), unit_path=str(uf), speaker=speaker_of(audio), duration=duration))
    # Report misses with the suffix the found files carried (most common), as the user would look for them.
    suffixes = Counter(Path(e.unit_path).stem[len(Path(e.audio).stem) :] for e in entries)
    suffix = unit_suffix or (suffixes.most_common(1)[0][0] if suffixes else None)
    missing = [(str(uf), str(find_audio(uf, audio_root, suffix or None)[1])) for uf in misses]
    log.info("%d utterances found, %d unit files without audio", len(entries), len(missing))
    return ManifestBuild(entries, missing)


def split_manifest(
    entries: list[ManifestEntry],
    valid_count: int | None = None,
    valid_fraction: float | None = None,
    split_by: str = "utterance",
    seed: int = 1234,
) -> tuple[list[ManifestEntry], list[ManifestEntry]]:
    """Hold out a validation part: ``valid_count`` items or ``valid_fraction`` of them.

    Args:
        entries: all utterances.
        valid_count / valid_fraction: size of the held-out part (utterances, or speakers
            when ``split_by="speaker"``); give one.
        split_by: ``"utterance"`` (random utterances) or ``"speaker"`` (speaker-disjoint).
        seed: shuffling seed (the split is reproducible).

    Returns:
        ``(train, valid)``, each in the input order.
    """
    if split_by not in ("utterance", "speaker"):
        raise fail(None, f"--split_by must be 'utterance' or 'speaker', got {split_by!r}")
    groups = sorted({e.speaker for e in entries}) if split_by == "speaker" else list(range(len(entries)))
    if valid_count is None:
        if valid_fraction is None or not 0 < valid_fraction < 1:
            raise fail(None, f"--valid_fraction must be between 0 and 1, got {valid_fraction}")
        valid_count = max(1, round(len(groups) * valid_fraction))
    if not 0 < valid_count < len(groups):
        raise fail(None, f"cannot hold out {valid_count} of {len(groups)} {split_by}s")
    rng = random.Random(seed)
    held = set(rng.sample(groups, valid_count))
    key = (lambda i, e: e.speaker) if split_by == "speaker" else (lambda i, e: i)
    train = [e for i, e in enumerate(entries) if key(i, e) not in held]
    valid = [e for i, e in enumerate(entries) if key(i, e) in held]
    return train, valid


__all__ = [
    "ManifestBuild",
    "ManifestEntry",
    "build_manifest",
    "find_audio",
    "read_manifest",
    "speaker_of",
    "split_manifest",
    "write_manifest",
]
