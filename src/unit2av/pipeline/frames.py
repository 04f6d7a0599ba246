"""Source frames for the renderer, one batch of indices at a time: a video file or frames in memory.

Both kinds answer ``get(indices) -> {index: (H, W, 3) uint8 BGR}`` and have ``num_frames``,
``fps``, ``width``, ``height`` and ``close()``, so ``render_video`` takes either.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from ..errors import fail
from ..io.media import VideoInfo, decode_video, is_image, iter_frames, probe_video, to_bgr
from ..timing import VIDEO_FPS

log = logging.getLogger(__name__)


class FrameReader:
    """Random access to a video's frames for one batch at a time, decoding forward lazily.

    Going backwards (the ping-pong walk) seeks to the nearest key frame at or before the first
    frame wanted (key frames are remembered, with their frame index, as the first pass meets
    them) and decodes forward from there, so a backward batch costs at most one GOP of extra
    decoding instead of the whole file. Only the frames of the current batch are kept.
    ``decoded`` counts the frames decoded so far.

    Args:
        path: a video file, or a still image (one frame).
        info: its ``probe_video`` result (probed here when ``None``).
    """

    def __init__(self, path: str | os.PathLike, info: VideoInfo | None = None):
        info = probe_video(path) if info is None else info
        self.path, self.num_frames, self.fps = Path(path), info.num_frames, info.fps
        self.width, self.height = info.width, info.height
        self.still = is_image(path)
        self._it = None
        self._pos = 0  # index of the next frame the decoder yields
        self._check_pts: int | None = None  # after a seek: the pts the first frame must have
        self._last = None  # the last decoded frame (PyAV frame, or BGR array for a still image)
        self._cache: dict[int, np.ndarray] = {}
        self._keyframes: list[tuple[int, int]] = []  # (frame index, pts) of key frames met, ascending
        self._seekable = not self.still
        self.decoded = 0

    def _open_at(self, target: int) -> None:
        """Position the decoder at or before frame ``target``: the nearest known key frame, else the start."""
        if self._it is not None:
            self._it.close()
        key = next(((i, pts) for i, pts in reversed(self._keyframes) if i <= target), None)
        if not self._seekable or key is None or key[0] == 0:
            self._it, self._pos, self._check_pts = (
                (iter_frames(self.path) if self.still else decode_video(self.path)),
                0,
                None,
            )
        else:
            self._it, self._pos, self._check_pts = decode_video(self.path, seek_pts=key[1]), key[0], key[1]

    def _next(self):
        """The next decoded frame (or ``None`` at the end), keeping frame indices exact."""
        frame = next(self._it, None)
        if self.still or frame is None:
            return frame
        if self._check_pts is not None:  # first frame after a seek: must be the key frame asked for
            landed, expected, self._check_pts = frame.pts, self._check_pts, None
            if landed != expected:
                log.debug(
                    "%s: seek landed on pts %s, not frame %d; decoding from the start", self.path, landed, self._pos
                )
                self._seekable = False  # this file's time stamps do not allow exact seeking
                self._open_at(0)
                return self._next()
        self.decoded += 1
        if frame.key_frame and frame.pts is not None and (not self._keyframes or self._pos > self._keyframes[-1][0]):
            self._keyframes.append((self._pos, frame.pts))
        return frame

    def get(self, indices: list[int]) -> dict[int, np.ndarray]:
        """Frames for ``indices`` (a batch), as {index: (H, W, 3) uint8 BGR}."""
        wanted = set(indices)
        frames = {i: self._cache[i] for i in wanted if i in self._cache}
        missing = sorted(wanted - frames.keys())
        if missing:
            if self._it is None or missing[0] < self._pos:
                self._open_at(missing[0])
            todo = set(missing)
            while todo and self._pos <= missing[-1]:
                frame = self._next()
                if frame is None:  # the header promised more frames than the stream has
                    break
                if self._pos in todo:
                    frames[self._pos] = frame if self.still else to_bgr(frame)
                    todo.discard(self._pos)
                self._last, self._pos = frame, self._pos + 1
            if todo:
                if self._last is None:
                    raise fail(self.path, "cannot decode any video frame")
                log.warning("%s: stream ended at frame %d; repeating the last frame", self.path, self._pos)
                last = self._last if self.still else to_bgr(self._last)
                frames.update({i: last for i in todo})
        self._cache = frames
        return frames

    def close(self) -> None:
        if self._it is not None:
            self._it.close()


class FrameList:
    """Frames already in memory (e.g. the demo's synthetic face), at ``fps``.

    Args:
        frames: N (H, W, 3) uint8 BGR frames, all of one size.
        fps: their frame rate (default the renderer's 25 fps: no retiming).
    """

    def __init__(self, frames: list[np.ndarray], fps: float = VIDEO_FPS):
        if not frames:
            raise fail(None, "no source frames")
        self.frames, self.num_frames, self.fps = frames, len(frames), float(fps)
        self.height, self.width = frames[0].shape[:2]

    def get(self, indices: list[int]) -> dict[int, np.ndarray]:
        """Frames for ``indices``, as {index: (H, W, 3) uint8 BGR} (the frames themselves, not copies)."""
        return {i: self.frames[i] for i in set(indices)}

    def close(self) -> None:
        pass


__all__ = ["FrameList", "FrameReader"]
