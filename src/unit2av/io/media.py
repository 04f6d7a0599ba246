"""Video in with PyAV: probe, lazy frame decode, audio track.

Frames are numpy arrays ``(H, W, 3)`` uint8 in **BGR** order (OpenCV's and AV2AV's order).
A still image (png, jpg, ...) reads as a one-frame video without audio.

    info = probe_video("in.mp4")
    for frame in iter_frames("in.mp4"):      # decoded one at a time
        ...

Writing (``VideoWriter``, H.264 + AAC, and the encoder settings) lives in ``unit2av.io.video_writer``.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import cv2
import numpy as np

from ..errors import fail
from ..timing import VIDEO_FPS

log = logging.getLogger(__name__)

# Suffixes read with OpenCV as a one-frame video.
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"})
# Frame rate reported for a still image: the renderer's (AV2AV always writes 25 fps).
STILL_FPS = float(VIDEO_FPS)


@dataclass(frozen=True)
class VideoInfo:
    """What ``probe_video`` finds out about a video (or a still image)."""

    width: int  # pixels
    height: int  # pixels
    fps: float  # frames per second (average rate of the video stream)
    num_frames: int  # number of video frames
    has_audio: bool  # the file has an audio stream
    duration: float  # seconds of video (num_frames / fps)
    audio_duration: float = 0.0  # seconds of the first audio stream per the container (0 when none)


def is_image(path: str | os.PathLike) -> bool:
    """True when ``path`` names a still image by its suffix."""
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def _read_image(path: Path) -> np.ndarray:
    if not path.is_file():
        raise fail(path, "image not found")
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise fail(path, "cannot decode image")
    return img


def to_bgr(frame: av.VideoFrame) -> np.ndarray:
    """A decoded frame (``decode_video``) -> (H, W, 3) uint8 BGR.

    yuv420p (nearly every H.264/MPEG-4 file) is converted with OpenCV, whose BT.601 conversion
    is the exact inverse of the one ``VideoWriter`` uses, so frames passed through unchanged come
    back with codec noise only; other pixel formats go through FFmpeg's swscale.
    """
    if frame.format.name == "yuv420p" and frame.width % 2 == 0 and frame.height % 2 == 0:
        return cv2.cvtColor(frame.to_ndarray(), cv2.COLOR_YUV2BGR_I420)  # (H * 3 / 2, W) planes -> (H, W, 3)
    return frame.to_ndarray(format="bgr24")


def _open(path: Path):
    if not path.is_file():
        raise fail(path, "video not found")
    try:
        return av.open(str(path))
    except (av.FFmpegError, OSError, ValueError) as e:
        raise fail(path, f"cannot open video: {e}") from e


def _count_packets(container, stream) -> int:
    """Count video packets by demuxing (no decoding) when the header has no frame count."""
    return sum(1 for p in container.demux(stream) if p.size)


def probe_video(path: str | os.PathLike) -> VideoInfo:
    """Read a video's size, frame rate, frame count and whether it has audio.

    Raises:
        Unit2AVError: missing file, no video stream, or a file that cannot be opened.
    """
    path = Path(path)
    if is_image(path):
        h, w = _read_image(path).shape[:2]
        return VideoInfo(w, h, STILL_FPS, 1, False, 1.0 / STILL_FPS)
    with _open(path) as container:
        if not container.streams.video:
            raise fail(path, "has no video stream")
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        fps = float(rate) if rate else 0.0
        has_audio = bool(container.streams.audio)
        audio_duration = 0.0
        if has_audio:
            a = container.streams.audio[0]
            if a.duration and a.time_base:
                audio_duration = float(a.duration * a.time_base)
        width, height = stream.codec_context.width, stream.codec_context.height
        try:
            n = int(stream.frames or 0) or _count_packets(container, stream)
        except av.FFmpegError as e:
            raise fail(path, f"cannot read video: {e}") from e
    if n <= 0 or width <= 0 or height <= 0:
        raise fail(path, "video stream has no frames")
    if fps <= 0:
        fps = STILL_FPS
        log.warning("%s: no frame rate in the file; assuming %g fps", path, fps)
    return VideoInfo(width, height, fps, n, has_audio, n / fps, audio_duration)


def iter_frames(path: str | os.PathLike, start: int = 0) -> Iterator[np.ndarray]:
    """Decode video frames lazily, one at a time.

    Args:
        path: a video file or a still image.
        start: index of the first frame to yield (earlier frames are decoded and dropped).

    Yields:
        (H, W, 3) uint8 BGR frames.

    Raises:
        Unit2AVError: the file cannot be opened or decoded.
    """
    path = Path(path)
    if is_image(path):
        if start == 0:
            yield _read_image(path)
        return
    with contextlib.closing(decode_video(path)) as frames:  # closing this generator closes the file
        for i, frame in enumerate(frames):
            if i >= start:
                yield to_bgr(frame)


def decode_video(path: str | os.PathLike, seek_pts: int | None = None) -> Iterator[av.VideoFrame]:
    """Decoded frames of the first video stream (PyAV frames: ``.pts``, ``.key_frame``), lazily.

    Args:
        path: a video file.
        seek_pts: start at the key frame with this presentation time stamp (one seen in an
            earlier pass; the caller checks that the first frame has it).

    Raises:
        Unit2AVError: the file cannot be opened or decoded.
    """
    path = Path(path)
    container = _open(path)
    try:
        if not container.streams.video:
            raise fail(path, "has no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        if seek_pts is not None:
            container.seek(seek_pts, stream=stream, backward=True, any_frame=False)
        yield from container.decode(stream)
    except av.FFmpegError as e:
        raise fail(path, f"cannot decode video: {e}") from e
    finally:
        container.close()


def read_audio_track(
    path: str | os.PathLike, sample_rate: int | None = None, trim: bool = False, int16: bool = False
) -> tuple[np.ndarray, int]:
    """Decode a file's first audio stream to mono float32.

    Args:
        path: any file PyAV opens.
        sample_rate: resample to this rate with FFmpeg's resampler (``None``: the stream's rate).
        trim: keep only the stream's duration as the container states it (drops the codec's
            trailing padding, as the ffmpeg command line does; e.g. AAC's last partial frame).
        int16: quantise to 16 bits in FFmpeg (as ``ffmpeg -acodec pcm_s16le`` does); the values
            returned are then ``s16 / 32768`` exactly.

    Returns:
        (wav (T,) float32 in [-1, 1], sample rate).

    Raises:
        Unit2AVError: missing file, no audio track, or an undecodable one.
    """
    path = Path(path)
    if is_image(path):
        raise fail(path, "has no audio track (a still image)")
    with _open(path) as container:
        if not container.streams.audio:
            raise fail(path, "has no audio track")
        stream = container.streams.audio[0]
        rate = int(sample_rate or stream.codec_context.sample_rate or 0)
        keep = None
        if trim and stream.duration and stream.time_base:
            keep = round(float(stream.duration * stream.time_base) * rate)
        resampler = av.AudioResampler(format="s16" if int16 else "flt", layout="mono", rate=rate or None)
        chunks = []
        try:
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    chunks.append(out.to_ndarray().reshape(-1))
            for out in resampler.resample(None):
                chunks.append(out.to_ndarray().reshape(-1))
        except (av.FFmpegError, ValueError) as e:
            raise fail(path, f"cannot decode audio track: {e}") from e
    if not chunks or not rate:
        raise fail(path, "audio track is empty")
    wav = np.concatenate(chunks)
    wav = wav.astype(np.float32) / 32768.0 if int16 else wav.astype(np.float32)
    return (wav[:keep] if keep else wav), int(rate)


__all__ = [
    "VideoInfo",
    "decode_video",
    "is_image",
    "iter_frames",
    "probe_video",
    "read_audio_track",
    "to_bgr",
]
