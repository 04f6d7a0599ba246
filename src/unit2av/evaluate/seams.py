"""Seams and sharpness of a re-rendered face: is the paste box visible, is the mouth blurry?

- ``border_edge_ratio``: the mean absolute grey-level step across the face box's border
  (between the last pixel outside and the first inside, on each side that does not lie on the
  frame's edge) divided by the mean step between neighbouring pixels in the same direction a few
  pixels inside the box (``INSIDE_PX``). About 1 where nothing was pasted (the border is just
  another line through the image); a hard paste adds a step along the whole border and raises it.
- ``mouth_sharpness``: the variance of the Laplacian of the grey mouth region (``sync.MOUTH_ROI``
  of the box, at its own resolution), averaged over frames; ``mouth_sharpness_ratio`` divides the
  dub's by the source's on the same source frames (1 = as sharp as the original, under 1 = blurrier).
"""

from __future__ import annotations

import cv2
import numpy as np

from ..io.boxes import clip_box
from .sync import MOUTH_ROI

INSIDE_PX = (2, 3, 4, 5)  # depths inside the box where the reference steps are measured
MIN_SIDE_PX = 16  # boxes narrower or shorter than this are skipped


def _grey(frame: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 BGR (or an already grey (H, W) float frame) -> (H, W) float32 grey."""
    return frame if frame.ndim == 2 else cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY).astype(np.float32)


def _int_box(box, width: int, height: int):
    """The box as the renderer pasted it (truncated, clipped), or ``None`` when too small."""
    b = clip_box(box, width, height)
    return b if b is not None and b[2] - b[0] >= MIN_SIDE_PX and b[3] - b[1] >= MIN_SIDE_PX else None


def border_steps(frame: np.ndarray, box) -> tuple[float, float] | None:
    """Mean step across the box border and the mean step at ``INSIDE_PX`` depths, for one frame.

    Args:
        frame: (H, W, 3) uint8 BGR, or its (H, W) float32 grey.
        box: ``[x1, y1, x2, y2]`` in pixels (``x2``, ``y2`` exclusive after truncation).

    Returns:
        ``(border, inside)`` or ``None`` when the box is too small or lies on the frame's edges.
    """
    g = _grey(frame)
    h, w = g.shape
    b = _int_box(box, w, h)
    if b is None:
        return None
    x1, y1, x2, y2 = b
    border, inside = [], []
    rows, cols = slice(y1, y2), slice(x1, x2)
    if x1 > 0:  # left side: step between columns x1 - 1 and x1
        border.append(np.abs(g[rows, x1] - g[rows, x1 - 1]))
        inside += [np.abs(g[rows, x1 + d] - g[rows, x1 + d - 1]) for d in INSIDE_PX]
    if x2 < w:  # right side: between x2 - 1 (inside) and x2
        border.append(np.abs(g[rows, x2] - g[rows, x2 - 1]))
        inside += [np.abs(g[rows, x2 - d] - g[rows, x2 - d - 1]) for d in INSIDE_PX]
    if y1 > 0:
        border.append(np.abs(g[y1, cols] - g[y1 - 1, cols]))
        inside += [np.abs(g[y1 + d, cols] - g[y1 + d - 1, cols]) for d in INSIDE_PX]
    if y2 < h:
        border.append(np.abs(g[y2, cols] - g[y2 - 1, cols]))
        inside += [np.abs(g[y2 - d, cols] - g[y2 - d - 1, cols]) for d in INSIDE_PX]
    if not border:
        return None
    return float(np.concatenate(border).mean()), float(np.concatenate(inside).mean())


def mouth_sharpness(frame: np.ndarray, box) -> float | None:
    """Variance of the Laplacian of the grey mouth region of ``box`` (``None``: box too small)."""
    g = _grey(frame)
    h, w = g.shape
    b = _int_box(box, w, h)
    if b is None:
        return None
    x1, y1, x2, y2 = b
    bw, bh = x2 - x1, y2 - y1
    fx1, fy1, fx2, fy2 = MOUTH_ROI
    roi = g[y1 + int(fy1 * bh) : y1 + int(fy2 * bh), x1 + int(fx1 * bw) : x1 + int(fx2 * bw)]
    return float(cv2.Laplacian(roi, cv2.CV_32F).var()) if roi.size else None


def frame_measures(frame: np.ndarray, box) -> tuple[tuple[float, float] | None, float | None]:
    """``(border_steps, mouth_sharpness)`` of one frame (``(None, None)`` without a box)."""
    if box is None:
        return None, None
    grey = _grey(frame)
    return border_steps(grey, box), mouth_sharpness(grey, box)


def _ratio(pairs: list) -> float | None:
    pairs = [p for p in pairs if p is not None and p[0] is not None and p[1] is not None]
    if not pairs:
        return None
    num, den = float(np.mean([p[0] for p in pairs])), float(np.mean([p[1] for p in pairs]))
    return num / den if den > 0 else None


def seam_scores(measures: list, source_measures: list | None = None) -> dict:
    """Border edge ratio and mouth sharpness of a video from its ``frame_measures``.

    Args:
        measures: ``frame_measures`` of each output frame.
        source_measures: ``frame_measures`` of the source frame each output frame was rendered
            from, measured with the same box (``None``: no source).

    Returns:
        ``{"border_edge_ratio", "mouth_sharpness", "mouth_sharpness_ratio", "source_border_edge_ratio",
        "frames_used"}`` (``None`` where a figure cannot be computed).
    """
    steps = [m[0] for m in measures]
    sharp = [m[1] for m in measures if m[1] is not None]
    out = {
        "border_edge_ratio": _ratio(steps),
        "mouth_sharpness": float(np.mean(sharp)) if sharp else None,
        "mouth_sharpness_ratio": None,
        "source_border_edge_ratio": None,
        "frames_used": sum(s is not None for s in steps),
    }
    if source_measures is not None:
        out["source_border_edge_ratio"] = _ratio([s[0] for s in source_measures])
        out["mouth_sharpness_ratio"] = _ratio([(m[1], s[1]) for m, s in zip(measures, source_measures)])
    return out


__all__ = ["border_steps", "frame_measures", "mouth_sharpness", "seam_scores"]
