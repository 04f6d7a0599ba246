"""Talking-face training data: clip manifests, decoded face crops, random windows, sync pairs.

A manifest is JSON lines, one clip a line (paths relative to the manifest's folder allowed)::

    {"video": "clips/113_001_0001.mp4", "bbox": "clips/113_001_0001.bbox.pkl", "units": "units/113_001_0001.pt"}

``bbox`` defaults to ``<video stem>.bbox.pkl`` beside the video and ``units`` to ``<video stem>.pt``
beside it; units files are 50 Hz, as ``unit2av units extract`` writes (``{"code": (T,)}``).

Items are keyed by integers (``key``), and all randomness of an item comes from its key, so a
resumed run draws exactly the windows the interrupted one would have drawn.
"""

from __future__ import annotations

import json
import logging
import os
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from ..errors import fail
from ..io.safe import write_bytes_atomic
from .model import FACE_SIZE, FRAMES_PER_WINDOW, UNITS_PER_FRAME, UNITS_PER_WINDOW

log = logging.getLogger(__name__)

VIDEO_EXTENSIONS = (".mp4", ".mkv", ".webm", ".avi", ".mov")  # looked for by build_face_manifest
CACHE_CLIPS = 512  # decoded clips kept in memory per process (about 1 GB of 3 s clips)
MIN_SYNC_SHIFT = 4  # frames: an out-of-sync pair's units are at least this far from the mouth's window
HALF = FACE_SIZE // 2  # first row of the lower (mouth) half


@dataclass
class FaceClip:
    """One manifest line: a video, its box pickle and its units file."""

    video: str
    bbox: str
    units: str

    def to_json(self) -> str:
        return json.dumps({"video": self.video, "bbox": self.bbox, "units": self.units})


def _resolve(value, base: Path) -> str:
    p = Path(value)
    return str(p if p.is_absolute() or not (base / p).exists() and p.exists() else base / p)


def read_face_manifest(path: str | os.PathLike) -> list[FaceClip]:
    """Read a JSON-lines clip manifest (keys ``video``, optional ``bbox``/``bbox_path``, ``units``/``unit_path``)."""
    path = Path(path)
    if not path.is_file():
        raise fail(path, "clip manifest not found")
    clips = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise fail(path, f"line {n} is not JSON ({e.msg})") from e
        if not isinstance(obj, dict) or not isinstance(obj.get("video"), str):
            raise fail(path, f"line {n}: expected an object with a 'video' path")
        video = Path(_resolve(obj["video"], path.parent))
        bbox = obj.get("bbox", obj.get("bbox_path"))
        units = obj.get("units", obj.get("unit_path"))
        clips.append(
            FaceClip(
                str(video),
                _resolve(bbox, path.parent) if bbox else str(video.with_suffix(".bbox.pkl")),
                _resolve(units, path.parent) if units else str(video.with_suffix(".pt")),
            )
        )
    if not clips:
        raise fail(path, "clip manifest has no lines")
    return clips


def write_face_manifest(clips: list[FaceClip], path: str | os.PathLike) -> None:
    """Write clips as JSON lines, atomically."""
    write_bytes_atomic(path, ("".join(c.to_json() + "\n" for c in clips)).encode())


def build_face_manifest(
    video_root: str | os.PathLike,
    unit_root: str | os.PathLike | None = None,
    bbox_root: str | os.PathLike | None = None,
) -> tuple[list[FaceClip], list[str]]:
    """Pair every video under ``video_root`` with its box pickle and units file.

    Boxes and units are looked for at the same relative path under ``bbox_root`` / ``unit_root``
    (default: beside the video) as ``<stem>.bbox.pkl`` and ``<stem>.pt``.

    Returns:
        ``(clips, problems)``: the complete clips, and one line per video that was skipped.
    """
    root = Path(video_root)
    if not root.is_dir():
        raise fail(root, "video root is not a directory")
    clips, problems = [], []
    for video in sorted(p for p in root.rglob("*") if p.suffix.lower() in VIDEO_EXTENSIONS):
        if video.name.endswith(".lip.mp4"):
            continue  # mouth-crop videos of LRS-style datasets are not clips
        rel = video.relative_to(root).with_suffix("")
        bbox = (Path(bbox_root) if bbox_root else root) / rel.parent / (rel.name + ".bbox.pkl")
        units = (Path(unit_root) if unit_root else root) / rel.parent / (rel.name + ".pt")
        missing = [str(p) for p in (bbox, units) if not p.is_file()]
        if missing:
            problems.append(f"{video}: missing {', '.join(missing)}")
        else:
            clips.append(FaceClip(str(video), str(bbox), str(units)))
    if not clips:
        raise fail(root, f"no complete clips (video + .bbox.pkl + .pt units); {len(problems)} incomplete")
    return clips, problems


