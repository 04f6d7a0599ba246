"""Renderer windows cut from the frames, and generated faces pasted back.

Boxes are the clipped integer boxes of ``unit2av.io.boxes.load_boxes`` (``None`` for frames to
leave untouched); the crop and the paste use the same clipped rectangle, so a box partly outside
the frame pastes back its visible part undistorted.
"""

from __future__ import annotations

import cv2
import numpy as np

from ..io.boxes import Box, crop_face
from ..timing import FACE_SIZE

BLENDS = ("feather", "hard")
FEATHER_FRACTION = 0.12  # feathered border as a fraction of the box's shorter side
MIN_FEATHER_PX = 2  # narrowest feathered border, pixels


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
        face = crop_face(frame, box).transpose(2, 0, 1).astype(np.float32) / 255.0  # (96, 96, 3) -> (3, 96, 96)
        out[i, 3:] = face
        out[i, :3] = face
        out[i, :3, FACE_SIZE // 2 :] = 0.0  # hide the mouth: the renderer draws it
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
    frame[y1:y2, x1:x2] = np.clip(region + alpha * (patch.astype(np.float32) - region) + 0.5, 0, 255).astype(np.uint8)


__all__ = ["BLENDS", "crop_windows", "faces_to_uint8", "feather_mask", "paste_face"]
