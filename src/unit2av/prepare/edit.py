"""Edit and inspect box pickles: set frame ranges to ``None``, keep ranges, summarise.

boxes = edit_boxes(read_boxes("b.pkl"), none=[(41, 84)], keep=[])   # ranges are [start, end)
edit_box_file("b.pkl", none=["41:84", "161:224"])                    # in place, keeps b.pkl.bak
summary = format_box_info(box_info(read_boxes("b.pkl"), width=224, height=224))  # text for a console
"""

from __future__ import annotations

import logging
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import fail
from ..io.boxes import read_boxes, write_boxes
from . import track as ft

log = logging.getLogger(__name__)

# Suffix of the copy of the original kept when a box pickle is edited in place.
BACKUP_SUFFIX = ".bak"


def parse_range(text: str, num_frames: int, path=None) -> tuple[int, int]:
    """Parse ``"A:B"`` (end exclusive; ``"A:"`` runs to the end, ``":B"`` from the start, ``"A"`` one frame).

    Args:
        text: the range as typed.
        num_frames: frames in the clip (for open ends and the bounds check).
        path: the box file named in errors.

    Raises:
        Unit2AVError: malformed, empty, or outside ``0..num_frames``; names the clip length.
    """
    parts = str(text).split(":")
    try:
        if len(parts) == 1:
            start = int(parts[0])
            end = start + 1
        elif len(parts) == 2:
            start = int(parts[0]) if parts[0].strip() else 0
            end = int(parts[1]) if parts[1].strip() else num_frames
        else:
            raise ValueError(text)
    except ValueError:
        raise fail(path, f"bad frame range {text!r}: expected START:END (end exclusive), e.g. 41:84") from None
    if start < 0 or end > num_frames or start >= end:
        raise fail(
            path,
            f"frame range {text} is outside the clip: it has {num_frames} frames "
            f"(valid ranges lie within 0:{num_frames}, end exclusive)",
        )
    return start, end


def edit_boxes(boxes: list, none: list[tuple[int, int]] = (), keep: list[tuple[int, int]] = ()) -> list:
    """Return a copy of ``boxes`` with ranges set to ``None``.

    Args:
        boxes: the seed's list (float32 arrays or ``None``).
        none: ``[start, end)`` ranges to set to ``None``.
        keep: if given, every frame outside these ``[start, end)`` ranges is set to ``None`` first.
    """
    out = list(boxes)
    if keep:
        kept = np.zeros(len(out), dtype=bool)
        for start, end in keep:
            kept[start:end] = True
        out = [b if k else None for b, k in zip(out, kept)]
    for start, end in none:
        out[start:end] = [None] * (end - start)
    return out


def edit_box_file(
    path: str | os.PathLike, none: list[str] = (), keep: list[str] = (), out: str | os.PathLike | None = None
) -> tuple[Path, Path | None]:
    """Edit a box pickle: ``none``/``keep`` ranges as ``"A:B"`` strings.

    Args:
        path: the box pickle to read.
        none: ranges to set to ``None``.
        keep: ranges to keep (everything else becomes ``None``).
        out: where to write (``None``: in place, after copying the original to ``<path>.bak``).

    Returns:
        ``(written path, backup path or None)``.

    Raises:
        Unit2AVError: unreadable pickle or a range outside the clip (nothing is written then).
    """
    path = Path(path)
    boxes = read_boxes(path)
    none_r = [parse_range(r, len(boxes), path) for r in none]
    keep_r = [parse_range(r, len(boxes), path) for r in keep]
    edited = edit_boxes(boxes, none_r, keep_r)
    backup = None
    target = Path(out) if out is not None else path
    if target.resolve() == path.resolve():
        backup = path.with_name(path.name + BACKUP_SUFFIX)
        shutil.copy2(path, backup)
    write_boxes(edited, target)
    log.info("%s: %d of %d frames without a box", target, sum(b is None for b in edited), len(edited))
    return target, backup


@dataclass
class BoxInfo:
    """Summary of a box list (``box_info``)."""

    frames: int = 0  # entries in the list
    none_count: int = 0  # entries that are None
    none_ranges: list = field(default_factory=list)  # [start, end) runs of None
    width: tuple = ()  # (min, mean, max) box width in pixels
    height: tuple = ()  # (min, mean, max) box height in pixels
    outside: list = field(default_factory=list)  # frames whose box leaves the frame (needs width/height)
    frame_size: tuple | None = None  # (width, height) of the video when known


def box_info(boxes: list, width: int | None = None, height: int | None = None) -> BoxInfo:
    """Frames, ``None`` count and ranges, box size statistics, boxes outside the frame.

    Args:
        boxes: the seed's list.
        width, height: the video's frame size (``None``: skip the outside-the-frame check).
    """
    track = ft.from_box_list(boxes)  # (N, 4), NaN rows for None
    present = track[~np.isnan(track).any(axis=1)]
    info = BoxInfo(
        frames=len(boxes), none_count=int(np.isnan(track).any(axis=1).sum()), none_ranges=ft.none_ranges(track)
    )
    if len(present):
        w, h = present[:, 2] - present[:, 0], present[:, 3] - present[:, 1]
        info.width = (float(w.min()), float(w.mean()), float(w.max()))
        info.height = (float(h.min()), float(h.mean()), float(h.max()))
    if width is not None and height is not None:
        info.frame_size = (width, height)
        with np.errstate(invalid="ignore"):
            off = (track[:, 0] < 0) | (track[:, 1] < 0) | (track[:, 2] > width) | (track[:, 3] > height)
        info.outside = [int(i) for i in np.flatnonzero(off)]
    return info


def _fmt_ranges(ranges: list[tuple[int, int]], limit: int = 12) -> str:
    text = ", ".join(f"{s}:{e}" for s, e in ranges[:limit])
    return text + (f", ... ({len(ranges) - limit} more)" if len(ranges) > limit else "")


def format_box_info(info: BoxInfo) -> str:
    """Human-readable lines for ``box_info``'s result."""
    lines = [
        f"frames: {info.frames}",
        f"None: {info.none_count}"
        + (f" in ranges {_fmt_ranges(info.none_ranges)} (end exclusive)" if info.none_ranges else ""),
    ]
    if info.width:
        lines.append("box width  min/mean/max: {:.1f} / {:.1f} / {:.1f} px".format(*info.width))
        lines.append("box height min/mean/max: {:.1f} / {:.1f} / {:.1f} px".format(*info.height))
    if info.frame_size is not None:
        runs = ft.true_runs(np.isin(np.arange(info.frames), info.outside))
        lines.append(
            f"boxes outside the {info.frame_size[0]}x{info.frame_size[1]} frame: {len(info.outside)}"
            + (f" (frames {_fmt_ranges(runs)})" if runs else "")
        )
    return "\n".join(lines)
