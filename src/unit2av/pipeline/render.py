"""Unit2AV inference: units + source video + face boxes -> a dubbed, lip-synced video.

    from unit2av import render
    render("U.txt", "V.mp4", "V.bbox.pkl", "O.mp4", tgt_lang="ko", unit2av_path="unit_av_renderer.pt")

Steps: units (deduplicated, durations predicted) -> speech in the source speaker's voice ->
``render_video``: expanded units -> face renderer, a batch of windows at a time, streamed from the
frame source to the encoder so memory does not grow with the video's length (see ``timeline``
and ``paste``); when it pays (``overlap_pays``: a GPU, or spare CPU cores) decoding, the
renderer and pasting + encoding run at the same time in three threads, at most
``PIPELINE_BATCHES`` batches alive. ``unit2av demo`` calls ``render_video`` too,
with frames held in memory.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from ..devices import resolve_device
from ..errors import fail
from ..face.checkpoint import load_face_renderer
from ..face.model import FaceRenderer
from ..io.boxes import Box, load_boxes
from ..io.checkpoints import open_container
from ..io.media import probe_video
from ..io.units import read_units
from ..io.video_writer import DEFAULT_PRESET, VideoWriter, check_preset
from ..runtime.fast import fast_face_renderer, fast_vocoder
from ..timing import FRAMES_PER_WINDOW, VIDEO_FPS, check_unit_rate
from ..vocoder.checkpoint import vocoder_from_container
from ..vocoder.model import UnitVocoder
from ..vocoder.speech import synthesize_chunked
from .frames import FrameList, FrameReader
from .paste import BLENDS
from .speaker import resolve_speaker
from .stream import PIPELINE_BATCHES, _Batch, _batches, _emit, _infer, _overlapped
from .timeline import frame_schedule, num_output_frames, num_windows, unit_windows

log = logging.getLogger(__name__)

DEFAULT_BATCH_FRAMES = 80  # frames per face-renderer forward (8 windows; Wav2Lip users pass 128 on a GPU)
SPARE_CORES = 2  # cores beyond torch's threads that decoding + H.264 encoding need for overlap to pay on the CPU


@dataclass
class RenderResult:
    """What ``render`` / ``render_video`` wrote."""

    path: Path  # the output video
    num_frames: int  # video frames written (25 fps)
    num_samples: int  # audio samples written
    sample_rate: int  # audio rate (the vocoder's)
    codes: torch.Tensor  # (T,) the expanded units that were voiced and rendered
    faces: dict[int, np.ndarray] = field(default_factory=dict)  # output frame -> (96, 96, 3) generated face, if kept
    wav: np.ndarray | None = None  # (num_samples,) float32 the speech that was muxed (before AAC encoding)


def load_renderer(
    path: str | os.PathLike,
    config: str | os.PathLike | None = None,
    lang: str | None = None,
    device: str | torch.device = "auto",
    backend: str = "auto",
) -> tuple[UnitVocoder, FaceRenderer]:
    """Load the vocoder for ``lang`` and the face renderer from an AV2AV container.

    The vocoder is loaded by ``unit2av.vocoder.checkpoint``'s one rule for its config (``config``,
    else the one stored in the container, else ``config.json`` beside it, else AV2AV's), the
    renderer by ``unit2av.face.checkpoint.load_face_renderer`` (its size read off its weights).

    Args:
        path: ``{"audio": {lang: sd}, "video": sd}`` checkpoint (``unit_av_renderer.pt``, or one
            ``unit2av pack`` wrote).
        config: vocoder config JSON overriding the stored one.
        lang: target language key (``None``: the only one, if the checkpoint has one).
        device: ``"auto"``, ``"cpu"``, ``"cuda"`` ...
        backend: inference path (``unit2av.runtime.fast.BACKENDS``): ``"auto"`` = whichever of the plain
            modules and the folded ones (two layouts, the same function) this machine runs fastest,
            measured once and cached (``unit2av.runtime.calibrate``); ``"eager"`` = the plain modules.

    Returns:
        ``(vocoder, face_renderer)`` in eval mode on ``device``; weight norm removed from the vocoder.

    Raises:
        Unit2AVError: unreadable file, missing language (the message lists those present), weights
            that do not fit, or a vocoder whose unit rate is not the face renderer's.
    """
    dev = resolve_device(device)
    container = open_container(path)
    vocoder = vocoder_from_container(container, path, config, lang).remove_weight_norm()
    check_unit_rate(vocoder.hop, vocoder.config.sampling_rate, path)
    face = load_face_renderer(container, source=path)
    return fast_vocoder(vocoder.to(dev), backend), fast_face_renderer(face.to(dev), backend)


def _cores() -> int:
    """CPU cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def overlap_pays(face: FaceRenderer) -> bool:
    """Whether decoding and encoding beside the face renderer can shorten a render.

    Yes when the renderer runs off the CPU, or when the CPU has ``SPARE_CORES`` beyond torch's
    threads. On a CPU whose cores torch's threads already fill, decoding and H.264 encoding do the
    same CPU work either way, and their threads interrupt the model's: on 2 cores with 2 torch
    threads a 10 s 1280x720 render took 0.88-0.98x as long overlapped as one batch after another.
    """
    if next(face.parameters()).device.type != "cpu":
        return True
    return _cores() >= torch.get_num_threads() + SPARE_CORES


