"""Measure dubbed videos: the figures of each video, one section per measure.

    from unit2av.evaluate import Evaluator, expand_jobs
    rows = Evaluator(lang="en").evaluate_all(expand_jobs("dubs/", source="sources/"))

Models (GE2E, the recognisers, DNSMOS) are loaded once, on first use, and reused across videos.
A figure that cannot be computed is ``None`` with a one-line reason in the row's ``notes``;
a missing optional package is such a reason, never an error.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ..errors import Unit2AVError, fail
from ..io.audio import load_audio
from ..io.boxes import read_boxes
from ..io.media import iter_frames, probe_video, read_audio_track
from ..pipeline.timeline import frame_schedule
from ..timing import SAMPLE_RATE, VIDEO_FPS
from .asr import cer, load_recogniser, wer
from .inputs import VideoJob
from .intelligibility import stoi_scores
from .quality import DNSMOS
from .report import empty_row
from .seams import frame_measures, seam_scores
from .sync import MIN_PAIRS, mouth_patch, sync_scores
from .voice import pitch_stats, speaker_similarity

log = logging.getLogger(__name__)

SECTIONS = ("intelligibility", "voice", "audio_quality", "sync", "seams")


class Evaluator:
    """Holds the measuring models and measures one video at a time.

    Args:
        lang: language of the dubbed speech (``"en"``: PocketSphinx, ``"ko"``: Vosk).
        vocabulary: sentences for a closed-vocabulary recogniser (``None``: its general model).
        vosk_model: a Vosk model folder for any language (overrides the packaged ones).
        device: device of the speaker encoder (``"auto"``, ``"cpu"``, ``"cuda"``).
        skip: sections not to measure (names from ``SECTIONS``).
        speaker_encoder: an already loaded ``SpeakerEncoder`` (``None``: loaded on first use).
    """

    def __init__(
        self,
        lang: str = "en",
        vocabulary: list[str] | None = None,
        vosk_model: str | None = None,
        device: str = "auto",
        skip: tuple[str, ...] = (),
        speaker_encoder=None,
    ):
        unknown = set(skip) - set(SECTIONS)
        if unknown:
            raise fail(None, f"unknown section(s) to skip: {', '.join(sorted(unknown))} (from {', '.join(SECTIONS)})")
        self.lang, self.vocabulary, self.vosk_model, self.device = lang, vocabulary, vosk_model, device
        self.skip = set(skip)
        self._models: dict[str, object] = {} if speaker_encoder is None else {"ge2e": speaker_encoder}

    def _model(self, key: str, build):
        """Build a model once; a failure is remembered (and re-raised) so it is tried only once."""
        if key not in self._models:
            try:
                self._models[key] = build()
            except Unit2AVError as e:
                self._models[key] = e
        model = self._models[key]
        if isinstance(model, Unit2AVError):
            raise model
        return model

    def _encoder(self):
        from ..prepare.speaker import SpeakerEncoder

        return self._model("ge2e", lambda: SpeakerEncoder.load(device=self.device))

    def _recogniser(self):
        return self._model("asr", lambda: load_recogniser(self.lang, self.vocabulary, self.vosk_model))

    def _dnsmos(self):
        return self._model("dnsmos", DNSMOS)

    # ------------------------------------------------------------------ one video
    def evaluate(self, job: VideoJob) -> dict:
        """All figures of one video (see the README's JSON schema).

        Raises:
            Unit2AVError: the video itself cannot be read (other problems become notes).
        """
        row = empty_row(job)
        info = probe_video(job.video)
        wav, _ = read_audio_track(job.video, SAMPLE_RATE) if info.has_audio else (None, SAMPLE_RATE)
        row.update(frames=info.num_frames, fps=info.fps, duration_s=info.duration)
        src_wav = None
        if job.source is not None:
            src_info = probe_video(job.source)
            src_wav = read_audio_track(job.source, SAMPLE_RATE)[0] if src_info.has_audio else None
        if wav is None:
            row["notes"].append("audio: the video has no audio track")
        measures = [
            ("intelligibility", lambda: self._intelligibility(row, job, wav, src_wav)),
            ("voice", lambda: self._voice(row, job, wav, src_wav)),
            ("audio_quality", lambda: self._quality(row, wav, src_wav)),
            ("video", lambda: self._video(row, job, info, wav, src_wav)),
        ]
        for name, measure in measures:
            if name in self.skip or (name == "video" and {"sync", "seams"} <= self.skip):
                continue
            try:
                measure()
            except Unit2AVError as e:
                row["notes"].append(f"{name}: {e}")
        return row

    def _intelligibility(self, row: dict, job: VideoJob, wav, src_wav) -> None:
        out = row["intelligibility"]
        out["reference_text"] = job.text
        if job.reference_audio is not None and wav is not None:
            ref, _ = load_audio(job.reference_audio, SAMPLE_RATE)
            try:
                out.update(stoi_scores(ref, wav, SAMPLE_RATE))
            except Unit2AVError as e:
                row["notes"].append(f"intelligibility: {e}")
        if wav is None:
            return
        rec = self._recogniser()
        out["recogniser"] = rec.name + (" (closed vocabulary)" if self.vocabulary else "")
        out["transcript"] = rec.transcribe(wav)
        if src_wav is not None:
            out["source_transcript"] = rec.transcribe(src_wav)
        if job.text:
            out["wer"], out["cer"] = wer(job.text, out["transcript"]), cer(job.text, out["transcript"])
            if src_wav is not None:
                out["source_wer"] = wer(job.text, out["source_transcript"])
                out["source_cer"] = cer(job.text, out["source_transcript"])

    def _voice(self, row: dict, job: VideoJob, wav, src_wav) -> None:
        out = row["voice"]
        if wav is not None:
            out.update(pitch_stats(wav))
        if src_wav is not None:
            out.update({f"source_{k}": v for k, v in pitch_stats(src_wav).items()})
        speaker = load_audio(job.speaker_wav, SAMPLE_RATE)[0] if job.speaker_wav is not None else src_wav
        if speaker is None:
            row["notes"].append("voice: speaker_similarity needs --source or --speaker-wav")
        elif wav is not None:
            out["speaker_similarity"] = speaker_similarity(self._encoder(), wav, speaker)

    def _quality(self, row: dict, wav, src_wav) -> None:
        if wav is None:
            return
        scorer = self._dnsmos()
        row["audio_quality"].update(scorer(wav))
        if src_wav is not None:
            row["audio_quality"]["source_dnsmos_ovrl"] = scorer(src_wav)["dnsmos_ovrl"]

    # ------------------------------------------------------------------ video: sync and seams
    def _video(self, row: dict, job: VideoJob, info, wav, src_wav) -> None:
        if job.bbox is None:
            raise fail(None, f"sync and seams need face boxes: --bbox or {job.video.stem}.bbox.pkl beside the video")
        boxes = read_boxes(job.bbox)
        src_info = probe_video(job.source) if job.source is not None else None
        dub_boxes, schedule, src_boxes = map_boxes(boxes, info, src_info, job.bbox, row["notes"])
        src_measures = None
        src_patches = None
        if src_info is not None and src_boxes is not None:
            src_patches, per_src = _measure_frames(job.source, src_boxes, src_info.num_frames)
            src_measures = [per_src[i] for i in schedule]
        patches, measures = _measure_frames(job.video, dub_boxes, info.num_frames)
        if "sync" not in self.skip and wav is not None:
            expected = None
            if src_patches is not None and src_wav is not None:
                src_sync = sync_scores(src_patches, src_wav, SAMPLE_RATE, src_info.fps)
                expected = src_sync["peak_lag_frames"]
                row["sync"].update(source_peak_lag_frames=expected, source_peak_confidence=src_sync["peak_confidence"])
            row["sync"].update(sync_scores(patches, wav, SAMPLE_RATE, info.fps, expected))
            if row["sync"]["offset_frames"] is None:
                row["notes"].append(
                    f"sync: fewer than {MIN_PAIRS} frame pairs with a face box at some lag "
                    "(the video is too short or the boxes too sparse for the lag search)"
                )
        if "seams" not in self.skip:
            row["seams"].update(seam_scores(measures, src_measures))
            if src_measures is None:
                row["notes"].append("seams: mouth_sharpness_ratio needs --source")


def map_boxes(boxes: list, info, src_info, path: Path, notes: list[str]):
    """Boxes of the dub's frames, the source frame of each, and boxes of the source's frames.

    A box list with one entry per dubbed frame is used as it is. A list with one entry per
    source frame is mapped onto the dub through the renderer's timeline (retimed to 25 fps,
    ping-ponged when the speech is longer), as ``unit2av render`` used it.

    Returns:
        ``(dub_boxes (N_dub,), schedule (N_dub,) source frame indices, src_boxes (N_src,) or None)``.

    Raises:
        Unit2AVError: the count fits neither video.
    """
    n, m = info.num_frames, (src_info.num_frames if src_info is not None else None)
    if len(boxes) == n:
        schedule = np.arange(n) if m in (None, n) else frame_schedule(n, m, src_info.fps)
        src_boxes = None
        if m is not None:
            src_boxes = [None] * m
            for k, i in enumerate(schedule):
                if src_boxes[i] is None:
                    src_boxes[i] = boxes[k]
        return list(boxes), schedule, src_boxes
    if m is not None and len(boxes) == m:
        schedule = frame_schedule(n, m, src_info.fps)
        notes.append(f"boxes: {len(boxes)} source boxes mapped onto the dub's {n} frames by the render timeline")
        return [boxes[i] for i in schedule], schedule, list(boxes)
    if m is None:
        schedule = frame_schedule(n, len(boxes), float(VIDEO_FPS))
        notes.append(f"boxes: {len(boxes)} boxes for {n} frames, mapped by the render timeline (a 25 fps source)")
        return [boxes[i] for i in schedule], schedule, None
    raise fail(path, f"has {len(boxes)} boxes; the dub has {n} frames and the source {m}")


def _measure_frames(video: Path, boxes: list, num_frames: int) -> tuple[np.ndarray, list]:
    """One decoding pass: mouth patches (for sync) and seam measures of each frame.

    Returns:
        ``(patches (N, 32, 64), [frame_measures] * N)``, N = ``num_frames`` (missing frames: no box).
    """
    patches, measures = [], []
    for frame, box in zip(iter_frames(video), boxes):
        patches.append(mouth_patch(frame, box))
        measures.append(frame_measures(frame, box))
    while len(patches) < num_frames:  # the container promised more frames than it decoded
        patches.append(mouth_patch(None, None))
        measures.append((None, None))
    return np.stack(patches), measures


def evaluate_all(evaluator: Evaluator, jobs: list[VideoJob], progress: bool = True) -> list[dict]:
    """Measure each job; with several, a video that cannot be read becomes a row with ``error``.

    Raises:
        Unit2AVError: the only video cannot be read.
    """
    rows = []
    for job in tqdm(jobs, desc="evaluate", unit="video", disable=not progress or None):
        try:
            rows.append(evaluator.evaluate(job))
        except Unit2AVError as e:
            if len(jobs) == 1:
                raise
            log.warning("%s", e)
            row = empty_row(job)
            row["error"] = str(e)
            rows.append(row)
    return rows


__all__ = ["SECTIONS", "Evaluator", "evaluate_all", "map_boxes"]
