"""Prepare one video for Unit2AV: 16 kHz audio, speaker embedding, face boxes and (optionally) units.

    result = prepare_video("talk.mp4", "prep/", kmeans="km.pt")
    result.wav, result.speaker, result.bbox, result.units    # paths of the files written
    line = render_command(result)                            # the `unit2av render ...` line to run next

Files written to ``out_dir`` (``<stem>`` = the video's file name without suffix):

- ``<stem>.wav``: the audio track, mono 16 kHz, 16-bit PCM;
- ``<stem>.spkr.pt``: FloatTensor (256,), the GE2E speaker embedding (L2-normalised);
- ``<stem>.bbox.pkl``: one ``[x1, y1, x2, y2]`` float32 box or ``None`` per frame;
- ``<stem>.lip.mp4`` (with the ``mouth`` extra): 96x96 mouth crops, one per frame, 25 fps (mAV-HuBERT's input);
- ``<stem>.pt`` (with ``kmeans``): ``{"code": LongTensor (len(wav) // 320,), "spkr": FloatTensor (256,)}``.
"""

from __future__ import annotations

import logging
import os
import shlex
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import fail
from ..timing import SAMPLE_RATE  # the prepared wav's rate (units and the speaker encoder use it)

log = logging.getLogger(__name__)


@dataclass
class PrepareResult:
    """Paths written by ``prepare_video`` (``units`` is ``None`` without a k-means file)."""

    video: Path
    wav: Path
    speaker: Path
    bbox: Path
    units: Path | None
    num_frames: int  # video frames (= entries in the box list)
    frames_without_face: int  # None entries in the box list
    lip: Path | None = None  # the mouth crops (.lip.mp4), None when not made
    lip_problem: str = ""  # why there are no mouth crops (empty when made or not asked for)


def prepare_video(
    video: str | os.PathLike,
    out_dir: str | os.PathLike,
    kmeans: str | os.PathLike | None = None,
    detect=None,
    speaker_encoder: str | os.PathLike | None = None,
    device: str = "cpu",
    progress: bool = True,
    lip: bool = True,
) -> PrepareResult:
    """Write the audio, speaker embedding, face boxes and units of one video.

    Args:
        video: the input video (must have an audio track).
        out_dir: folder for the outputs (created).
        kmeans: a k-means file from ``unit2av units fit``; ``None`` = no units.
        detect: ``unit2av.prepare.faces.DetectOptions`` for the boxes (``None``: defaults).
        speaker_encoder: speaker-encoder weights (``None``: Resemblyzer's GE2E weights, bundled with unit2av).
        device: where the speaker encoder and a neural feature model run (``"auto"``, ``"cpu"``, ...).
        progress: show progress bars.
        lip: also write the mouth crops (needs the ``mouth`` extra; without it, or when the face is
            missing for too long, they are skipped with a warning and ``lip_problem`` says why).

    Raises:
        Unit2AVError: unreadable video, no audio track, bad k-means file.
    """
    from ..io.boxes import write_boxes
    from ..io.media import probe_video
    from .faces import detect_video
    from .landmarks import landmarks_available

    video = Path(video)
    info = probe_video(video)
    if not info.has_audio:
        raise fail(video, "has no audio track: prepare needs the speech to convert")
    km = None
    if kmeans is not None:  # check it before the slow steps
        from .units import load_kmeans

        km = load_kmeans(kmeans)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = video.stem
    wav_path = out_dir / f"{stem}.wav"
    wav = _write_wav(video, wav_path)
    spk_path = out_dir / f"{stem}.spkr.pt"
    spkr = _write_speaker(wav, spk_path, speaker_encoder, device)

    want_lip = lip and landmarks_available()
    result = detect_video(video, detect, progress=progress, landmarks=True if want_lip else None)
    bbox_path = out_dir / f"{stem}.bbox.pkl"
    write_boxes(result.boxes, bbox_path)
    lip_path, lip_problem = _write_lip(
        video, out_dir / f"{stem}.lip.mp4", lip, want_lip, result.landmarks, detect, progress
    )

    units_path = None
    if km is not None:
        units_path = _write_units(km, wav_path, spkr, out_dir / f"{stem}.pt", device)
    return PrepareResult(
        video, wav_path, spk_path, bbox_path, units_path, result.num_frames, result.missing, lip_path, lip_problem
    )


