"""Unit2AV timeline: which source frame and which units each output frame gets.

Output video runs at 25 fps with 2 units (50 Hz) per frame (``unit2av.timing``). Frames are rendered in windows of
10 frames / 20 units; the last window is padded with the last unit. The source video is retimed
to 25 fps by nearest frame, then walked back and forth (0, 1, ..., n-1, n-2, ..., 0, 1, ...)
when the speech is longer than the video; when it is shorter, the output ends with the speech.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ..timing import FRAMES_PER_WINDOW, UNITS_PER_FRAME, UNITS_PER_WINDOW, VIDEO_FPS


def num_output_frames(num_units: int) -> int:
    """Frames of output video for ``num_units`` units at 50 Hz (the speech rounded up to a frame)."""
    return max(1, math.ceil(num_units / UNITS_PER_FRAME))


def num_windows(num_frames: int) -> int:
    """Windows of 10 frames needed to cover ``num_frames``."""
    return math.ceil(num_frames / FRAMES_PER_WINDOW)


def retime_indices(num_src_frames: int, src_fps: float, out_fps: float = VIDEO_FPS) -> np.ndarray:
    """Source frame index of each frame of the video retimed to ``out_fps`` (nearest frame).

    Returns:
        (n,) int64 indices into the source frames, n = round(num_src_frames * out_fps / src_fps) >= 1.
    """
    if num_src_frames <= 1 or abs(src_fps - out_fps) < 1e-3:
        return np.arange(max(1, num_src_frames), dtype=np.int64)
    n = max(1, round(num_src_frames * out_fps / src_fps))
    times = np.arange(n) / out_fps  # seconds of each output frame
    return np.minimum(np.round(times * src_fps).astype(np.int64), num_src_frames - 1)


def ping_pong(position: np.ndarray, length: int) -> np.ndarray:
    """Fold positions onto 0..length-1 going back and forth: 0,1,..,n-1,n-2,..,1,0,1,...

    Args:
        position: (K,) int64 positions >= 0.
        length: n, the number of frames walked over.
    """
    if length <= 1:
        return np.zeros_like(position)
    period = 2 * (length - 1)
    p = position % period
    return np.where(p < length, p, period - p)


def frame_schedule(num_frames: int, num_src_frames: int, src_fps: float) -> np.ndarray:
    """Source frame index for each of ``num_frames`` output frames.

    Returns:
        (num_frames,) int64.
    """
    retimed = retime_indices(num_src_frames, src_fps)
    return retimed[ping_pong(np.arange(num_frames, dtype=np.int64), len(retimed))]


def unit_windows(codes: torch.Tensor, windows: int) -> torch.Tensor:
    """Cut units into windows of 20, padding the last with the last unit.

    Args:
        codes: (T,) unit ids at 50 Hz (durations already expanded).
        windows: number of windows wanted (``num_windows(num_output_frames(T))``).

    Returns:
        (windows, 20) LongTensor.
    """
    codes = codes.view(-1).long()
    total = windows * UNITS_PER_WINDOW
    if codes.numel() < total:
        codes = torch.cat([codes, codes[-1:].expand(total - codes.numel())])
    return codes[:total].view(windows, UNITS_PER_WINDOW)  # (W, 20)


__all__ = ["frame_schedule", "num_output_frames", "num_windows", "ping_pong", "retime_indices", "unit_windows"]
