"""A synthetic talking-face dataset made offline: a still face whose mouth moves with the speech.

For every utterance (16 kHz speech) this writes a 25 fps, 224x224 video with the speech as its
audio track, a face-box pickle (the format users bring: one float32 ``[x1, y1, x2, y2]`` per
frame) and, given a k-means model, the 50 Hz units of the speech; ``manifest.jsonl`` lists them
for ``unit2av train-face``.

The face is a crop of the ``astronaut`` photograph that scikit-image ships (Eileen Collins,
NASA, public domain; bundled in ``unit2av/assets``) or a drawn face. Per frame (40 ms of audio):

- mouth opening = loudness (RMS in dB, mapped to 0..1), lightly smoothed over time;
- mouth shape = roundness from the share of low-frequency energy (rounded vowels such as /o/, /u/
  have a low second formant), which narrows the mouth;
- the jaw drops with the opening (a smooth image warp below the mouth), and the head drifts a few
  pixels, so boxes move from frame to frame.
"""

from __future__ import annotations

import json
import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..errors import Unit2AVError
from ..timing import SAMPLE_RATE, VIDEO_FPS

log = logging.getLogger(__name__)

SAMPLES_PER_FRAME = SAMPLE_RATE // VIDEO_FPS  # 640 samples = 40 ms
FRAME_SIZE = 224  # output frames are FRAME_SIZE x FRAME_SIZE (like the LRS3 sample)
CANVAS_MARGIN = 16  # pixels of face canvas around the output frame (room for head motion)
QUIET_DB, LOUD_DB = -45.0, -15.0  # RMS levels mapped to a closed (0) and a fully open (1) mouth
LOW_BAND_HZ = (80.0, 800.0)  # "low" energy band for the roundness cue
SPEECH_BAND_HZ = (80.0, 4000.0)  # band the low share is taken of
ROUND_LOW, ROUND_HIGH = 0.5, 0.9  # low-band shares mapped to roundness 0 and 1
SMOOTH = (0.25, 0.5, 0.25)  # temporal smoothing kernel of the mouth parameters
HEAD_DRIFT_PX = (2.5, 1.5)  # amplitude of the head's sinusoidal drift (x, y)
HEAD_PERIOD_S = (2.3, 3.1)  # periods of the drift (x, y)
BRIGHTNESS_JITTER = 0.08  # per-clip brightness factor in 1 +- this


@dataclass(frozen=True)
class FaceLayout:
    """Where things are on the face canvas (pixels of a (FRAME_SIZE + 2 * margin) square)."""

    mouth: tuple[float, float]  # mouth centre (x, y)
    mouth_half_width: float  # half width of a neutral mouth
    max_opening: float  # lip gap of a fully open mouth
    jaw_drop: float  # chin displacement of a fully open mouth
    chin_y: float  # jaw warp is full between the mouth and here, then fades
    face_sigma: float  # horizontal fall-off of the jaw warp (Gaussian sigma)
    box: tuple[float, float, float, float]  # face box on the canvas (tall, RetinaFace-like)


def _astronaut() -> tuple[np.ndarray, FaceLayout]:
    from importlib import resources

    # 256x256 crop (x 92..348, y 24..280) of scikit-image's data.astronaut(), stored losslessly
    data = resources.files("unit2av.assets").joinpath("astronaut_face.png").read_bytes()
    canvas = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)  # BGR
    m = CANVAS_MARGIN
    layout = FaceLayout(
        mouth=(116 + m, 105 + m),
        mouth_half_width=19.0,
        max_opening=15.0,
        jaw_drop=7.0,
        chin_y=140 + m,
        face_sigma=30.0,
        box=(62 + m, 22 + m, 162 + m, 150 + m),
    )
    # erase the photo's smile: fill the mouth area from the surrounding skin
    mask = np.zeros(canvas.shape[:2], np.uint8)
    cv2.ellipse(mask, (int(layout.mouth[0]), int(layout.mouth[1])), (25, 11), 0, 0, 360, 255, -1)
    return cv2.inpaint(canvas, mask, 7, cv2.INPAINT_TELEA), layout


