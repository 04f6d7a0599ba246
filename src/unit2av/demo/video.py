"""``unit2av demo``: a dubbed talking-face video from bundled units, offline, in well under two minutes.

The bundled demo-grade models (``unit2av/assets``, see ``MODEL_CARD.md``) turn a few sentences of
deduplicated units into speech with predicted durations in two voices, and the face renderer
draws the mouth for every frame of a still portrait with a gently drifting head. Writes
``demo.mp4`` (H.264 + AAC), ``preview.png`` (source face crops above the generated ones) and
``spectrogram.png`` (log-mel of the soundtrack, one coloured bar per sentence).
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import cv2
import numpy as np
import torch

log = logging.getLogger(__name__)

PAUSE_S = 0.3  # silence between sentences
PREVIEW_FRAMES = 8  # frames in the preview strip
PREVIEW_SCALE = 2  # preview crops are drawn at 2 x 96 px
SPEC_HEIGHT = 240  # spectrogram image height in pixels
SPEC_PX_PER_S = 100  # spectrogram image width per second of audio
BAR_COLOURS = ((80, 180, 250), (250, 160, 60))  # BGR colour of each voice's sentence bar


@dataclass
class VideoDemoResult:
    """Paths the demo wrote and what it made."""

    video: Path
    preview: Path
    spectrogram: Path
    seconds: float  # length of the soundtrack
    frames: int


def asset(name: str) -> Path:
    """Path of a bundled asset file."""
    return Path(str(resources.files("unit2av.assets").joinpath(name)))


def load_default_models(device: str | torch.device = "cpu"):
    """The bundled vocoder (weight norm removed) and face renderer, in eval mode.

    They load through the same loaders as every other checkpoint (``load_vocoder``,
    ``load_face_renderer``).
    """
    from ..face.checkpoint import load_face_renderer
    from ..vocoder.checkpoint import load_vocoder

    vocoder = load_vocoder(asset("vocoder.pt"), device=device).remove_weight_norm()
    return vocoder, load_face_renderer(asset("face_renderer.pt"), device=device)


def speak(vocoder, script: dict, device) -> tuple[np.ndarray, torch.Tensor, list[tuple[int, int, int]]]:
    """Speech of every sentence in its voice, with pauses.

    Returns:
        ``(wav (T * hop,), codes (T,), spans)``: spans are (first unit, end unit, voice index).
    """
    from ..timing import UNIT_RATE
    from ..vocoder.speech import synthesize_chunked

    voices = [torch.tensor(script["voices"][v]["embedding"]).view(1, 1, -1).to(device) for v in script["order"]]
    pause = int(PAUSE_S * UNIT_RATE)
    silence = torch.full((pause,), int(script["silence_unit"]), dtype=torch.long)
    wavs, codes, spans, pos = [], [], [], 0
    for sentence in script["sentences"]:
        v = script["order"].index(sentence["voice"])
        wav, expanded = synthesize_chunked(vocoder, torch.tensor(sentence["units"]), voices[v], dur_prediction=True)
        wavs += [wav, np.zeros(pause * vocoder.hop, np.float32)]
        codes += [expanded, silence]
        spans.append((pos, pos + expanded.numel(), v))
        pos += expanded.numel() + pause
    wav = np.concatenate(wavs)
    return wav / max(1.0, float(np.abs(wav).max()) / 0.95), torch.cat(codes), spans


def spectrogram_image(wav: np.ndarray, spans, sample_rate: int, hop: int) -> np.ndarray:
    """(H, W, 3) uint8 BGR log-mel image (low frequencies at the bottom) with a bar per sentence."""
    from ..spectral import MelSpectrogram

    mel = MelSpectrogram(sample_rate, 1024, 256, 1024, 80, 0, sample_rate // 2)(torch.from_numpy(wav)[None])[0]
    m = mel.numpy()[::-1]
    m = np.clip((m - m.max() + 8.0) / 8.0, 0, 1)  # 8 nats of dynamic range
    width = max(1, int(len(wav) / sample_rate * SPEC_PX_PER_S))
    img = cv2.applyColorMap(cv2.resize((m * 255).astype(np.uint8), (width, SPEC_HEIGHT)), cv2.COLORMAP_MAGMA)
    bars = np.full((14, width, 3), 255, np.uint8)
    for start, end, v in spans:
        x0, x1 = (int(u * hop / sample_rate * SPEC_PX_PER_S) for u in (start, end))
        bars[3:11, x0:x1] = BAR_COLOURS[v % len(BAR_COLOURS)]
    return np.concatenate([bars, img])


def preview_picks(last: int, num_frames: int) -> list[int]:
    """Frames for the preview: evenly spread over the first sentence and the pause after it (frame ``last``),
    so the mouth opens and closes."""
    return np.linspace(0, min(last, num_frames - 1), PREVIEW_FRAMES).round().astype(int).tolist()


def preview_image(frames, boxes, generated: dict[int, np.ndarray], picks: list[int]) -> np.ndarray:
    """Source face crops (top row) above the generated ones (bottom row) of the frames ``picks``.

    Args:
        frames, boxes: the source frames and their clipped boxes.
        generated: {frame: (96, 96, 3) generated face} (``RenderResult.faces``).
    """
    from ..io.boxes import crop_face

    top = np.concatenate([crop_face(frames[i], boxes[i]) for i in picks], axis=1)
    bottom = np.concatenate([generated[i] for i in picks], axis=1)
    img = np.concatenate([top, np.full((4, top.shape[1], 3), 255, np.uint8), bottom])
    return cv2.resize(img, None, fx=PREVIEW_SCALE, fy=PREVIEW_SCALE, interpolation=cv2.INTER_NEAREST)


def run_video_demo(
    out_dir: str | os.PathLike = "demo", device: str = "auto", script: dict | None = None
) -> VideoDemoResult:
    """Write ``demo.mp4``, ``preview.png`` and ``spectrogram.png`` into ``out_dir``.

    Args:
        out_dir: output folder (created).
        device: ``"auto"``, ``"cpu"``, ``"cuda"``.
        script: sentences and voices (default: the bundled ``demo_script.json``): ``{"voices":
            {name: {"embedding": [256 floats]}}, "order": [voice names], "silence_unit": int,
            "sentences": [{"text", "voice", "units": [deduplicated ids]}]}``.
    """
    from ..devices import resolve_device
    from ..io.boxes import clip_boxes
    from ..io.safe import write_bytes_atomic
    from ..pipeline.frames import FrameList
    from ..pipeline.render import render_video
    from ..timing import UNITS_PER_FRAME
    from .talking_face import FRAME_SIZE, base_face, render_clip

    dev = resolve_device(device)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    script = script or json.loads(asset("demo_script.json").read_text())
    vocoder, face_model = load_default_models(dev)
    wav, codes, spans = speak(vocoder, script, dev)
    sr = int(vocoder.config.sampling_rate)
    frames, boxes, _ = render_clip(np.zeros_like(wav), base_face("astronaut"), seed=1)  # still face, drifting
    boxes = clip_boxes(boxes, FRAME_SIZE, FRAME_SIZE)
    pause_end = (spans[1][0] if len(spans) > 1 else spans[0][1]) // UNITS_PER_FRAME - 1  # units -> frames
    picks = preview_picks(pause_end, len(frames))
    result = render_video(face_model, wav, sr, codes, FrameList(frames), boxes, out / "demo.mp4", keep_faces=picks)
    for name, img in (
        ("preview.png", preview_image(frames, boxes, result.faces, picks)),
        ("spectrogram.png", spectrogram_image(wav, spans, sr, vocoder.hop)),
    ):
        ok, data = cv2.imencode(".png", img)
        write_bytes_atomic(out / name, data.tobytes())
    log.info("demo: %.1f s of speech, %d frames", len(wav) / sr, result.num_frames)
    return VideoDemoResult(result.path, out / "preview.png", out / "spectrogram.png", len(wav) / sr, result.num_frames)


__all__ = ["VideoDemoResult", "asset", "load_default_models", "run_video_demo"]