def index_clip(clip: FaceClip) -> tuple[list, np.ndarray, np.ndarray]:
    """Boxes and units of a clip without decoding it.

    Returns:
        ``(boxes, valid, codes)``: one clipped box or None per frame, (N,) bool, the (T,) int64 units.
    """
    from ..io.boxes import load_boxes
    from ..io.media import probe_video
    from ..io.units import load_unit_file

    info = probe_video(clip.video)
    boxes = load_boxes(clip.bbox, info.num_frames, info.width, info.height, clip.video)
    code = load_unit_file(clip.units).code
    if code.numel() == 0:
        raise fail(clip.units, "expected {'code': LongTensor (T,)} 50 Hz units, found none")
    return boxes, np.array([b is not None for b in boxes]), code.numpy()


def decode_crops(clip: FaceClip, boxes: list) -> np.ndarray:
    """(N, 96, 96, 3) uint8 BGR face crops of every frame (zeros where the box is None)."""
    from ..io.boxes import crop_face
    from ..io.media import iter_frames

    crops = np.zeros((len(boxes), FACE_SIZE, FACE_SIZE, 3), np.uint8)
    for i, frame in enumerate(iter_frames(clip.video)):
        if i >= len(boxes):
            break
        if boxes[i] is not None:
            crops[i] = crop_face(frame, boxes[i])
    return crops


