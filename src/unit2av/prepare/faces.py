"""Face boxes for a video: detect, follow one face, fill gaps, smooth, reshape.

    opts = DetectOptions(detector="auto", box_style="av2av", smooth=5, max_gap=10)
    result = detect_video("in.mp4", opts)          # DetectResult: .boxes (seed format), .fps, ...
    write_boxes(result.boxes, "in.bbox.pkl")       # unit2av.io.boxes: the one box-file reader/writer
    boxes = read_boxes("in.bbox.pkl")              # safe: never runs code from the file

The detectors' weights ship inside installed packages (nothing is downloaded): OpenCV's Haar
cascade (``opencv-python-headless`` 4.x) and dlib's HOG detector (``pip install dlib-bin``; the
default when installed: on the sample clip it found 70/70 faces at ~200 frames/s against Haar's
67/70 at ~75 frames/s).
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from ..errors import fail
from . import landmarks as lm
from . import track as ft

log = logging.getLogger(__name__)

DETECTORS = ("auto", "haar", "dlib")
# OpenCV cascade file (in cv2.data.haarcascades); "default" found the most frames on the sample.
HAAR_CASCADE = "haarcascade_frontalface_default.xml"
# Image pyramid step of the Haar detector (1.1 found 67/70 sample frames at ~95 fps; 1.2 only 63/70).
HAAR_SCALE_FACTOR = 1.1
# Overlapping hits a Haar detection needs (3 = OpenCV's default; fewer lets false faces through).
HAAR_MIN_NEIGHBORS = 3
# Smallest face the Haar detector searches for, as a fraction of the frame's shorter side
# (0.15: 34 px on 224x224; 0.1 found the same sample faces at half the speed).
MIN_FACE_FRACTION = 0.15


class HaarDetector:
    """OpenCV's frontal-face Haar cascade; ``__call__(frame_bgr (H, W, 3)) -> boxes (K, 4)``."""

    name = "haar"

    def __init__(
        self,
        cascade: str = HAAR_CASCADE,
        scale_factor: float = HAAR_SCALE_FACTOR,
        min_neighbors: int = HAAR_MIN_NEIGHBORS,
        min_face_fraction: float = MIN_FACE_FRACTION,
    ):
        path = Path(cv2.data.haarcascades) / cascade
        self.cascade = cv2.CascadeClassifier(str(path))
        if self.cascade.empty():
            raise fail(path, "cannot load the Haar cascade shipped with OpenCV")
        self.scale_factor = scale_factor
        self.min_neighbors = min_neighbors
        self.min_face_fraction = min_face_fraction

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        side = max(1, int(min(gray.shape) * self.min_face_fraction))
        found = self.cascade.detectMultiScale(
            gray, scaleFactor=self.scale_factor, minNeighbors=self.min_neighbors, minSize=(side, side)
        )
        boxes = np.asarray(found, dtype=np.float64).reshape(-1, 4)  # (K, 4) as x, y, w, h
        boxes[:, 2:] += boxes[:, :2]
        return boxes


class DlibDetector:
    """dlib's built-in HOG frontal-face detector; ``__call__(frame_bgr) -> boxes (K, 4)``."""

    name = "dlib"

    def __init__(self, upsample: int = 0):
        """Args:
        upsample: times dlib doubles the image first (0: faces of >= ~80 px; 1: >= ~40 px, 4x slower).
        """
        try:
            import dlib
        except ImportError as e:
            raise fail(None, "the dlib detector needs `pip install dlib-bin` (or use --detector haar)") from e
        self.detector = dlib.get_frontal_face_detector()
        self.upsample = upsample

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        rgb = np.ascontiguousarray(frame[:, :, ::-1])
        found = self.detector(rgb, self.upsample)
        return np.array([[r.left(), r.top(), r.right(), r.bottom()] for r in found], dtype=np.float64).reshape(-1, 4)


def dlib_available() -> bool:
    """True when the ``dlib`` module (from the ``dlib-bin`` wheel) can be imported."""
    import importlib.util

    return importlib.util.find_spec("dlib") is not None


def resolve_detector(name: str) -> str:
    """``"auto"`` -> ``"dlib"`` when installed (faster, found every sample frame), else ``"haar"``."""
    if name == "auto":
        return "dlib" if dlib_available() else "haar"
    return name


