"""96x96 mouth crops (``<stem>.lip.mp4``) for mAV-HuBERT, made the way AV2AV's inputs were made.

    summary = make_mouth_crops("talk.mp4", "talk.lip.mp4")               # detect, landmarks, align, crop
    summary = make_mouth_crops("talk.mp4", None, return_gray=True)       # summary.gray: (T, 96, 96) uint8
    summary = make_mouth_crops("talk.mp4", "talk.lip.mp4", boxes="talk.bbox.pkl")  # start from given boxes

AV2AV made its crops with Auto-AVSR's preparation (its author, AV2AV issue #6): face box ->
68 landmarks -> per frame, landmarks averaged over a centred window of +-6 frames (moved back onto
the frame's own centroid) -> similarity transform (robust least-median fit, no shear) of 8 stable
points (nose bridge and tip, eye corners, mouth corners) onto a mean face on a 256x256 canvas ->
the 96x96 window centred on the transformed mouth points. Colour crops at 25 fps, one per frame.
Our landmarks come from dlib's 68-point model (``prepare.landmarks``) instead of Auto-AVSR's FAN
network; AV-HuBERT's own script (5 stable points, a forward window of 12) matches the provided
sample crops worse (mean absolute error 7.3 against 3.8 grey levels, same landmarks).
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from ..errors import fail
from ..timing import FACE_SIZE, VIDEO_FPS
from . import landmarks as lm
from . import track as ft

log = logging.getLogger(__name__)

SMOOTH_HALF = 6  # frames each side of the landmark average (Auto-AVSR's window_margin 12 // 2)
CANVAS = 256  # side of the aligned face canvas the mouth is cut from
STABLE_POINTS = (28, 33, 36, 39, 42, 45, 48, 54)  # nose bridge, nose tip, eye corners, mouth corners
# Those 8 points of the mean face ``20words_mean_face.npy`` (68 x 2, on the 256x256 canvas) of
# Pingchuan Ma's lip-reading preparation, as shipped in mpc001/auto_avsr (Apache-2.0), whose
# retinaface preparation AV2AV used; only these 16 numbers are used.
REFERENCE_POINTS = np.array(
    [
        (128.48854473271905, 106.92459505614299),  # 28
        (128.87017960974802, 137.30253355584708),  # 33
        (92.52245552947952, 94.36876013925871),  # 36
        (112.7724172413806, 94.94360869870115),  # 39
        (145.52511509158018, 94.5349986248377),  # 42
        (166.67710071343456, 93.56562295717796),  # 45
        (107.16760614090083, 157.19606764242243),  # 48
        (152.19284005377082, 156.98711116207943),  # 54
    ]
)


@dataclass
class MouthCrops:
    """What ``make_mouth_crops`` did."""

    path: Path | None  # the .lip.mp4 written (None when only the array was asked for)
    num_frames: int  # crops made = video frames
    detected: int  # frames whose landmarks were found (the others were interpolated)
    gray: np.ndarray | None = None  # (T, 96, 96) uint8 grayscale crops before encoding, if asked for
    seconds: float = 0.0  # wall time

    @property
    def interpolated(self) -> int:
        """Frames whose landmarks were interpolated from their neighbours."""
        return self.num_frames - self.detected


def smooth_landmarks(points: np.ndarray, half: int = SMOOTH_HALF) -> np.ndarray:
    """Average each frame's landmarks over +-``half`` frames (fewer near the ends), keeping its centroid.

    Args:
        points: ``(N, 68, 2)`` without NaN.
        half: frames each side.

    Returns:
        ``(N, 68, 2)``: the window mean, shifted so that its centroid is the frame's own.
    """
    points = np.asarray(points, dtype=np.float64)
    n = len(points)
    csum = np.concatenate([np.zeros((1,) + points.shape[1:]), np.cumsum(points, axis=0)])
    idx = np.arange(n)
    k = np.minimum(np.minimum(idx, n - 1 - idx), half)  # symmetric window, shrinking at the ends
    mean = (csum[idx + k + 1] - csum[idx - k]) / (2 * k + 1)[:, None, None]
    return mean + (points.mean(axis=1) - mean.mean(axis=1))[:, None, :]


def _similarity_lstsq(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity ``(2, 3)`` mapping ``src`` (K, 2) onto ``dst`` (K, 2)."""
    a = np.zeros((2 * len(src), 4))
    a[0::2] = np.stack([src[:, 0], -src[:, 1], np.ones(len(src)), np.zeros(len(src))], axis=1)
    a[1::2] = np.stack([src[:, 1], src[:, 0], np.zeros(len(src)), np.ones(len(src))], axis=1)
    (p, q, tx, ty), *_ = np.linalg.lstsq(a, dst.reshape(-1), rcond=None)
    return np.array([[p, -q, tx], [q, p, ty]])