def load_clip(clip: FaceClip) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Decode a clip: ``(crops (N, 96, 96, 3) uint8 BGR, valid (N,) bool, codes (T,) int64)``."""
    boxes, valid, code = index_clip(clip)
    return decode_crops(clip, boxes), valid, code


def to_tensor(crops: np.ndarray) -> torch.Tensor:
    """(N, 96, 96, 3) uint8 -> (N, 3, 96, 96) float in [0, 1]."""
    return torch.from_numpy(crops).permute(0, 3, 1, 2).float().div_(255.0)


def renderer_input(target: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """(N, 3, 96, 96) target and reference faces -> (N, 6, 96, 96): masked target + reference."""
    masked = target.clone()
    masked[:, :, HALF:] = 0.0  # hide the mouth
    return torch.cat([masked, reference], dim=1)


class FaceWindows(Dataset):
    """Random 10-frame windows of decoded clips, with their 20 units and a reference window.

    Args:
        clips: manifest clips (boxes and units are read up front; frames are decoded on first use).
        seed: base of every item's randomness.
        num_embeddings: unit ids must be below this (checked once per clip).
        cache_clips: decoded clips kept in memory (96x96 uint8 crops, ~2 MB per 3 s clip; least
            recently used are dropped, so a large dataset streams from disk).

    Items (``dataset[key]``): ``units`` (20,) long, ``faces`` (10, 6, 96, 96) renderer input,
    ``target`` (10, 3, 96, 96), ``shifted`` (20,) units of another window at least
    ``MIN_SYNC_SHIFT`` frames away (for sync training), ``clip`` and ``start`` ints.
    """

    def __init__(
        self, clips: list[FaceClip], seed: int = 0, num_embeddings: int | None = None, cache_clips: int = CACHE_CLIPS
    ):
        from tqdm import tqdm

        self.seed, self.data, self.cache_clips = seed, [], cache_clips
        self._cache: OrderedDict[int, np.ndarray] = OrderedDict()
        for clip in tqdm(clips, desc="clips", unit="clip", disable=len(clips) < 20):
            boxes, valid, code = index_clip(clip)
            if num_embeddings is not None and code.max() >= num_embeddings:
                raise fail(clip.units, f"unit id {int(code.max())} >= the model's {num_embeddings} units")
            ok = np.convolve(valid.astype(int), np.ones(FRAMES_PER_WINDOW, int), "valid") == FRAMES_PER_WINDOW
            starts = np.flatnonzero(ok)
            if starts.size == 0:
                log.warning("%s: no 10 consecutive frames with a face box; skipped", clip.video)
                continue
            self.data.append((clip, boxes, code, starts))
        if not self.data:
            raise fail(clips[0].video, "no usable clip (each needs 10 consecutive frames with boxes)")

    def __len__(self) -> int:
        return len(self.data)

    def crops(self, c: int) -> np.ndarray:
        """Decoded crops of clip ``c`` (from the cache when it holds them)."""
        if c in self._cache:
            self._cache.move_to_end(c)
            return self._cache[c]
        crops = decode_crops(self.data[c][0], self.data[c][1])
        self._cache[c] = crops
        while len(self._cache) > max(1, self.cache_clips):
            self._cache.popitem(last=False)
        return crops

    def _units(self, code: np.ndarray, start: int) -> torch.Tensor:
        u = code[start * UNITS_PER_FRAME : start * UNITS_PER_FRAME + UNITS_PER_WINDOW]
        if u.size < UNITS_PER_WINDOW:  # the units may end a little before the video
            u = np.concatenate([u, np.full(UNITS_PER_WINDOW - u.size, code[-1])])
        return torch.from_numpy(u.astype(np.int64))

    @staticmethod
    def _other(rng: np.random.Generator, starts: np.ndarray, start: int, gap: int) -> int:
        far = starts[np.abs(starts - start) >= gap]
        return int(rng.choice(far if far.size else starts))

    def window(self, clip: int, start: int, ref_start: int, shift_start: int | None = None) -> dict:
        """The item for explicit window positions (frames)."""
        code, crops = self.data[clip][2], self.crops(clip)
        target = to_tensor(crops[start : start + FRAMES_PER_WINDOW])
        reference = to_tensor(crops[ref_start : ref_start + FRAMES_PER_WINDOW])
        item = {
            "units": self._units(code, start),
            "faces": renderer_input(target, reference),
            "target": target,
            "clip": clip,
            "start": start,
        }
        item["shifted"] = self._units(code, start if shift_start is None else shift_start)
        return item

    def __getitem__(self, key: int) -> dict:
        rng = np.random.default_rng([self.seed, int(key)])
        clip = int(rng.integers(len(self.data)))
        starts = self.data[clip][3]
        start = int(rng.choice(starts))
        ref = self._other(rng, starts, start, FRAMES_PER_WINDOW)  # Wav2Lip: the reference is another window
        return self.window(clip, start, ref, self._other(rng, starts, start, MIN_SYNC_SHIFT))

    def fixed_keys(self, per_clip: int) -> list[tuple[int, int, int, int]]:
        """Deterministic (clip, start, reference start, shifted start) windows for validation."""
        out = []
        for c, (_, _, _, starts) in enumerate(self.data):
            rng = np.random.default_rng([self.seed, 7919, c])
            picks = starts[np.linspace(0, starts.size - 1, min(per_clip, starts.size)).round().astype(int)]
            for s in picks:
                out.append(
                    (
                        c,
                        int(s),
                        self._other(rng, starts, int(s), FRAMES_PER_WINDOW),
                        self._other(rng, starts, int(s), MIN_SYNC_SHIFT),
                    )
                )
        return out


class FixedWindows(Dataset):
    """Validation items at fixed positions (``FaceWindows.fixed_keys``)."""

    def __init__(self, windows: FaceWindows, per_clip: int):
        self.windows, self.keys = windows, windows.fixed_keys(per_clip)

    def __len__(self) -> int:
        return len(self.keys)

    def __getitem__(self, i: int) -> dict:
        return self.windows.window(*self.keys[i])


class StepKeys(Sampler):
    """Item keys for batches ``start_step, start_step + 1, ...``: key = (step * batch + i) * world + rank.

    Each rank draws distinct items, and a run resumed at step ``s`` draws the same items as an
    uninterrupted one.
    """

    def __init__(self, start_step: int, batch_size: int, total_steps: int, rank: int = 0, world_size: int = 1):
        self.start, self.batch, self.total, self.rank, self.world = (
            start_step,
            batch_size,
            total_steps,
            rank,
            world_size,
        )

    def __iter__(self):
        for step in range(self.start, self.total):
            for i in range(self.batch):
                yield (step * self.batch + i) * self.world + self.rank

    def __len__(self) -> int:
        return max(0, self.total - self.start) * self.batch


__all__ = [
    "FaceClip",
    "FaceWindows",
    "FixedWindows",
    "StepKeys",
    "build_face_manifest",
    "decode_crops",
    "index_clip",
    "load_clip",
    "read_face_manifest",
    "renderer_input",
    "to_tensor",
    "write_face_manifest",
]