def make_detector(name: str = "auto"):
    """Build a detector by name (one of ``DETECTORS``)."""
    name = resolve_detector(name)
    if name == "haar":
        return HaarDetector()
    if name == "dlib":
        return DlibDetector()
    raise fail(None, f"unknown face detector {name!r} (choose from {', '.join(DETECTORS)})")


@dataclass
class DetectOptions:
    """How ``detect_video`` turns detections into one box per frame."""

    detector: str = "auto"  # "dlib" (needs dlib-bin) when installed, else "haar" (OpenCV); or name one
    box_style: str = "av2av"  # "av2av" tall calibrated boxes, "square", or "raw" detector boxes
    pads: tuple[int, int, int, int] = (0, 0, 0, 0)  # pixels added (top, bottom, left, right), as Wav2Lip
    smooth: int = 5  # moving-average window in frames (Wav2Lip's T = 5); 1 = --nosmooth
    max_gap: int = 10  # longest run of missed frames to interpolate (0.4 s at 25 fps)
    face_index: int | None = None  # follow the N-th face from the left instead of the largest
    largest: bool = False  # take the largest face of every frame (no continuity)
    batch_size: int = 16  # frames decoded and detected per step
    resize_factor: float = 1.0  # detect on frames shrunk by this factor (faster on large videos)
    clamp: bool = False  # clip boxes to the frame (the AV2AV format lets them fall slightly outside)


@dataclass
class DetectResult:
    """What ``detect_video`` found."""

    boxes: list = field(default_factory=list)  # seed format: float32 [x1, y1, x2, y2] or None per frame
    num_frames: int = 0  # frames decoded
    detected: int = 0  # frames where the tracked face was detected (before gap filling)
    detector: str = ""  # the detector that ran ("haar" or "dlib")
    seconds: float = 0.0  # wall time of decoding + detection
    landmarks: np.ndarray | None = None  # (N, 68, 2) of the tracked face (NaN: not detected), when computed
    box_source: str = ""  # "landmarks" or "detector" (how the av2av boxes were made)

    @property
    def missing(self) -> int:
        """Frames left without a box."""
        return sum(b is None for b in self.boxes)

    @property
    def fps(self) -> float:
        """Frames per second of decoding + detection."""
        return self.num_frames / self.seconds if self.seconds > 0 else 0.0


def detect_frames(frames, detector, resize_factor: float = 1.0) -> list[np.ndarray]:
    """Run ``detector`` on each frame of a batch.

    Args:
        frames: iterable of (H, W, 3) uint8 BGR frames.
        detector: a callable frame -> (K, 4) boxes (``HaarDetector``, ``DlibDetector``).
        resize_factor: shrink frames by this factor before detecting; boxes are scaled back.

    Returns:
        One ``(K, 4)`` float64 array per frame, in the original frame's pixels.
    """
    out = []
    for frame in frames:
        if resize_factor != 1.0:
            h, w = frame.shape[:2]
            small = cv2.resize(
                frame,
                (max(1, round(w / resize_factor)), max(1, round(h / resize_factor))),
                interpolation=cv2.INTER_AREA,
            )
            out.append(detector(small) * resize_factor)
        else:
            out.append(detector(frame))
    return out


def track_detections(detections: list[np.ndarray], opts: DetectOptions) -> np.ndarray:
    """Per-frame detections -> the tracked face's detector box per frame ``(N, 4)`` (NaN: none)."""
    return ft.track_one_face(detections, face_index=opts.face_index, largest=opts.largest, reacquire_after=opts.max_gap)