def _drawn() -> tuple[np.ndarray, FaceLayout]:
    size = FRAME_SIZE + 2 * CANVAS_MARGIN
    c = size // 2
    canvas = np.full((size, size, 3), (200, 190, 180), np.uint8)  # grey-blue background (BGR)
    cv2.ellipse(canvas, (c, c - 5), (62, 80), 0, 0, 360, (60, 70, 110), -1, cv2.LINE_AA)  # hair
    cv2.ellipse(canvas, (c, c + 10), (52, 68), 0, 0, 360, (150, 175, 215), -1, cv2.LINE_AA)  # skin
    for dx in (-22, 22):
        cv2.ellipse(canvas, (c + dx, c - 8), (9, 5), 0, 0, 360, (250, 250, 250), -1, cv2.LINE_AA)
        cv2.circle(canvas, (c + dx, c - 8), 4, (60, 40, 30), -1, cv2.LINE_AA)
    cv2.line(canvas, (c, c - 2), (c - 4, c + 18), (110, 130, 175), 2, cv2.LINE_AA)  # nose
    layout = FaceLayout(
        mouth=(c, c + 38),
        mouth_half_width=18.0,
        max_opening=14.0,
        jaw_drop=7.0,
        chin_y=c + 74,
        face_sigma=28.0,
        box=(c - 50, c - 58, c + 50, c + 72),
    )
    return canvas, layout


FACES = {"astronaut": _astronaut, "drawn": _drawn}


def base_face(face: str = "astronaut") -> tuple[np.ndarray, FaceLayout]:
    """The still face canvas (H, W, 3) uint8 BGR and its layout."""
    if face not in FACES:
        raise Unit2AVError(f"unknown face {face!r} (choose {', '.join(FACES)})")
    return FACES[face]()


def _band_energy(power: np.ndarray, freqs: np.ndarray, band: tuple[float, float]) -> np.ndarray:
    sel = (freqs >= band[0]) & (freqs < band[1])
    return power[:, sel].sum(axis=1)