def align_transform(points: np.ndarray) -> np.ndarray:
    """Similarity transform ``(2, 3)`` taking a face's landmarks ``(68, 2)`` onto the 256x256 mean face."""
    src = np.asarray(points, dtype=np.float64)[list(STABLE_POINTS)]
    m, _ = cv2.estimateAffinePartial2D(src, REFERENCE_POINTS, method=cv2.LMEDS)
    return m if m is not None else _similarity_lstsq(src, REFERENCE_POINTS)


def crop_mouth(frame: np.ndarray, points: np.ndarray, size: int = FACE_SIZE) -> np.ndarray:
    """The aligned ``size`` x ``size`` mouth crop of one frame.

    Args:
        frame: ``(H, W, 3)`` uint8 BGR.
        points: ``(68, 2)`` smoothed landmarks of this frame (``smooth_landmarks``).
        size: crop side (96).

    Returns:
        ``(size, size, 3)`` uint8 BGR: the frame warped onto the 256x256 mean-face canvas (bilinear,
        black outside the frame), cut around the transformed mouth points' mean (rounded, kept inside
        the canvas).
    """
    m = align_transform(points)
    mouth = np.asarray(points, dtype=np.float64)[lm.MOUTH] @ m[:, :2].T + m[:, 2]
    cx, cy = mouth.mean(axis=0)
    x0 = int(round(min(max(cx - size / 2, 0), CANVAS - size)))
    y0 = int(round(min(max(cy - size / 2, 0), CANVAS - size)))
    shifted = m - np.array([[0, 0, x0], [0, 0, y0]])  # warp straight into the window: same pixels, less work
    return cv2.warpAffine(
        frame, shifted, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0
    )


def _frame_ranges(mask: np.ndarray) -> str:
    runs = ft.true_runs(mask)
    text = ", ".join(f"{s}" if e - s == 1 else f"{s}-{e - 1}" for s, e in runs[:8])
    return text + (f" and {len(runs) - 8} more" if len(runs) > 8 else "")


def complete_landmarks(points: np.ndarray, max_gap: int, source) -> np.ndarray:
    """Interpolate short gaps of a landmark track; refuse a track with long ones, naming the frames.

    Args:
        points: ``(N, 68, 2)`` with NaN rows where no face was found.
        max_gap: longest run of frames to interpolate (a run at either end repeats its neighbour).
        source: the video, for the message.

    Raises:
        Unit2AVError: no face in any frame, or runs longer than ``max_gap`` (frames named, 0-based).
    """
    missing = np.isnan(points).any(axis=(1, 2))
    if missing.all():
        raise fail(source, f"no face found for the mouth crops in any of its {len(points)} frames")
    filled = lm.fill_landmark_gaps(points, max_gap)
    left = np.isnan(filled).any(axis=(1, 2))
    if left.any():
        raise fail(
            source,
            f"no face found for the mouth crops in frames {_frame_ranges(left)} (0-based; gaps "
            f"over {max_gap} frames are not interpolated: raise --max-gap or cut those frames)",
        )
    return filled


def _source_landmarks(video: Path, boxes, landmarks: np.ndarray | None, detect, progress: bool) -> np.ndarray:
    """The landmarks to crop from: those given, else found from the given boxes, else detected.

    Args:
        video: the talking-face video.
        boxes: a ``.bbox.pkl`` path or a box list (one ``[x1, y1, x2, y2]`` or ``None`` per frame), or ``None``.
        landmarks: ``(N, 68, 2)`` landmarks already found, or ``None``.
        detect: ``faces.DetectOptions`` for a detection.
        progress: show progress bars.

    Returns:
        ``(N, 68, 2)`` float64, NaN rows where no face was found.
    """
    from .faces import detect_video

    if landmarks is None and boxes is not None:
        if isinstance(boxes, (str, os.PathLike)):
            from ..io.boxes import read_boxes

            boxes = read_boxes(boxes)
        landmarks = lm.landmarks_for_track(video, ft.from_box_list(boxes), progress=progress)
    elif landmarks is None:
        landmarks = detect_video(video, detect, progress=progress, landmarks=True).landmarks
    return np.asarray(landmarks, dtype=np.float64)


