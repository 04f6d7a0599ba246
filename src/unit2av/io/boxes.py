"""Face box files (``.bbox.pkl``): the one reader and writer, clipping to a frame, cutting a face out.

The format AV2AV / Wav2Lip users have: a pickled list with one ``[x1, y1, x2, y2]`` (pixels,
float) or ``None`` per video frame. It is read with the restricted unpickler of ``io.safe``: a
pickle that would run code, or holds anything but that list, is refused before any of it runs.

One policy for every command (``bbox info/edit/show``, ``render``, ``train-face``):

- a file that is not a box list (not a list, an entry that is not four finite numbers) is refused
  with one line naming the entry;
- a well-formed box with no area (``x2 <= x1`` or ``y2 <= y1``: zero-width or inverted) is read
  as ``None`` (the frame is left untouched), with one warning counting such boxes. Such a box can
  only come from hand editing or another tool; reading it as ``None`` lets ``bbox info`` show it
  and ``bbox edit`` repair the file, where refusing would leave the user no tool to fix it;
- for a video (``load_boxes``), boxes are truncated to integers and clipped to the frame as the
  reference does; a box left with no area (wholly off the frame) is ``None`` too, with a warning.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import cv2
import numpy as np

from ..errors import fail
from ..timing import FACE_SIZE
from .safe import dump_plain_pickle, load_plain_pickle

log = logging.getLogger(__name__)

Box = tuple[int, int, int, int]  # x1, y1, x2, y2 in pixels (x2, y2 exclusive), inside the frame


def _as_box(entry, index: int, path) -> np.ndarray:
    """One entry -> (4,) float64, or a one-line error naming it."""
    try:
        values = np.asarray(entry, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        values = None
    if values is None or values.size != 4:
        raise fail(path, f"not a box list: entry {index} is not [x1, y1, x2, y2] numbers or None: {str(entry)[:60]}")
    if not np.all(np.isfinite(values)):
        raise fail(path, f"entry {index} has a non-finite coordinate: {values.tolist()}")
    return values


def read_boxes(path: str | os.PathLike) -> list[np.ndarray | None]:
    """Read a box file as written: one float32 ``[x1, y1, x2, y2]`` or ``None`` per frame.

    Boxes with no area become ``None`` with one warning (see the module's policy). A pickled
    (N, 4) array is accepted as N boxes.

    Raises:
        Unit2AVError: missing file, a pickle the restricted unpickler refuses, or not a box list.
    """
    path = Path(path)
    obj = load_plain_pickle(path, what="box pickle")
    if isinstance(obj, np.ndarray) and obj.ndim == 2 and obj.shape[1] == 4:
        obj = list(obj)
    if not isinstance(obj, (list, tuple)):
        raise fail(path, f"not a box list: the pickle holds a {type(obj).__name__}, not a list")
    boxes: list[np.ndarray | None] = []
    empty: list[int] = []
    for i, entry in enumerate(obj):
        if entry is None:
            boxes.append(None)
            continue
        box = _as_box(entry, i, path)
        if box[2] <= box[0] or box[3] <= box[1]:
            empty.append(i)
            boxes.append(None)
        else:
            boxes.append(box.astype(np.float32))
    if empty:
        log.warning(
            "%s: %d boxes with no area (x2 <= x1 or y2 <= y1; first: frame %d) read as None", path, len(empty), empty[0]
        )
    return boxes


def write_boxes(boxes: list, path: str | os.PathLike) -> None:
    """Write boxes in the seed's format (float32 ``(4,)`` arrays or ``None``), atomically."""
    dump_plain_pickle([None if b is None else np.asarray(b, dtype=np.float32).reshape(4) for b in boxes], path)


def clip_box(box, width: int, height: int) -> Box | None:
    """Truncate a box to integers and clip it to a ``width`` x ``height`` frame; ``None`` when nothing is left."""
    x1, y1, x2, y2 = (int(v) for v in box)
    x1, y1, x2, y2 = max(0, x1), max(0, y1), min(width, x2), min(height, y2)
    return (x1, y1, x2, y2) if x2 > x1 and y2 > y1 else None


def clip_boxes(boxes: list, width: int, height: int, source=None) -> list[Box | None]:
    """``clip_box`` for every box (``None`` stays ``None``); boxes wholly off the frame get one warning."""
    clipped = [None if b is None else clip_box(b, width, height) for b in boxes]
    off = sum(b is not None and c is None for b, c in zip(boxes, clipped))
    if off:
        log.warning("%s: %d boxes outside the %dx%d frame treated as None", source or "boxes", off, width, height)
    return clipped


def load_boxes(
    path: str | os.PathLike, num_frames: int, width: int, height: int, video_path: str | os.PathLike | None = None
) -> list[Box | None]:
    """Read a box file for a video: one clipped integer box or ``None`` per frame.

    Args:
        path: the ``.bbox.pkl`` file.
        num_frames, width, height: the video's frame count and size.
        video_path: the video, named in the count-mismatch message.

    Raises:
        Unit2AVError: what ``read_boxes`` refuses, a box count other than the frame count, or no
            usable box at all.
    """
    boxes = read_boxes(path)
    if len(boxes) != num_frames:
        raise fail(path, f"has {len(boxes)} boxes but the video {video_path or ''} has {num_frames} frames")
    clipped = clip_boxes(boxes, width, height, path)
    if all(b is None for b in clipped):
        raise fail(path, "all boxes are None: no face to render")
    return clipped


def crop_face(frame: np.ndarray, box: Box, size: int = FACE_SIZE) -> np.ndarray:
    """Cut a clipped box out of a frame and resize it to the renderer's square (bilinear, as the reference).

    Args:
        frame: (H, W, 3) uint8 BGR.
        box: a clipped integer box (``clip_box``).
        size: output side in pixels (96, the renderer's).

    Returns:
        (size, size, 3) uint8 BGR.
    """
    x1, y1, x2, y2 = box
    return cv2.resize(frame[y1:y2, x1:x2], (size, size), interpolation=cv2.INTER_LINEAR)


__all__ = ["Box", "clip_box", "clip_boxes", "crop_face", "load_boxes", "read_boxes", "write_boxes"]
