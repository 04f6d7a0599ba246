"""Face boxes: reading the box pickle, cutting renderer windows, pasting faces back.

Boxes are ``[x1, y1, x2, y2]`` in pixels (AV2AV / Wav2Lip ``.bbox.pkl``: a pickled list with one
entry per frame, ``None`` for frames to leave untouched). Coordinates are truncated to integers
and clipped to the frame, as the reference does; the crop and the paste use the same clipped
rectangle, so a box partly outside the frame pastes back its visible part undistorted.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import cv2
import numpy as np

from ..errors import fail
from ..face.model import FACE_SIZE
from ..io.safe import load_plain_pickle

log = logging.getLogger(__name__)

Box = tuple[int, int, int, int]  # x1, y1, x2, y2 (x2, y2 exclusive), inside the frame

BLENDS = ("feather", "hard")
FEATHER_FRACTION = 0.12  # feathered border as a fraction of the box's shorter side
MIN_FEATHER_PX = 2  # narrowest feathered border, pixels


def clip_box(box, width: int, height: int) -> Box | None:
    """Truncate a box to integers and clip it to the frame; ``None`` when nothing is left."""
    x1, y1, x2, y2 = (int(v) for v in box)
    x1, y1, x2, y2 = max(0, x1), max(0, y1), min(width, x2), min(height, y2)
    return (x1, y1, x2, y2) if x2 > x1 and y2 > y1 else None


def load_boxes(path: str | os.PathLike, num_frames: int, width: int, height: int,
               video_path: str | os.PathLike | None = None) -> list[Box | None]:
    """Read and check a box pickle for a video.

    Args:
        path: the ``.bbox.pkl`` file (read with the restricted unpickler).
        num_frames, width, height: the video's frame count and size.
        video_path: the video, named in the count-mismatch message.

    Returns:
        One clipped integer box or ``None`` per frame. Zero-area, inverted and off-frame boxes
        become ``None`` with one warning counting them.

    Raises:
        Unit2AVError: not a list, wrong count, malformed entries, or no usable box at all.
    """
    path = Path(path)
    raw = load_plain_pickle(path)
    if not isinstance(raw, (list, tuple)):
        raise fail(path, f"expected a list of boxes, found {type(raw).__name__}")
    if len(raw) != num_frames:
        raise fail(path, f"has {len(raw)} boxes but the video {video_path or ''} has {num_frames} frames")
    boxes: list[Box | None] = []
    dropped = 0
    for i, entry in enumerate(raw):
        if entry is None:
            boxes.append(None)
            continue
        values = np.asarray(entry, dtype=np.float64).reshape(-1) if _is_numeric(entry) else None
        if values is None or values.size != 4 or not np.all(np.isfinite(values)):
            raise fail(path, f"box {i} is not [x1, y1, x2, y2] numbers: {str(entry)[:60]}")
        box = clip_box(values, width, height)
        dropped += box is None
        boxes.append(box)
    if dropped:
        log.warning("%s: %d zero-area, inverted or off-frame boxes treated as None", path, dropped)
    if all(b is None for b in boxes):
        raise fail(path, "all boxes are None: no face to render")
    return boxes


def _is_numeric(entry) -> bool:
    try:
        return np.asarray(entry).dtype.kind in "biuf"
    except (ValueError, TypeError):
        return False


def crop_windows(frames: list[np.ndarray], boxes: list[Box | None]) -> np.ndarray:
    """Renderer input for each frame: masked face + reference face.

    Args:
        frames: N frames (H, W, 3) uint8 BGR.
        boxes: N clipped boxes or ``None`` (a black window).

    Returns:
        (N, 6, 96, 96) float32 in [0, 1], BGR; channels 0-2 with the lower half zeroed,
        3-5 the face itself (the reference half is the same frame).
    """
    out = np.zeros((len(frames), 6, FACE_SIZE, FACE_SIZE), dtype=np.float32)
    for i, (frame, box) in enumerate(zip(frames, boxes)):
        if box is None:
            continue
        x1, y1, x2, y2 = box
        face = cv2.resize(frame[y1:y2, x1:x2], (FACE_SIZE, FACE_SIZE), interpolation=cv2.INTER_LINEAR)
        face = face.transpose(2, 0, 1).astype(np.float32) / 255.0  # (3, 96, 96)
        out[i, 3:] = face
        out[i, :3] = face
        out[i, :3, FACE_SIZE // 2:] = 0.0  # hide the mouth: the renderer draws it
    return out


def faces_to_uint8(faces) -> np.ndarray:
    """(N, 3, 96, 96) float in [0, 1] (tensor or array) -> (N, 96, 96, 3) uint8 BGR."""
    arr = faces.detach().float().cpu().numpy() if hasattr(faces, "detach") else np.asarray(faces)
    return np.clip(arr.transpose(0, 2, 3, 1) * 255.0 + 0.5, 0, 255).astype(np.uint8)


def feather_mask(box: Box, width: int, height: int, fraction: float = FEATHER_FRACTION) -> np.ndarray:
    """(h, w, 1) float32 weights: 1 inside, a linear ramp to 0 over the box's border.

    Edges lying on the frame border are not feathered (there is no seam to hide there).
    """
    x1, y1, x2, y2 = box
    w, h = x2 - x1, y2 - y1
    f = max(MIN_FEATHER_PX, fraction * min(w, h))

    def ramp(n: int, open_start: bool, open_end: bool) -> np.ndarray:
        pos = np.arange(n, dtype=np.float32) + 0.5
        a = np.ones(n, dtype=np.float32)
        if not open_start:
            a = np.minimum(a, pos / f)
        if not open_end:
            a = np.minimum(a, (n - pos) / f)
        return a

    ax = ramp(w, x1 == 0, x2 == width)
    ay = ramp(h, y1 == 0, y2 == height)
    return (ay[:, None] * ax[None, :])[:, :, None]  # (h, w, 1)


def paste_face(frame: np.ndarray, face: np.ndarray, box: Box, blend: str = "feather") -> None:
    """Resize a generated face to its box and put it into ``frame`` (in place).

    Args:
        frame: (H, W, 3) uint8 BGR, modified in place.
        face: (96, 96, 3) uint8 BGR.
        box: the clipped box the face was cropped from.
        blend: ``"feather"`` (soft border hiding the seam) or ``"hard"`` (the reference's paste).
    """
    x1, y1, x2, y2 = box
    patch = cv2.resize(face, (x2 - x1, y2 - y1), interpolation=cv2.INTER_LINEAR)
    if blend == "hard":
        frame[y1:y2, x1:x2] = patch
        return
    alpha = feather_mask(box, frame.shape[1], frame.shape[0])
    region = frame[y1:y2, x1:x2].astype(np.float32)
    frame[y1:y2, x1:x2] = np.clip(region + alpha * (patch.astype(np.float32) - region) + 0.5, 0, 255).astype(
        np.uint8)


__all__ = ["BLENDS", "Box", "clip_box", "crop_windows", "faces_to_uint8", "feather_mask", "load_boxes",
           "paste_face"]