def _crop_frames(
    video: Path, smoothed: np.ndarray, out_lip_path, return_gray: bool, progress: bool
) -> tuple[int, np.ndarray | None]:
    """Decode the video and crop each frame's mouth; write the crops and/or keep them as grayscale.

    Args:
        video: the talking-face video.
        smoothed: ``(N, 68, 2)`` complete, smoothed landmarks, one row per frame.
        out_lip_path: the ``.lip.mp4`` to write (25 fps, atomically), or ``None``.
        return_gray: also keep the crops as ``(N, 96, 96)`` uint8 grayscale.
        progress: show a progress bar.

    Returns:
        ``(crops made, gray crops or None)``.

    Raises:
        Unit2AVError: the video has more or fewer frames than ``smoothed`` has rows.
    """
    from ..io.media import iter_frames
    from ..io.video_writer import VideoWriter

    gray = np.empty((len(smoothed), FACE_SIZE, FACE_SIZE), np.uint8) if return_gray else None
    count = 0
    with tqdm(total=len(smoothed), desc="mouth", unit="frame", disable=not progress) as bar:
        writer = VideoWriter(out_lip_path, FACE_SIZE, FACE_SIZE, fps=VIDEO_FPS) if out_lip_path else None
        with writer if writer else contextlib.nullcontext():
            for frame in iter_frames(video):
                if count >= len(smoothed):
                    raise fail(video, f"decoded more frames than the {len(smoothed)} landmarks")
                crop = crop_mouth(frame, smoothed[count])
                if writer:
                    writer.write(crop)
                if gray is not None:
                    gray[count] = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY)
                count += 1
                bar.update(1)
            if count != len(smoothed):
                raise fail(video, f"decoded {count} frames but have landmarks for {len(smoothed)}")
    return count, gray


def make_mouth_crops(
    video_path: str | os.PathLike,
    out_lip_path: str | os.PathLike | None = None,
    boxes=None,
    landmarks: np.ndarray | None = None,
    detect=None,
    max_gap: int | None = None,
    return_gray: bool = False,
    progress: bool = True,
) -> MouthCrops:
    """Make the 96x96 mouth crops of a video; write them as ``.lip.mp4`` and/or return them.

    Args:
        video_path: the talking-face video.
        out_lip_path: the ``.lip.mp4`` to write (H.264, 25 fps, one crop per video frame, written
            atomically); ``None``: write nothing.
        boxes: face boxes to start the landmarks from (a ``.bbox.pkl`` path or a list with one
            ``[x1, y1, x2, y2]`` or ``None`` per frame); ``None``: detect and track the face.
        landmarks: ``(N, 68, 2)`` landmarks already found (e.g. ``detect_video(...).landmarks``;
            NaN rows = no face); skips detection.
        detect: ``faces.DetectOptions`` for the detection (default options).
        max_gap: longest run of frames without a face to interpolate (default: ``detect.max_gap``, 10).
        return_gray: also return the crops as ``(T, 96, 96)`` uint8 grayscale (OpenCV's BGR->GRAY,
            computed before encoding).
        progress: show progress bars.

    Returns:
        A ``MouthCrops`` summary.

    Raises:
        Unit2AVError: the landmark model is not installed (names the extra), the video cannot be
            read, no face in any frame or gaps longer than ``max_gap`` (the frames are named).
    """
    from ..io.media import probe_video
    from .faces import DetectOptions

    start = time.perf_counter()
    video = Path(video_path)
    detect = detect or DetectOptions()
    max_gap = detect.max_gap if max_gap is None else max_gap
    lm.landmark_model_path()  # one-line error naming the extra before any work
    info = probe_video(video)
    if abs(info.fps - VIDEO_FPS) > 0.01:
        log.warning("%s: %.2f frames/s; the crops are written one per frame at %d frames/s", video, info.fps, VIDEO_FPS)
    landmarks = _source_landmarks(video, boxes, landmarks, detect, progress)
    detected = int((~np.isnan(landmarks).any(axis=(1, 2))).sum())
    smoothed = smooth_landmarks(complete_landmarks(landmarks, max_gap, video))
    count, gray = _crop_frames(video, smoothed, out_lip_path, return_gray, progress)
    result = MouthCrops(
        Path(out_lip_path) if out_lip_path else None, count, detected, gray, time.perf_counter() - start
    )
    log.info(
        "%s: %d mouth crops (%d frames interpolated) in %.1f s",
        result.path or video,
        count,
        result.interpolated,
        result.seconds,
    )
    return result


__all__ = [
    "MouthCrops",
    "REFERENCE_POINTS",
    "STABLE_POINTS",
    "align_transform",
    "complete_landmarks",
    "crop_mouth",
    "make_mouth_crops",
    "smooth_landmarks",
]
