"""The pictures of the review page: the timeline strip and the current frame with its box.

The strip maps frames to x linearly (``frame_x`` / ``frame_at``), so a click on it names a frame:

    +--------+--------+--------+----  thumbnails of evenly spaced frames, frame number in the corner,
    | 0      | 5      | 10     |      columns of frames without a box shaded red
    +--------+--------+--------+----
    |gggggggggggggrrrrrrrrrgggggggg   one column per frame: green box, orange None by an edit,
    |0         10        20           dark red None in the detected/loaded boxes, grey before any boxes;
                                      frame ticks below

All images are ``(H, W, 3)`` uint8 **BGR** (OpenCV's order; the UI converts to RGB).
"""

from __future__ import annotations

import math

import cv2
import numpy as np

STRIP_WIDTH = 1280  # pixels
THUMB_WIDTH = 80  # target width of one thumbnail (the strip holds STRIP_WIDTH // THUMB_WIDTH of them)
BAR_HEIGHT = 20  # the per-frame state bar
TICK_HEIGHT = 18  # frame-number row under the bar
BOX_BGR = (60, 170, 40)  # frame with a box
NONE_BGR = (40, 40, 150)  # None in the detected / loaded boxes
EDITED_BGR = (0, 140, 255)  # None because of an edit (the reference had a box)
UNKNOWN_BGR = (90, 90, 90)  # no boxes detected or loaded yet
CURSOR_BGR = (0, 230, 255)  # the frame shown in the viewer
ANCHOR_BGR = (255, 200, 0)  # first click of a range picked on the strip
SHADE_ALPHA = 0.55  # red tint over thumbnail columns of frames without a box
FONT = cv2.FONT_HERSHEY_SIMPLEX
VIEW_WIDTH = 640  # frames in the viewer are shrunk to at most this width


def thumb_frames(num_frames: int, width: int = STRIP_WIDTH, thumb: int = THUMB_WIDTH) -> list[int]:
    """The frames shown as thumbnails: ``width // thumb`` evenly spaced ones (every frame when fewer)."""
    n = max(1, min(num_frames, width // thumb))
    return [k * num_frames // n for k in range(n)]


def frame_x(frame: int, num_frames: int, width: int = STRIP_WIDTH) -> int:
    """Left pixel column of ``frame`` on the strip."""
    return int(round(frame * width / max(1, num_frames)))


def frame_at(x: float, num_frames: int, width: int = STRIP_WIDTH) -> int:
    """The frame under pixel column ``x`` of the strip (clamped to the clip)."""
    return int(min(num_frames - 1, max(0, math.floor(float(x) * num_frames / width))))


def frame_colours(boxes: list | None, reference: list | None, num_frames: int) -> np.ndarray:
    """(num_frames, 3) uint8 BGR colour of each frame on the bar (see the module docstring)."""
    out = np.empty((num_frames, 3), np.uint8)
    out[:] = UNKNOWN_BGR if boxes is None else BOX_BGR
    if boxes is None:
        return out
    for i, b in enumerate(boxes[:num_frames]):
        if b is None:
            had = reference is not None and i < len(reference) and reference[i] is not None
            out[i] = EDITED_BGR if had else NONE_BGR
    return out


def _tick_step(num_frames: int, width: int, min_gap: int = 60) -> int:
    """A round frame step (1, 2, 5, 10, 20, 50, ...) whose ticks are at least ``min_gap`` pixels apart."""
    for step in (m * 10**e for e in range(8) for m in (1, 2, 5)):
        if step * width / max(1, num_frames) >= min_gap:
            return step
    return max(1, num_frames)


def draw_strip(
    thumbs: dict[int, np.ndarray],
    boxes: list | None,
    reference: list | None,
    num_frames: int,
    cursor: int | None = None,
    anchor: int | None = None,
    width: int = STRIP_WIDTH,
) -> np.ndarray:
    """The timeline strip.

    Args:
        thumbs: {frame: (h, w, 3) BGR thumbnail} for the frames of ``thumb_frames`` (any size; resized).
        boxes: the current boxes (one entry or ``None`` per frame), or ``None`` before any were loaded.
        reference: the boxes as detected / loaded (to tell edited ``None`` from detected ``None``).
        num_frames: frames in the clip.
        cursor: frame marked as the one in the viewer.
        anchor: first frame of a range being picked.

    Returns:
        (H, width, 3) uint8 BGR.
    """
    order = sorted(thumbs)
    first = thumbs[order[0]] if order else np.zeros((9, 16, 3), np.uint8)
    tw = max(1, width // max(1, len(order)))
    th = max(8, round(tw * first.shape[0] / first.shape[1]))
    colours = frame_colours(boxes, reference, num_frames)
    cols = np.repeat(np.arange(num_frames), np.diff([frame_x(i, num_frames, width) for i in range(num_frames + 1)]))
    row = colours[cols]  # (width, 3): colour of each pixel column
    img = np.full((th + BAR_HEIGHT + TICK_HEIGHT, width, 3), 30, np.uint8)
    for k, idx in enumerate(order):
        x0 = k * width // len(order)
        x1 = width if k == len(order) - 1 else (k + 1) * width // len(order)
        img[:th, x0:x1] = cv2.resize(thumbs[idx], (x1 - x0, th), interpolation=cv2.INTER_AREA)
    if boxes is not None:
        missing = np.array([b is None for b in boxes[:num_frames]] + [True] * (num_frames - len(boxes)))[cols]
        tint = img[:th, missing].astype(np.float32)
        red = np.array(NONE_BGR, np.float32)
        img[:th, missing] = (tint * (1 - SHADE_ALPHA) + red * SHADE_ALPHA).astype(np.uint8)
    for k, idx in enumerate(order):  # labels after the tint, so they stay readable
        x0 = k * width // len(order)
        cv2.rectangle(img, (x0, 0), (x0 + 8 + 8 * len(str(idx)), 15), (0, 0, 0), -1)
        cv2.putText(img, str(idx), (x0 + 3, 12), FONT, 0.42, (255, 255, 255), 1, cv2.LINE_AA)
        cv2.line(img, (x0, 0), (x0, th - 1), (0, 0, 0), 1)
    img[th : th + BAR_HEIGHT] = row[None]
    step = _tick_step(num_frames, width)
    for f in range(0, num_frames, step):
        x = frame_x(f, num_frames, width)
        cv2.line(img, (x, th + BAR_HEIGHT), (x, th + BAR_HEIGHT + 4), (200, 200, 200), 1)
        cv2.putText(img, str(f), (x + 2, th + BAR_HEIGHT + 14), FONT, 0.4, (220, 220, 220), 1, cv2.LINE_AA)
    for frame, colour in ((anchor, ANCHOR_BGR), (cursor, CURSOR_BGR)):
        if frame is not None and 0 <= frame < num_frames:
            x0, x1 = frame_x(frame, num_frames, width), frame_x(frame + 1, num_frames, width)
            cv2.rectangle(img, (x0, 0), (max(x0 + 1, x1 - 1), th + BAR_HEIGHT - 1), colour, 2)
    return img


def view_scale(width: int, max_width: int = VIEW_WIDTH) -> float:
    """Factor that shrinks a frame of ``width`` pixels to at most ``max_width``."""
    return min(1.0, max_width / max(1, width))


__all__ = ["draw_strip", "frame_at", "frame_colours", "frame_x", "thumb_frames", "view_scale"]