def _write_wav(video: Path, wav_path: Path) -> np.ndarray:
    """Write the video's audio track as a mono 16 kHz wav.

    Args:
        video: the input video (has an audio track).
        wav_path: the ``<stem>.wav`` to write.

    Returns:
        The wav written, ``(T,)`` float32 at ``SAMPLE_RATE``.
    """
    from ..io.audio import resample, save_wav
    from ..io.media import read_audio_track

    wav, sr = read_audio_track(video)
    wav = resample(wav, sr, SAMPLE_RATE)
    save_wav(wav_path, wav, SAMPLE_RATE)
    log.info("%s: %.2f s of audio", wav_path, len(wav) / SAMPLE_RATE)
    return wav


def _write_speaker(wav: np.ndarray, spk_path: Path, speaker_encoder, device: str) -> torch.Tensor:
    """Embed ``wav`` (T,) at SAMPLE_RATE with the GE2E encoder and save it; returns the FloatTensor (256,)."""
    from ..io.safe import save_torch
    from .speaker import SpeakerEncoder

    encoder = SpeakerEncoder.load(speaker_encoder, device=device)
    spkr = torch.from_numpy(encoder.embed(wav, SAMPLE_RATE)).float()  # (256,)
    save_torch(spkr, spk_path)
    return spkr


def _write_lip(
    video: Path, lip_out: Path, lip: bool, want_lip: bool, landmarks, detect, progress: bool
) -> tuple[Path | None, str]:
    """Write the mouth crops when asked for and possible; otherwise say why not.

    Args:
        video: the input video.
        lip_out: the ``<stem>.lip.mp4`` to write.
        lip: the crops were asked for.
        want_lip: asked for and the landmark model is installed.
        landmarks: ``(N, 68, 2)`` landmarks of the detection (NaN rows = no face).
        detect: the ``DetectOptions`` of the detection.
        progress: show progress bars.

    Returns:
        ``(lip path or None, lip_problem)``; ``lip_problem`` is empty when made or not asked for.
    """
    from .landmarks import MOUTH_EXTRA

    lip_path, lip_problem = None, ""
    if want_lip:
        from ..errors import Unit2AVError
        from .mouth import make_mouth_crops

        try:
            lip_path = make_mouth_crops(video, lip_out, landmarks=landmarks, detect=detect, progress=progress).path
        except Unit2AVError as e:  # e.g. no face for too long: the other outputs are still useful
            lip_problem = str(e)
    elif lip:
        lip_problem = f"the landmark model is not installed (pip install 'unit2av[{MOUTH_EXTRA}]')"
    if lip_problem:
        log.warning("no mouth crops (.lip.mp4): %s", lip_problem)
    return lip_path, lip_problem


def _write_units(km, wav_path: Path, spkr: torch.Tensor, units_path: Path, device: str) -> Path:
    """Extract the k-means units of the wav and save ``{"code": (len(wav) // 320,), "spkr": spkr}``."""
    from ..io.safe import save_torch
    from .units import extract_units, extractor_for

    unit = extract_units(km, wav_path, extractor=extractor_for(km, device=device))
    unit["spkr"] = spkr
    save_torch(unit, units_path)
    log.info("%s: %d units", units_path, len(unit["code"]))
    return units_path


def render_command(
    result: PrepareResult, checkpoint: str = "CHECKPOINT.pt", lang: str = "en", out: str | None = None
) -> str:
    """The ``unit2av render`` command line for a prepared video (placeholders where unknown).

    Args:
        result: what ``prepare_video`` wrote.
        checkpoint: the AV2AV checkpoint to render with (a placeholder by default).
        lang: the vocoder language inside the checkpoint.
        out: the output video (default: ``<out_dir>/<stem>.dubbed.mp4``).
    """
    units = str(result.units) if result.units is not None else "UNITS.pt"
    out = out or str(result.wav.with_name(f"{result.video.stem}.dubbed.mp4"))
    parts = [
        "unit2av",
        "render",
        "--in-unit-path",
        units,
        "--in-vid-path",
        str(result.video),
        "--in-bbox-path",
        str(result.bbox),
        "--out-vid-path",
        out,
        "--tgt-lang",
        lang,
        "--unit2av-path",
        checkpoint,
    ]
    return " ".join(shlex.quote(p) for p in parts)


__all__ = ["PrepareResult", "prepare_video", "render_command"]