def render_frames(
    face: FaceRenderer,
    source: FrameReader | FrameList,
    boxes: list[Box | None],
    windows: torch.Tensor,
    schedule: np.ndarray,
    writer: VideoWriter,
    num_frames: int,
    batch_windows: int,
    blend: str,
    keep: set[int] = frozenset(),
    overlap: bool | None = None,
) -> dict[int, np.ndarray]:
    """Decode, render and encode ``num_frames`` output frames, ``batch_windows`` windows at a time.

    Args:
        source: the source frames (``get(indices)``).
        boxes: one clipped box or ``None`` per source frame.
        windows: (W, 20) units per window.
        schedule: (W * 10,) source frame index per output frame (padded frames included).
        keep: output frames whose generated faces to return.
        overlap: decode, render and encode in three threads (``_overlapped``); the frames written are
            the same as with ``False`` (one batch after the other in this thread). ``None``: when
            ``overlap_pays``.

    Returns:
        {output frame: (96, 96, 3) uint8 BGR generated face} for the frames of ``keep`` that have a box.
    """
    kept: dict[int, np.ndarray] = {}
    batches = _batches(source, boxes, windows, schedule, batch_windows)
    with tqdm(total=num_frames, unit="frame", desc="render", disable=None) as bar:

        def emit(batch: _Batch) -> None:
            _emit(batch, writer, num_frames, blend, keep, kept, bar)

        if overlap_pays(face) if overlap is None else overlap:
            _overlapped(batches, lambda b: _infer(face, b), emit)
        else:
            for batch in batches:
                emit(_infer(face, batch))
    return kept


