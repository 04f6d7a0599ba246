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
    """The bundled vocoder (weight norm removed) and face renderer, in eval mode."""
    from ..face.model import FaceRenderer
    from ..io.checkpoints import face_state, open_container
    from ..vocoder.checkpoint import load_vocoder

    vocoder = load_vocoder(asset("vocoder.pt"), device=device).remove_weight_norm()
    path = asset("face_renderer.pt")
    state = face_state(open_container(path), path)
    face = FaceRenderer(*state["unit_embed.weight"].shape)  # (units, width) of the bundled model
    face.load_released(state)
    return vocoder, face.to(device).eval()


def speak(vocoder, script: dict, device) -> tuple[np.ndarray, torch.Tensor, list[tuple[int, int, int]]]:
    """Speech of every sentence in its voice, with pauses.

    Returns:
        ``(wav (T,), codes (T / 320,), spans)``: spans are (first unit, end unit, voice index).
    """
    from ..vocoder.speech import synthesize_chunked

    voices = [torch.tensor(script["voices"][v]["embedding"]).view(1, 1, -1).to(device) for v in script["order"]]
    pause = int(PAUSE_S * 50)
    silence = torch.full((pause,), int(script["silence_unit"]), dtype=torch.long)
    hop = int(np.prod(vocoder.config.upsample_rates))
    wavs, codes, spans, pos = [], [], [], 0
    for sentence in script["sentences"]:
        v = script["order"].index(sentence["voice"])
        wav, expanded = synthesize_chunked(vocoder, torch.tensor(sentence["units"]), voices[v], dur_prediction=True)
        wavs += [wav, np.zeros(pause * hop, np.float32)]
        codes += [expanded, silence]
        spans.append((pos, pos + expanded.numel(), v))
        pos += expanded.numel() + pause
    wav = np.concatenate(wavs)
    return wav / max(1.0, float(np.abs(wav).max()) / 0.95), torch.cat(codes), spans


@torch.inference_mode()
def animate(face_model, codes: torch.Tensor, frames: list[np.ndarray], boxes: list) -> list[np.ndarray]:
    """Generated 96x96 faces (uint8 BGR) for every frame: units in windows of 10 frames."""
    from ..face.model import FRAMES_PER_WINDOW
    from ..pipeline.paste import clip_box, crop_windows, faces_to_uint8
    from ..pipeline.timeline import num_windows, unit_windows

    n = len(frames)
    windows = unit_windows(codes, num_windows(n))  # (W, 20)
    pad = windows.shape[0] * FRAMES_PER_WINDOW - n
    frames, boxes = frames + [frames[-1]] * pad, boxes + [boxes[-1]] * pad
    h, w = frames[0].shape[:2]
    clipped = [clip_box(b, w, h) for b in boxes]
    device = next(face_model.parameters()).device
    out = []
    for w0 in range(0, windows.shape[0], 8):  # 8 windows per forward
        sl = slice(w0 * FRAMES_PER_WINDOW, (w0 + 8) * FRAMES_PER_WINDOW)
        faces = torch.from_numpy(crop_windows(frames[sl], clipped[sl])).to(device)
        out += list(faces_to_uint8(face_model(windows[w0:w0 + 8].to(device), faces)))
    return out[:n]


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


def preview_image(frames, boxes, generated, last: int) -> np.ndarray:
    """Source face crops (top row) above the generated ones (bottom row): frames evenly spread
    over the first sentence and the pause after it (frame ``last``), so the mouth opens and closes."""
    from ..pipeline.paste import clip_box

    h, w = frames[0].shape[:2]
    picks = np.linspace(0, min(last, len(frames) - 1), PREVIEW_FRAMES).round().astype(int)
    crops = []
    for i in picks:
        x1, y1, x2, y2 = clip_box(boxes[i], w, h)
        crops.append(cv2.resize(frames[i][y1:y2, x1:x2], (96, 96), interpolation=cv2.INTER_AREA))
    top = np.concatenate(crops, axis=1)
    bottom = np.concatenate([generated[i] for i in picks], axis=1)
    img = np.concatenate([top, np.full((4, top.shape[1], 3), 255, np.uint8), bottom])
    return cv2.resize(img, None, fx=PREVIEW_SCALE, fy=PREVIEW_SCALE, interpolation=cv2.INTER_NEAREST)


def run_video_demo(out_dir: str | os.PathLike = "demo", device: str = "auto",
                   script: dict | None = None) -> VideoDemoResult:
    """Write ``demo.mp4``, ``preview.png`` and ``spectrogram.png`` into ``out_dir``.

    Args:
        out_dir: output folder (created).
        device: ``"auto"``, ``"cpu"``, ``"cuda"``.
        script: sentences and voices (default: the bundled ``demo_script.json``): ``{"voices":
            {name: {"embedding": [256 floats]}}, "order": [voice names], "silence_unit": int,
            "sentences": [{"text", "voice", "units": [deduplicated ids]}]}``.
    """
    from ..devices import resolve_device
    from ..io.media import VideoWriter
    from ..io.safe import write_bytes_atomic
    from ..pipeline.paste import clip_box, paste_face
    from .talking_face import FPS, FRAME_SIZE, base_face, render_clip

    dev = resolve_device(device)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    script = script or json.loads(asset("demo_script.json").read_text())
    vocoder, face_model = load_default_models(dev)
    wav, codes, spans = speak(vocoder, script, dev)
    sr = int(vocoder.config.sampling_rate)
    frames, boxes, _ = render_clip(np.zeros_like(wav), base_face("astronaut"), seed=1)  # still face, drifting
    generated = animate(face_model, codes, frames, boxes)
    video = out / "demo.mp4"
    with VideoWriter(video, FRAME_SIZE, FRAME_SIZE, fps=FPS, audio=wav, audio_rate=sr) as writer:
        for frame, box, face in zip(frames, boxes, generated):
            frame = frame.copy()
            paste_face(frame, face, clip_box(box, FRAME_SIZE, FRAME_SIZE))
            writer.write(frame)
    hop = len(wav) // max(1, codes.numel())
    pause_end = (spans[1][0] if len(spans) > 1 else spans[0][1]) // 2 - 1  # units -> frames
    for name, img in (("preview.png", preview_image(frames, boxes, generated, pause_end)),
                      ("spectrogram.png", spectrogram_image(wav, spans, sr, hop))):
        ok, data = cv2.imencode(".png", img)
        write_bytes_atomic(out / name, data.tobytes())
    log.info("demo: %.1f s of speech, %d frames", len(wav) / sr, len(frames))
    return VideoDemoResult(video, out / "preview.png", out / "spectrogram.png", len(wav) / sr, len(frames))


__all__ = ["VideoDemoResult", "asset", "load_default_models", "run_video_demo"]
