"""Video in and out with PyAV: probe, lazy frame decode, audio track, H.264 + AAC encode.

Frames are numpy arrays ``(H, W, 3)`` uint8 in **BGR** order (OpenCV's and AV2AV's order).
A still image (png, jpg, ...) reads as a one-frame video without audio.

    info = probe_video("in.mp4")
    for frame in iter_frames("in.mp4"):      # decoded one at a time
        ...
    with VideoWriter("out.mp4", info.width, info.height, audio=wav, audio_rate=16000) as w:
        w.write(frame)                       # written to a temporary file, moved into place on exit
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

from ..errors import Unit2AVError, fail
from ..timing import VIDEO_FPS
from .safe import atomic_path

log = logging.getLogger(__name__)

# Suffixes read with OpenCV as a one-frame video.
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"})
# Frame rate reported for a still image: the renderer's (AV2AV always writes 25 fps).
STILL_FPS = float(VIDEO_FPS)
# H.264 encoders tried in order; the first one this PyAV/FFmpeg build has wins.
H264_ENCODERS = ("libx264", "h264", "libopenh264", "h264_v4l2m2m")
# Constant rate factor for libx264 (18 = visually lossless; keeps codec noise in pasted-back frames low).
DEFAULT_CRF = 18
# libx264 settings beyond the rate factor. Macroblock-tree rate control is off because with it the
# libx264 in PyAV's wheels is not deterministic: the same frames encoded twice gave different files
# (decoded frames up to ~59 grey levels apart); with mbtree=0, 8 of 8 encodes were byte-identical.
X264_OPTIONS = {"preset": "medium", "x264-params": "mbtree=0"}
# AAC bit rate in bits per second (speech).
AAC_BIT_RATE = 128_000
# Samples handed to the AAC encoder at a time (its frame size).
AAC_CHUNK = 1024


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


def pick_h264_encoder() -> str:
    """Name of the first H.264 encoder this FFmpeg build offers (libx264 preferred)."""
    for name in H264_ENCODERS:
        try:
            av.codec.Codec(name, "w")
        except (av.FFmpegError, ValueError):
            continue
        return name
    raise Unit2AVError("no H.264 encoder in this FFmpeg build (PyAV); install a PyAV wheel with libx264")


class VideoWriter:
    """Write BGR frames as H.264 (yuv420p) with an optional AAC audio track, atomically and reproducibly.

    The file appears at ``path`` only when the ``with`` block ends without an error. Audio is
    interleaved with the video as frames arrive, so memory stays flat for long videos. Odd
    frame sizes (which yuv420p cannot hold) are padded by one edge row/column.

    Args:
        path: output file (.mp4).
        width, height: frame size of the frames passed to ``write``.
        fps: output frame rate (``unit2av.timing.VIDEO_FPS``, AV2AV's rate).
        audio: (T,) float mono waveform in [-1, 1], or None for a silent video.
        audio_rate: sample rate of ``audio`` in Hz.
        crf: libx264 quality (lower is better).
    """

    def __init__(
        self,
        path: str | os.PathLike,
        width: int,
        height: int,
        fps: float = VIDEO_FPS,
        audio: np.ndarray | None = None,
        audio_rate: int | None = None,
        crf: int = DEFAULT_CRF,
    ):
        if audio is not None and not audio_rate:
            raise ValueError("audio_rate is required with audio")
        self.path = Path(path)
        self.width, self.height, self.fps, self.crf = int(width), int(height), fps, crf
        self.enc_width, self.enc_height = self.width + self.width % 2, self.height + self.height % 2
        self.audio = None if audio is None else np.clip(np.asarray(audio, np.float32).reshape(-1), -1, 1)
        self.audio_rate = audio_rate
        self.frames_written = 0
        self._audio_pos = 0
        self._stack = contextlib.ExitStack()

    def __enter__(self) -> VideoWriter:
        tmp = self._stack.enter_context(atomic_path(self.path))
        try:
            self._container = av.open(str(tmp), mode="w", format="mp4")
            self._stack.callback(self._container.close)
            self._vstream = self._container.add_stream(pick_h264_encoder(), rate=round(self.fps))
            self._vstream.width, self._vstream.height = self.enc_width, self.enc_height
            self._vstream.pix_fmt = "yuv420p"
            if self._vstream.codec_context.name == "libx264":
                self._vstream.options = {"crf": str(self.crf), **X264_OPTIONS}  # deterministic output
            self._astream = None
            if self.audio is not None:
                self._astream = self._container.add_stream("aac", rate=int(self.audio_rate))
                self._astream.layout = "mono"
                self._astream.bit_rate = AAC_BIT_RATE
        except BaseException:
            self._stack.close()
            raise
        if (self.enc_width, self.enc_height) != (self.width, self.height):
            log.info(
                "%s: padding %dx%d to even %dx%d for yuv420p",
                self.path,
                self.width,
                self.height,
                self.enc_width,
                self.enc_height,
            )
        return self

    def write(self, frame_bgr: np.ndarray) -> None:
        """Encode one (height, width, 3) uint8 BGR frame."""
        if frame_bgr.shape != (self.height, self.width, 3) or frame_bgr.dtype != np.uint8:
            raise ValueError(
                f"frame {frame_bgr.shape} {frame_bgr.dtype}, expected ({self.height}, {self.width}, 3) uint8"
            )
        if (self.enc_width, self.enc_height) != (self.width, self.height):
            pad = ((0, self.enc_height - self.height), (0, self.enc_width - self.width), (0, 0))
            frame_bgr = np.pad(frame_bgr, pad, mode="edge")
        i420 = cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2YUV_I420)  # (H, W, 3) -> (H * 3 / 2, W) yuv420p planes
        frame = av.VideoFrame.from_ndarray(i420, format="yuv420p")
        frame.pts = self.frames_written
        self._container.mux(self._vstream.encode(frame))
        self.frames_written += 1
        if self._astream is not None:
            self._write_audio(until=round(self.frames_written / self.fps * self.audio_rate))

    def _write_audio(self, until: int | None) -> None:
        """Encode audio samples up to sample ``until`` (None: all that are left, then flush)."""
        end = len(self.audio) if until is None else min(until, len(self.audio))
        end = end if until is None else self._audio_pos + (end - self._audio_pos) // AAC_CHUNK * AAC_CHUNK
        while self._audio_pos < end:
            chunk = self.audio[self._audio_pos : min(end, self._audio_pos + AAC_CHUNK)]
            frame = av.AudioFrame.from_ndarray(chunk[None, :], format="flt", layout="mono")
            frame.sample_rate = int(self.audio_rate)
            frame.pts = self._audio_pos
            self._audio_pos += len(chunk)
            self._container.mux(self._astream.encode(frame))
        if until is None:
            self._container.mux(self._astream.encode(None))

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            try:
                if self.frames_written == 0:
                    raise fail(self.path, "no frames to write")
                self._container.mux(self._vstream.encode(None))
                if self._astream is not None:
                    self._write_audio(until=None)
                self._container.close()
            except BaseException as e:
                self._stack.__exit__(type(e), e, e.__traceback__)
                raise
        self._stack.__exit__(exc_type, exc, tb)


__all__ = [
    "VideoInfo",
    "VideoWriter",
    "decode_video",
    "is_image",
    "iter_frames",
    "probe_video",
    "read_audio_track",
    "to_bgr",
]