def render_video(
    face: FaceRenderer,
    wav: np.ndarray,
    sample_rate: int,
    codes: torch.Tensor,
    source: FrameReader | FrameList,
    boxes: list[Box | None],
    out_path: str | os.PathLike,
    batch_size: int = DEFAULT_BATCH_FRAMES,
    blend: str = "feather",
    keep_faces: set[int] = frozenset(),
    overlap: bool | None = None,
    preset: str = DEFAULT_PRESET,
) -> RenderResult:
    """Speech + its units + source frames and boxes -> the dubbed video (the core of ``render`` and the demo).

    Args:
        face: a loaded face renderer (eval mode).
        wav: (T * hop,) float speech in [-1, 1], ``hop`` samples per unit at 50 Hz.
        sample_rate: its rate.
        codes: (T,) the expanded 50 Hz units voiced in ``wav``.
        source: the source frames (``FrameReader`` of a video / still image, or ``FrameList``).
        boxes: one clipped box (``unit2av.io.boxes``) or ``None`` per source frame.
        out_path: the ``.mp4`` to write (H.264 + AAC, 25 fps, the source's frame size), atomically.
        batch_size: frames per renderer forward (rounded up to whole 10-frame windows).
        blend: ``"feather"`` or ``"hard"`` (see ``paste_face``).
        keep_faces: output frames whose generated 96x96 faces to return in ``RenderResult.faces``.
        overlap: decode, render and encode at the same time in three threads (the same frames as without;
            ``None``: when ``overlap_pays``).
        preset: the H.264 encoder's speed/size trade-off (``unit2av.io.video_writer.X264_PRESETS``).

    Raises:
        Unit2AVError: speech whose unit rate is not the video's, a bad paste mode or encoder preset.
    """
    if blend not in BLENDS:
        raise fail(None, f"unknown paste mode '{blend}' (choose {' or '.join(BLENDS)})")
    check_preset(preset)
    codes = codes.view(-1)
    check_unit_rate(len(wav) / max(1, codes.numel()), sample_rate)  # the speech and its units agree
    frames = num_output_frames(codes.numel())
    windows = unit_windows(codes, num_windows(frames))  # (W, 20)
    schedule = frame_schedule(windows.shape[0] * FRAMES_PER_WINDOW, source.num_frames, source.fps)
    log.info(
        "%d units -> %.2f s of speech, %d frames from %d source frames at %g fps",
        codes.numel(),
        len(wav) / sample_rate,
        frames,
        source.num_frames,
        source.fps,
    )
    batch_windows = max(1, -(-int(batch_size) // FRAMES_PER_WINDOW))
    size = (source.width, source.height)
    with VideoWriter(out_path, *size, fps=VIDEO_FPS, audio=wav, audio_rate=sample_rate, preset=preset) as writer:
        kept = render_frames(
            face, source, boxes, windows, schedule, writer, frames, batch_windows, blend, set(keep_faces), overlap
        )
    return RenderResult(Path(out_path), frames, len(wav), sample_rate, codes, kept, wav=wav)


def render(
    in_unit_path: str | os.PathLike,
    in_vid_path: str | os.PathLike,
    in_bbox_path: str | os.PathLike,
    out_vid_path: str | os.PathLike,
    tgt_lang: str | None,
    unit2av_path: str | os.PathLike,
    config: str | os.PathLike | None = None,
    speaker_encoder=None,
    speaker_wav: str | os.PathLike | None = None,
    dur_prediction: bool = True,
    device: str | torch.device = "auto",
    batch_size: int = DEFAULT_BATCH_FRAMES,
    blend: str = "feather",
    models: tuple[UnitVocoder, FaceRenderer] | None = None,
    backend: str = "auto",
    overlap: bool | None = None,
    preset: str = DEFAULT_PRESET,
) -> RenderResult:
    """Render a dubbed, lip-synced video (the seed's ``inference_unit2av.py``).

    Args:
        in_unit_path: ``.txt`` of space-separated unit ids, or a ``.pt`` with ``"code"``.
        in_vid_path: source video (any frame rate; a still image works) with its audio track.
        in_bbox_path: face-box pickle, one ``[x1, y1, x2, y2]`` or ``None`` per source frame.
        out_vid_path: output ``.mp4`` (H.264 + AAC, 25 fps, the source's frame size); written atomically.
        tgt_lang: language of the vocoder in the AV2AV checkpoint.
        unit2av_path: the AV2AV container ``{"audio": {lang: sd}, "video": sd}``.
        config: vocoder config JSON (``None``: the one stored in / beside the container, else AV2AV's).
        speaker_encoder: ``SpeakerEncoder`` or path to GE2E weights (``None``: Resemblyzer's).
        speaker_wav: voice reference instead of the video's own audio track.
        dur_prediction: deduplicate units and predict durations (False: units already carry them).
        device: ``"auto"`` (CUDA when available), ``"cpu"``, ...
        batch_size: frames per renderer forward (rounded up to whole 10-frame windows).
        blend: ``"feather"`` (seam-hiding) or ``"hard"`` (the reference's paste).
        models: already loaded ``(vocoder, face_renderer)`` (skips ``load_renderer``; used as given).
        backend: inference path for ``load_renderer`` (see there).
        overlap: decode, render and encode at the same time (see ``render_video``).
        preset: the H.264 encoder's speed/size trade-off (see ``render_video``).

    Raises:
        Unit2AVError: any bad input (one line naming the file); no output is left behind.
    """
    if blend not in BLENDS:
        raise fail(None, f"unknown paste mode '{blend}' (choose {' or '.join(BLENDS)})")
    check_preset(preset)
    in_vid_path = Path(in_vid_path)
    info = probe_video(in_vid_path)
    boxes = load_boxes(in_bbox_path, info.num_frames, info.width, info.height, in_vid_path)
    vocoder, face = models if models is not None else load_renderer(unit2av_path, config, tgt_lang, device, backend)
    sample_rate = int(vocoder.config.sampling_rate)
    check_unit_rate(vocoder.hop, sample_rate, unit2av_path)
    units = read_units(
        in_unit_path, num_embeddings=min(vocoder.dict.num_embeddings, face.num_embeddings), deduplicate=dur_prediction
    )
    voice = Path(speaker_wav) if speaker_wav is not None else in_vid_path if info.has_audio else None
    if voice is None and units.spkr is None and vocoder.speaker is not None:
        raise fail(in_vid_path, "has no audio track to take the speaker's voice from; pass --speaker-wav")
    dev = next(vocoder.parameters()).device
    spkr = resolve_speaker(
        vocoder, voice if voice is not None else units.spkr, speaker_encoder, dev, source=voice or in_unit_path
    )
    wav, codes = synthesize_chunked(vocoder, units.code, spkr, dur_prediction=dur_prediction)
    reader = FrameReader(in_vid_path, info)
    try:
        return render_video(
            face,
            wav,
            sample_rate,
            codes,
            reader,
            boxes,
            out_vid_path,
            batch_size,
            blend,
            overlap=overlap,
            preset=preset,
        )
    finally:
        reader.close()


__all__ = [
    "DEFAULT_BATCH_FRAMES",
    "PIPELINE_BATCHES",
    "RenderResult",
    "load_renderer",
    "overlap_pays",
    "render",
    "render_video",
]