def postprocess(
    detections: list[np.ndarray], opts: DetectOptions, width: int, height: int, landmarks: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame detections -> one box per frame: track, fill gaps, smooth, restyle, pad.

    Args:
        landmarks: ``(N, 68, 2)`` landmarks of the tracked face (NaN: none); with them the ``av2av``
            style boxes the landmarks (``landmarks.av2av_boxes``) instead of offsetting the detector box.

    Returns:
        ``(raw, final)``: the tracked detector boxes and the finished boxes, both ``(N, 4)``
        with NaN rows for frames without a box.
    """
    raw = track_detections(detections, opts)
    by_landmarks = landmarks is not None and opts.box_style == "av2av"
    track = lm.av2av_boxes(landmarks) if by_landmarks else raw
    track = ft.fill_gaps(track, opts.max_gap)
    track = ft.smooth(track, opts.smooth)
    if not by_landmarks:
        track = ft.restyle(track, opts.box_style, opts.detector)
    track = ft.pad_boxes(track, opts.pads)
    return raw, (ft.clamp_boxes(track, width, height) if opts.clamp else track)


def detect_video(
    video: str | os.PathLike, opts: DetectOptions | None = None, progress: bool = True, landmarks: bool | None = None
) -> DetectResult:
    """Detect and follow one face through a video.

    Args:
        video: a video file (or a still image).
        opts: detection options (defaults: auto detector, av2av boxes, smoothing 5, gaps up to 10).
        progress: show a tqdm progress bar.
        landmarks: also predict 68 face landmarks of the tracked face (``result.landmarks``);
            ``None``: when the ``av2av`` style is asked and the landmark model is installed (the
            boxes are then made from landmarks; without the model, from the detector calibration).

    Returns:
        A ``DetectResult`` whose ``boxes`` is the seed's per-frame list.

    Raises:
        Unit2AVError: the video cannot be read, or an option is invalid.
    """
    from ..io.media import iter_frames, probe_video

    opts = opts or DetectOptions()
    _check_options(opts)
    opts = replace(opts, detector=resolve_detector(opts.detector))
    info = probe_video(video)
    detector = make_detector(opts.detector)
    if landmarks is None:
        landmarks = opts.box_style == "av2av" and lm.landmarks_available()
    if opts.box_style == "av2av":
        log.info(
            "av2av boxes from %s",
            "face landmarks"
            if landmarks
            else f"the {opts.detector} detector's calibration (for landmarks: pip install 'unit2av[{lm.MOUTH_EXTRA}]')",
        )
    detections: list[np.ndarray] = []
    start = time.perf_counter()
    batch: list[np.ndarray] = []
    with tqdm(total=info.num_frames, desc="faces", unit="frame", disable=not progress) as bar:
        for frame in iter_frames(video):
            batch.append(frame)
            if len(batch) >= opts.batch_size:
                detections += detect_frames(batch, detector, opts.resize_factor)
                bar.update(len(batch))
                batch = []
        if batch:
            detections += detect_frames(batch, detector, opts.resize_factor)
            bar.update(len(batch))
    if not detections:
        raise fail(video, "no frames could be decoded")
    points = lm.landmarks_for_track(video, track_detections(detections, opts), progress=progress) if landmarks else None
    seconds = time.perf_counter() - start
    raw, track = postprocess(detections, opts, info.width, info.height, landmarks=points)
    source = "landmarks" if landmarks and opts.box_style == "av2av" else "detector"
    result = DetectResult(
        ft.to_box_list(track),
        len(detections),
        int((~np.isnan(raw).any(axis=1)).sum()),
        opts.detector,
        seconds,
        landmarks=points,
        box_source=source,
    )
    log.info(
        "%s: %s detector, %d frames, %.1f frames/s, %d without a face",
        video,
        opts.detector,
        result.num_frames,
        result.fps,
        result.missing,
    )
    return result


def _check_options(opts: DetectOptions) -> None:
    if opts.detector not in DETECTORS:
        raise fail(None, f"unknown face detector {opts.detector!r} (choose from {', '.join(DETECTORS)})")
    if opts.box_style not in ft.BOX_STYLES:
        raise fail(None, f"unknown box style {opts.box_style!r} (choose from {', '.join(ft.BOX_STYLES)})")
    if opts.max_gap < 0 or opts.smooth < 1 or opts.batch_size < 1 or opts.resize_factor <= 0:
        raise fail(None, "--max-gap must be >= 0, --smooth and --batch-size >= 1, --resize-factor > 0")
    if opts.face_index is not None and opts.face_index < 0:
        raise fail(None, "--face-index must be >= 0")


__all__ = [
    "DETECTORS",
    "DetectOptions",
    "DetectResult",
    "DlibDetector",
    "HaarDetector",
    "detect_frames",
    "detect_video",
    "make_detector",
    "postprocess",
    "track_detections",
]
