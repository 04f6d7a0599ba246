"""Box arithmetic for face tracks: IoU, one-face tracking, gap filling, smoothing, box styles.

Boxes are ``[x1, y1, x2, y2]`` in pixels. A track is a float array ``(N, 4)`` with a row of
NaN for a frame without a box; ``to_box_list`` turns it into the seed's pickle format (a list
of float32 arrays or ``None``).
"""

from __future__ import annotations

import numpy as np

# Minimum IoU between a detection and the tracked box for the detection to continue the track.
TRACK_MIN_IOU = 0.3

# --- av2av box style -------------------------------------------------------------------
# The AV2AV renderer was trained on tall RetinaFace-style boxes (about 120x158 on the 224x224
# sample). A detector box with centre (cx, cy) and size s = (w + h) / 2 maps to a box with
#   centre (cx + KX * s, cy + KY * s), width SW * s, height SH * s.
# The four numbers were fitted by least squares (per-frame ratios averaged) on the 70 frames of
# ../shared/fixtures/av2av_sample/TRajLqEaWhQ_00002.{mp4,bbox.pkl}; offsets scale with the face
# size, so the map holds at any resolution. Mean IoU with the provided boxes after the map:
# Haar 0.86 (min 0.71), dlib HOG 0.79 (min 0.68); before the map both were 0.64.
AV2AV_STYLE = {
    # detector name: (KX, KY, SW, SH)
    "haar": (0.1163, 0.0873, 0.9590, 1.2636),
    "dlib": (0.1348, 0.0040, 0.8624, 1.1371),
}
BOX_STYLES = ("av2av", "square", "raw")


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection over union of boxes ``a`` (..., 4) and ``b`` (..., 4), broadcast; 0 for empty boxes."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    iw = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    ih = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    inter = iw * ih
    area_a = np.clip(a[..., 2] - a[..., 0], 0, None) * np.clip(a[..., 3] - a[..., 1], 0, None)
    area_b = np.clip(b[..., 2] - b[..., 0], 0, None) * np.clip(b[..., 3] - b[..., 1], 0, None)
    union = area_a + area_b - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def area(boxes: np.ndarray) -> np.ndarray:
    """Areas of boxes ``(K, 4)`` -> ``(K,)``."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])


def _pick_start(dets: np.ndarray, face_index: int | None) -> int | None:
    """Row of ``dets`` (K, 4) that starts a track: the largest, or the ``face_index``-th from the left."""
    if face_index is None:
        return int(np.argmax(area(dets)))
    if face_index >= len(dets):
        return None
    return int(np.argsort(dets[:, 0], kind="stable")[face_index])


def track_one_face(
    detections: list[np.ndarray],
    face_index: int | None = None,
    largest: bool = False,
    min_iou: float = TRACK_MIN_IOU,
    reacquire_after: int = 10,
) -> np.ndarray:
    """Follow one face through per-frame detections.

    The track starts on the largest face of the first frame with a face (or, with ``face_index``,
    on the ``face_index``-th face counted from the left in the first frame that has that many);
    each later frame continues it with the detection of highest IoU with the last tracked box,
    if that IoU reaches ``min_iou``. A face that appears elsewhere does not steal the track.
    After ``reacquire_after`` frames without a match the track restarts as at the beginning.

    Args:
        detections: per frame, an array ``(K, 4)`` of candidate boxes (K may be 0).
        face_index: start on this face from the left instead of the largest (``None``: largest).
        largest: no continuity: take the largest detection of every frame.
        min_iou: minimum IoU to continue the track.
        reacquire_after: frames without a match before the track may restart elsewhere.

    Returns:
        ``(N, 4)`` float64 boxes, NaN rows where the tracked face was not found.
    """
    out = np.full((len(detections), 4), np.nan)
    last, missed = None, 0
    for i, dets in enumerate(detections):
        dets = np.asarray(dets, dtype=np.float64).reshape(-1, 4)
        if len(dets) == 0:
            missed += 1
            continue
        if largest:
            out[i] = dets[np.argmax(area(dets))]
            continue
        if last is None or missed > reacquire_after:
            j = _pick_start(dets, face_index)
        else:
            overlaps = iou(dets, last[None, :])
            j = int(np.argmax(overlaps)) if overlaps.max() >= min_iou else None
        if j is None:
            missed += 1
            continue
        out[i] = last = dets[j]
        missed = 0
    return out


def true_runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """``[start, end)`` runs where the boolean ``mask`` (N,) is True."""
    padded = np.concatenate([[False], mask, [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return [(int(s), int(e)) for s, e in zip(edges[::2], edges[1::2])]


def none_ranges(boxes: np.ndarray) -> list[tuple[int, int]]:
    """``[start, end)`` ranges of frames without a box in a track ``(N, 4)``."""
    return true_runs(np.isnan(np.asarray(boxes, dtype=np.float64)).any(axis=1))


def fill_gaps(boxes: np.ndarray, max_gap: int) -> np.ndarray:
    """Interpolate runs of up to ``max_gap`` missing frames; longer runs stay missing.

    A gap between two boxes is filled linearly; a gap at the start or end of the clip (one
    neighbour only) repeats the neighbouring box.

    Args:
        boxes: ``(N, 4)`` track with NaN rows.
        max_gap: longest run of missing frames to fill (0 fills nothing).

    Returns:
        A new ``(N, 4)`` track.
    """
    out = np.array(boxes, dtype=np.float64, copy=True)
    n = len(out)
    for start, end in none_ranges(out):
        if end - start > max_gap or (start == 0 and end == n):
            continue
        before = out[start - 1] if start > 0 else None
        after = out[end] if end < n else None
        if before is None or after is None:
            out[start:end] = before if before is not None else after
            continue
        t = (np.arange(start, end) - (start - 1)) / (end - (start - 1))  # (G,) in (0, 1)
        out[start:end] = before[None, :] * (1 - t[:, None]) + after[None, :] * t[:, None]
    return out


def smooth(boxes: np.ndarray, window: int) -> np.ndarray:
    """Centred moving average over ``window`` frames, within each run of frames that have boxes.

    Near the ends of a run the window shrinks to the frames available; missing frames are never
    averaged in and stay missing.

    Args:
        boxes: ``(N, 4)`` track with NaN rows.
        window: frames averaged (1 or less: no smoothing).
    """
    out = np.array(boxes, dtype=np.float64, copy=True)
    if window <= 1:
        return out
    half_lo, half_hi = (window - 1) // 2, window // 2
    for start, end in true_runs(~np.isnan(out).any(axis=1)):
        seg = np.asarray(boxes, dtype=np.float64)[start:end]  # (L, 4)
        csum = np.concatenate([np.zeros((1, 4)), np.cumsum(seg, axis=0)])  # (L + 1, 4)
        idx = np.arange(len(seg))
        lo = np.clip(idx - half_lo, 0, len(seg))
        hi = np.clip(idx + half_hi + 1, 0, len(seg))
        out[start:end] = (csum[hi] - csum[lo]) / (hi - lo)[:, None]
    return out


def restyle(boxes: np.ndarray, style: str, detector: str = "haar") -> np.ndarray:
    """Reshape detector boxes ``(N, 4)``: ``av2av`` (tall, calibrated), ``square`` or ``raw``.

    Args:
        boxes: ``(N, 4)`` detector boxes (NaN rows pass through).
        style: one of ``BOX_STYLES``.
        detector: which detector's calibration to use for ``av2av`` (keys of ``AV2AV_STYLE``).
    """
    b = np.asarray(boxes, dtype=np.float64)
    if style == "raw":
        return b.copy()
    cx, cy = (b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2
    size = ((b[:, 2] - b[:, 0]) + (b[:, 3] - b[:, 1])) / 2
    if style == "square":
        w = h = size
    elif style == "av2av":
        kx, ky, sw, sh = AV2AV_STYLE[detector]
        cx, cy, w, h = cx + kx * size, cy + ky * size, sw * size, sh * size
    else:
        raise ValueError(f"unknown box style {style!r} (choose from {', '.join(BOX_STYLES)})")
    return np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)


def pad_boxes(boxes: np.ndarray, pads: tuple[int, int, int, int]) -> np.ndarray:
    """Grow boxes ``(N, 4)`` by ``(top, bottom, left, right)`` pixels (Wav2Lip's ``--pads``)."""
    top, bottom, left, right = pads
    return np.asarray(boxes, dtype=np.float64) + np.array([-left, -top, right, bottom], dtype=np.float64)


def clamp_boxes(boxes: np.ndarray, width: int, height: int) -> np.ndarray:
    """Clip boxes ``(N, 4)`` to the frame ``[0, width] x [0, height]``."""
    b = np.array(boxes, dtype=np.float64, copy=True)
    b[:, [0, 2]] = np.clip(b[:, [0, 2]], 0, width)
    b[:, [1, 3]] = np.clip(b[:, [1, 3]], 0, height)
    return b


def to_box_list(boxes: np.ndarray) -> list[np.ndarray | None]:
    """Track ``(N, 4)`` -> the seed's format: a list of float32 ``[x1, y1, x2, y2]`` or ``None``."""
    return [None if np.isnan(b).any() else np.asarray(b, dtype=np.float32) for b in np.asarray(boxes)]


def from_box_list(boxes: list) -> np.ndarray:
    """The seed's list format -> a track ``(N, 4)`` float64 with NaN rows for ``None``."""
    out = np.full((len(boxes), 4), np.nan)
    for i, b in enumerate(boxes):
        if b is not None:
            out[i] = np.asarray(b, dtype=np.float64).reshape(4)
    return out
