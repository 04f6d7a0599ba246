"""Video out with PyAV: ``VideoWriter`` writes BGR frames as H.264 (yuv420p) + an AAC track, atomically.

Here live the encoder settings (``H264_ENCODERS``, ``DEFAULT_CRF``, ``X264_PRESETS``,
``DEFAULT_PRESET``, ``X264_OPTIONS``, the AAC bit rate and chunk size), ``pick_h264_encoder`` and the
writer itself; reading, probing and decoding are in ``unit2av.io.media``. Frames are numpy arrays
``(H, W, 3)`` uint8 in **BGR** order.

    with VideoWriter("out.mp4", width, height, audio=wav, audio_rate=16000) as w:
        w.write(frame)                       # written to a temporary file, moved into place on exit
"""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path

import av
import cv2
import numpy as np

from ..errors import Unit2AVError, fail
from ..timing import VIDEO_FPS
from .safe import atomic_path

log = logging.getLogger(__name__)

# H.264 encoders tried in order; the first one this PyAV/FFmpeg build has wins.
H264_ENCODERS = ("libx264", "h264", "libopenh264", "h264_v4l2m2m")
# Constant rate factor for libx264 (18 = visually lossless; keeps codec noise in pasted-back frames low).
DEFAULT_CRF = 18
# libx264 settings beyond the rate factor. Macroblock-tree rate control is off because with it the
# libx264 in PyAV's wheels is not deterministic: the same frames encoded twice gave different files
# (decoded frames up to ~59 grey levels apart); with mbtree=0, 8 of 8 encodes were byte-identical.
X264_OPTIONS = {"x264-params": "mbtree=0"}
# libx264 speed/size trade-offs, fastest first. At CRF 18 on a 10 s 1280x720 clip (2-core AMD EPYC):
# medium 4.7 s / 2.3 MiB, veryfast 3.0 s / 3.0 MiB, ultrafast 1.4 s / 5.8 MiB. ``veryfast`` is the
# default: within a render the encoder shares the cores with the models (see the README's speed table).
X264_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow")
DEFAULT_PRESET = "veryfast"
# AAC bit rate in bits per second (speech).
AAC_BIT_RATE = 128_000
# Samples handed to the AAC encoder at a time (its frame size).
AAC_CHUNK = 1024


def pick_h264_encoder() -> str:
    """Name of the first H.264 encoder this FFmpeg build offers (libx264 preferred)."""
    for name in H264_ENCODERS:
        try:
            av.codec.Codec(name, "w")
        except (av.FFmpegError, ValueError):
            continue
        return name
    raise Unit2AVError("no H.264 encoder in this FFmpeg build (PyAV); install a PyAV wheel with libx264")


def check_preset(preset: str, path=None) -> str:
    """``preset`` if it is one of ``X264_PRESETS``; else a one-line ``Unit2AVError`` listing them."""
    if preset not in X264_PRESETS:
        raise fail(path, f"unknown encoder preset '{preset}' (choose one of {', '.join(X264_PRESETS)})")
    return preset


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
        preset: libx264 speed/size trade-off (``X264_PRESETS``; faster = larger file at the same quality).

    Raises:
        Unit2AVError: an unknown preset.
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
        preset: str = DEFAULT_PRESET,
    ):
        if audio is not None and not audio_rate:
            raise ValueError("audio_rate is required with audio")
        check_preset(preset, path)
        self.preset = preset
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
                self._vstream.options = {"crf": str(self.crf), "preset": self.preset, **X264_OPTIONS}  # deterministic
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
    "DEFAULT_CRF",
    "DEFAULT_PRESET",
    "X264_OPTIONS",
    "X264_PRESETS",
    "VideoWriter",
    "check_preset",
    "pick_h264_encoder",
]