def mouth_track(wav: np.ndarray, sample_rate: int = SAMPLE_RATE) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame mouth opening and roundness driven by the speech.

    Args:
        wav: (T,) float speech at ``sample_rate`` (16 kHz).

    Returns:
        ``(opening, roundness)``, each (ceil(T / 640),) float32 in [0, 1].
    """
    if sample_rate != SAMPLE_RATE:
        raise Unit2AVError(f"mouth_track needs {SAMPLE_RATE} Hz speech, got {sample_rate}")
    n = max(1, math.ceil(len(wav) / SAMPLES_PER_FRAME))
    frames = np.zeros((n, SAMPLES_PER_FRAME), np.float32)
    flat = np.asarray(wav, np.float32).reshape(-1)
    frames.reshape(-1)[: flat.size] = flat[: n * SAMPLES_PER_FRAME]
    rms_db = 10 * np.log10(np.mean(frames**2, axis=1) + 1e-10)
    opening = np.clip((rms_db - QUIET_DB) / (LOUD_DB - QUIET_DB), 0, 1)
    power = np.abs(np.fft.rfft(frames * np.hanning(SAMPLES_PER_FRAME), axis=1)) ** 2  # (n, 321)
    freqs = np.fft.rfftfreq(SAMPLES_PER_FRAME, 1 / SAMPLE_RATE)
    share = _band_energy(power, freqs, LOW_BAND_HZ) / (_band_energy(power, freqs, SPEECH_BAND_HZ) + 1e-10)
    roundness = np.clip((share - ROUND_LOW) / (ROUND_HIGH - ROUND_LOW), 0, 1) * opening
    kernel = np.asarray(SMOOTH, np.float32)
    smooth = [np.convolve(np.pad(x, 1, mode="edge"), kernel, mode="valid") for x in (opening, roundness)]
    return smooth[0].astype(np.float32), smooth[1].astype(np.float32)


def _jaw_maps(layout: FaceLayout, size: int) -> tuple[np.ndarray, np.ndarray]:
    """(H, W) x-map and the (H, W) per-unit-opening downward displacement for ``cv2.remap``."""
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
    mx, my = layout.mouth
    fade = np.clip((ys - my) / 4.0, 0, 1) * np.clip(1 - (ys - layout.chin_y) / 25.0, 0, 1)  # 0 above mouth
    across = np.exp(-0.5 * ((xs - mx) / layout.face_sigma) ** 2)
    return xs, fade * across * layout.jaw_drop


def _draw_mouth(img: np.ndarray, layout: FaceLayout, opening: float, roundness: float) -> None:
    """Lips, dark mouth interior and upper teeth for one frame (in place, 4x sub-pixel precision)."""
    shift = 2  # cv2 fixed-point bits: coordinates in quarter pixels
    mx, my = layout.mouth
    w = layout.mouth_half_width * (1 - 0.35 * roundness) * (1 + 0.08 * opening)
    gap = 1.0 + opening * layout.max_opening
    t = np.linspace(-1, 1, 25)
    xs = mx + w * t
    upper = my - 1.5 - 2.5 * (1 - t**2) * (0.3 + opening)
    lower = my - 1.5 + gap * (1 - t**2) ** 0.8 + 0.5
    pts = lambda x, y: np.round(np.stack([x, y], 1) * (1 << shift)).astype(np.int32)  # noqa: E731
    inner = np.concatenate([pts(xs, upper), pts(xs[::-1], lower[::-1])])
    lip = (110, 115, 190)  # BGR lip colour (pinkish red)
    cv2.fillPoly(
        img, [np.concatenate([pts(xs, upper - 3.0), pts(xs[::-1], lower[::-1] + 3.5)])], lip, cv2.LINE_AA, shift
    )
    cv2.fillPoly(img, [inner], (40, 25, 60), cv2.LINE_AA, shift)
    if gap > 4:
        teeth = np.concatenate([pts(xs[4:-4], upper[4:-4]), pts(xs[4:-4][::-1], upper[4:-4][::-1] + gap * 0.25)])
        cv2.fillPoly(img, [teeth], (225, 230, 235), cv2.LINE_AA, shift)


def render_clip(
    wav: np.ndarray, face: tuple[np.ndarray, FaceLayout], seed: int = 0
) -> tuple[list[np.ndarray], list[np.ndarray], np.ndarray]:
    """Frames and boxes of a talking face saying ``wav`` (16 kHz).

    Returns:
        ``(frames, boxes, opening)``: (224, 224, 3) uint8 BGR frames at 25 fps, float32
        ``[x1, y1, x2, y2]`` per frame, and the (N,) ground-truth mouth opening.
    """
    canvas, layout = face
    size = canvas.shape[0]
    opening, roundness = mouth_track(wav)
    rng = np.random.default_rng(seed)
    phase = rng.uniform(0, 2 * np.pi, 2)
    gain = 1 + rng.uniform(-BRIGHTNESS_JITTER, BRIGHTNESS_JITTER)
    base = np.clip(canvas.astype(np.float32) * gain, 0, 255).astype(np.uint8)
    map_x, drop = _jaw_maps(layout, size)
    ys = np.mgrid[0:size, 0:size][0].astype(np.float32)
    frames, boxes = [], []
    for i, (o, r) in enumerate(zip(opening, roundness)):
        img = cv2.remap(base, map_x, ys - drop * o, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        _draw_mouth(img, layout, float(o), float(r))
        t = i / VIDEO_FPS
        dx = CANVAS_MARGIN + HEAD_DRIFT_PX[0] * math.sin(2 * math.pi * t / HEAD_PERIOD_S[0] + phase[0])
        dy = CANVAS_MARGIN + HEAD_DRIFT_PX[1] * math.sin(2 * math.pi * t / HEAD_PERIOD_S[1] + phase[1])
        shift = np.float32([[1, 0, -dx], [0, 1, -dy]])
        frames.append(
            cv2.warpAffine(
                img, shift, (FRAME_SIZE, FRAME_SIZE), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
            )
        )
        x1, y1, x2, y2 = layout.box
        boxes.append(np.asarray([x1 - dx, y1 - dy, x2 - dx, y2 - dy], np.float32))
    return frames, boxes, opening


def write_clip(
    wav: np.ndarray, out_stem: str | os.PathLike, face: tuple[np.ndarray, FaceLayout], seed: int = 0
) -> dict:
    """Write ``<stem>.mp4`` (with the speech as audio) and ``<stem>.bbox.pkl``; returns a record."""
    from ..io.boxes import write_boxes
    from ..io.video_writer import VideoWriter

    stem = Path(out_stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    frames, boxes, opening = render_clip(wav, face, seed)
    video, bbox = stem.with_suffix(".mp4"), stem.with_suffix(".bbox.pkl")
    with VideoWriter(video, FRAME_SIZE, FRAME_SIZE, fps=VIDEO_FPS, audio=wav, audio_rate=SAMPLE_RATE) as writer:
        for frame in frames:
            writer.write(frame)
    write_boxes(boxes, bbox)
    return {
        "video": str(video),
        "bbox": str(bbox),
        "num_frames": len(frames),
        "opening": [round(float(x), 4) for x in opening],
    }


def make_talking_faces(
    wavs: list[str | os.PathLike],
    out_dir: str | os.PathLike,
    kmeans_path=None,
    face: str = "astronaut",
    seed: int = 0,
    progress: bool = True,
) -> list[dict]:
    """A clip (video, boxes, units) for every 16 kHz wav, and ``out_dir/manifest.jsonl``.

    Args:
        wavs: speech files (``<spk>_<...>.wav``); the clip is named after the file.
        out_dir: output folder: ``<stem>.mp4``, ``<stem>.bbox.pkl``, ``<stem>.pt`` (units).
        kmeans_path: a k-means file for the units (``None``: no units, no manifest ``units``).
        face: ``"astronaut"`` (the bundled photograph) or ``"drawn"``.
        seed: head motion and brightness of clip ``i`` use ``seed + i``.

    Returns:
        One record per clip: ``video``, ``bbox``, ``units``, ``num_frames``, ``opening``.
    """
    from tqdm import tqdm

    from ..io.audio import load_audio
    from ..io.safe import save_torch, write_bytes_atomic

    out = Path(out_dir)
    base = base_face(face)
    km = extractor = None
    if kmeans_path is not None:
        from ..prepare.units import extract_units, extractor_for, load_kmeans

        km = load_kmeans(kmeans_path)
        extractor = extractor_for(km)
    records = []
    for i, wav_path in enumerate(tqdm(wavs, desc="talking faces", unit="clip", disable=not progress)):
        wav, _ = load_audio(wav_path, SAMPLE_RATE)
        stem = out / Path(wav_path).stem
        rec = write_clip(wav, stem, base, seed + i)
        if km is not None:
            save_torch(extract_units(km, wav_path, extractor=extractor), stem.with_suffix(".pt"))
            rec["units"] = str(stem.with_suffix(".pt"))
        records.append(rec)
    lines = [json.dumps({k: r[k] for k in ("video", "bbox", "units") if k in r}) for r in records]
    write_bytes_atomic(out / "manifest.jsonl", ("\n".join(lines) + "\n").encode())
    log.info("wrote %d talking-face clips under %s", len(records), out)
    return records


__all__ = ["FACES", "FaceLayout", "base_face", "make_talking_faces", "mouth_track", "render_clip", "write_clip"]
