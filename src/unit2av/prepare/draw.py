"""Draw face boxes: a contact sheet (PNG) of every N-th frame, or the whole video with boxes.

contact_sheet("in.mp4", boxes, "sheet.png", every=5)   # boxes in green, frame numbers below
overlay_video("in.mp4", boxes, "overlay.mp4")          # same drawing on every frame, audio kept
"""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from ..errors import fail
from ..io.safe import write_bytes_atomic

log = logging.getLogger(__name__)

BOX_COLOR = (0, 255, 0)  # BGR green: a frame's box
NONE_COLOR = (0, 0, 255)  # BGR red: the label of a frame without a box
LABEL_COLOR = (255, 255, 255)  # BGR white: frame numbers
BOX_THICKNESS = 2  # pixels
SHEET_BACKGROUND = 40  # grey level between tiles
SHEET_GAP = 4  # pixels between tiles
SHEET_COLUMNS = 6  # tiles per row
SHEET_TILE_WIDTH = 320  # tiles wider than this are shrunk to it
SHEET_EVERY_TARGET = 48  # with every=None, aim for about this many tiles
FONT = cv2.FONT_HERSHEY_SIMPLEX
FONT_SCALE = 0.45
LABEL_HEIGHT = 16  # pixels of the black label strip at a tile's bottom


def draw_box(frame: np.ndarray, box, index: int | None = None, scale: float = 1.0) -> np.ndarray:
    """Draw ``box`` (``[x1, y1, x2, y2]`` or ``None``) and the frame number on a copy of ``frame``.

    Args:
        frame: (H, W, 3) uint8 BGR.
        box: the box in the original frame's pixels, or ``None`` (labelled "no box" in red).
        index: frame number written at the bottom-left (``None``: no label).
        scale: factor from box pixels to ``frame`` pixels (for shrunk tiles).
    """
    out = np.ascontiguousarray(frame).copy()
    if box is not None:
        x1, y1, x2, y2 = (int(round(float(v) * scale)) for v in np.asarray(box).reshape(4))
        cv2.rectangle(out, (x1, y1), (x2, y2), BOX_COLOR, BOX_THICKNESS)
    if index is not None:
        h = out.shape[0]
        label = f"{index}" if box is not None else f"{index} no box"
        (tw, _), _ = cv2.getTextSize(label, FONT, FONT_SCALE, 1)
        cv2.rectangle(out, (0, h - LABEL_HEIGHT), (tw + 6, h), (0, 0, 0), -1)
        cv2.putText(
            out, label, (3, h - 4), FONT, FONT_SCALE, LABEL_COLOR if box is not None else NONE_COLOR, 1, cv2.LINE_AA
        )
    return out


def _check_lengths(video, boxes: list, num_frames: int) -> None:
    if len(boxes) != num_frames:
        log.warning(
            "%s: %d frames but %d boxes; frames past the boxes are drawn without one", video, num_frames, len(boxes)
        )


def contact_sheet(
    video: str | os.PathLike,
    boxes: list,
    out: str | os.PathLike,
    every: int | None = None,
    columns: int = SHEET_COLUMNS,
    tile_width: int = SHEET_TILE_WIDTH,
) -> Path:
    """Write a PNG grid of every ``every``-th frame with its box and frame number.

    Args:
        video: the video the boxes belong to.
        boxes: the seed's list (one entry per frame).
        out: the .png to write.
        every: frame step (``None``: about ``SHEET_EVERY_TARGET`` tiles).
        columns: tiles per row.
        tile_width: frames wider than this are shrunk.

    Returns:
        The written path (``(H, W, 3)`` image: rows of tiles separated by ``SHEET_GAP`` pixels).
    """
    from ..io.media import iter_frames, probe_video

    info = probe_video(video)
    _check_lengths(video, boxes, info.num_frames)
    every = every or max(1, math.ceil(info.num_frames / SHEET_EVERY_TARGET))
    scale = min(1.0, tile_width / info.width)
    tw, th = max(1, round(info.width * scale)), max(1, round(info.height * scale))
    tiles = []
    for i, frame in enumerate(iter_frames(video)):
        if i % every:
            continue
        if scale != 1.0:
            frame = cv2.resize(frame, (tw, th), interpolation=cv2.INTER_AREA)
        tiles.append(draw_box(frame, boxes[i] if i < len(boxes) else None, i, scale))
    if not tiles:
        raise fail(video, "no frames could be decoded")
    cols = min(columns, len(tiles))
    rows = math.ceil(len(tiles) / cols)
    sheet = np.full(
        (SHEET_GAP + rows * (th + SHEET_GAP), SHEET_GAP + cols * (tw + SHEET_GAP), 3), SHEET_BACKGROUND, dtype=np.uint8
    )
    for k, tile in enumerate(tiles):
        x0, y0 = sheet_tile_origin(k, tw, th, cols)
        sheet[y0 : y0 + th, x0 : x0 + tw] = tile
    ok, encoded = cv2.imencode(Path(out).suffix.lower() or ".png", sheet)
    if not ok:
        raise fail(out, "cannot encode the contact sheet")
    write_bytes_atomic(out, encoded.tobytes())
    log.info("%s: %d tiles (every %d-th frame of %s)", out, len(tiles), every, video)
    return Path(out)


def sheet_tile_origin(k: int, tile_width: int, tile_height: int, columns: int) -> tuple[int, int]:
    """Top-left ``(x, y)`` of tile ``k`` in a sheet laid out by ``contact_sheet``."""
    return (
        SHEET_GAP + (k % columns) * (tile_width + SHEET_GAP),
        SHEET_GAP + (k // columns) * (tile_height + SHEET_GAP),
    )


def overlay_video(video: str | os.PathLike, boxes: list, out: str | os.PathLike, progress: bool = True) -> Path:
    """Write the whole video with boxes and frame numbers drawn (H.264, the audio track kept).

    Args:
        video: the video the boxes belong to.
        boxes: the seed's list (one entry per frame).
        out: the .mp4 to write.
        progress: show a tqdm progress bar.
    """
    from ..io.media import iter_frames, probe_video, read_audio_track
    from ..io.video_writer import VideoWriter

    info = probe_video(video)
    _check_lengths(video, boxes, info.num_frames)
    audio, rate = read_audio_track(video) if info.has_audio else (None, None)
    with VideoWriter(out, info.width, info.height, fps=info.fps, audio=audio, audio_rate=rate) as writer:
        for i, frame in enumerate(
            tqdm(iter_frames(video), total=info.num_frames, desc="overlay", unit="frame", disable=not progress)
        ):
            writer.write(draw_box(frame, boxes[i] if i < len(boxes) else None, i))
    return Path(out)


def show_boxes(
    video: str | os.PathLike, boxes: list, out: str | os.PathLike, every: int | None = None, progress: bool = True
) -> Path:
    """A contact sheet when ``out`` ends in an image suffix, else an overlay video."""
    suffix = Path(out).suffix.lower()
    if suffix in (".png", ".jpg", ".jpeg"):
        return contact_sheet(video, boxes, out, every=every)
    if suffix in (".mp4", ".mov", ".mkv"):
        return overlay_video(video, boxes, out, progress=progress)
    raise fail(out, "output must end in .png/.jpg (contact sheet) or .mp4/.mov/.mkv (overlay video)")
