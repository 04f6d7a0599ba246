"""What ``unit2av evaluate`` measures: one video, a folder of videos, or a ``unit2av batch`` report.

For a folder or a report, the per-video side files are found by the video's stem ``NAME``:

- boxes: ``--bbox`` (a file for one video; for many, a folder holding ``NAME.bbox.pkl`` or
  ``NAME.pkl``), else ``NAME.bbox.pkl`` beside the video;
- source video: ``--source`` (a file, or a folder holding a video named ``NAME.*``);
- text: ``--text`` (one video), or ``--text-file`` (a file, or a folder holding ``NAME.txt``);
- reference audio and speaker audio: ``--reference-audio`` / ``--speaker-wav`` (a file, or a
  folder holding ``NAME.wav`` / ``.flac`` / ...).

A batch report (``report.jsonl``) lists one job per line; lines whose ``status`` is ``done`` or
``skipped`` name their output in ``output`` (relative paths: to the report's folder); outputs
that are videos are measured. With the job file (``jobs``), each render job's own
``in_vid_path`` and ``in_bbox_path`` (matched by the report's ``job`` line number) become the
source video and the boxes. Other lines (failed jobs, audio-only outputs) are left out.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import fail
from ..face.data import VIDEO_EXTENSIONS
from ..io.audio import AUDIO_EXTENSIONS

DONE_STATUSES = ("done", "skipped")  # report lines whose output exists


@dataclass
class VideoJob:
    """One video to measure and the files that go with it (``None``: not given)."""

    video: Path
    source: Path | None = None
    bbox: Path | None = None
    text: str | None = None
    reference_audio: Path | None = None
    speaker_wav: Path | None = None


def _by_stem(folder: Path, stem: str, suffixes) -> Path | None:
    for suffix in suffixes:
        p = folder / f"{stem}{suffix}"
        if p.is_file():
            return p
    return None


def _side(path: Path | None, stem: str, suffixes, many: bool) -> Path | None:
    """The side file for ``stem``: ``path`` itself for one video, or its match in the folder ``path``."""
    if path is None:
        return None
    if path.is_dir():
        return _by_stem(path, stem, suffixes)
    if many:
        raise fail(path, "with many videos this must be a folder holding one file per video (by name)")
    if not path.is_file():
        raise fail(path, "not found")
    return path


def _read_text(path: Path | None) -> str | None:
    if path is None:
        return None
    try:
        return path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as e:
        raise fail(path, f"cannot read the text: {e}") from e


def read_report(path: Path, jobs: str | os.PathLike | None = None) -> list[tuple[Path, dict]]:
    """``(video, inputs)`` for each finished job of a ``unit2av batch`` report whose output is a video.

    Args:
        path: the ``report.jsonl``.
        jobs: the job file that made it (``None``: the inputs stay unknown unless a line carries them).

    Returns:
        ``inputs`` holds the job's ``in_vid_path`` / ``in_bbox_path`` (absolute) when known.
    """
    params: dict[int, dict] = {}
    if jobs is not None:
        from ..batch.jobs import parse_jobs

        params = {j.line: j.params for j in parse_jobs(jobs, path.parent)}
    rows = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise fail(path, f"line {n} is not JSON: {e.msg}") from e
            if not isinstance(row, dict) or row.get("status") not in DONE_STATUSES or not row.get("output"):
                continue
            outputs = row["output"] if isinstance(row["output"], list) else [row["output"]]
            known = {
                k: v
                for k, v in {**row, **params.get(row.get("job"), {})}.items()
                if k in ("in_vid_path", "in_bbox_path") and v
            }
            for out in map(Path, outputs):
                if out.suffix.lower() in VIDEO_EXTENSIONS:
                    rows.append((out if out.is_absolute() else path.parent / out, known))
    return rows


def expand_jobs(
    video: str | os.PathLike,
    source=None,
    bbox=None,
    text: str | None = None,
    text_file=None,
    reference_audio=None,
    speaker_wav=None,
    jobs=None,
) -> list[VideoJob]:
    """The videos to measure, with their side files.

    Args:
        video: a video file, a folder of videos, or a batch ``report.jsonl``.
        source, bbox, text_file, reference_audio, speaker_wav: files (one video) or folders (many).
        text: the spoken text (one video only).
        jobs: the batch job file behind a report (its render jobs' sources and boxes).

    Raises:
        Unit2AVError: a missing input, an empty folder, or ``text`` with many videos.
    """
    video = Path(video)
    paths = [Path(p) if p is not None else None for p in (source, bbox, text_file, reference_audio, speaker_wav)]
    source, bbox, text_file, reference_audio, speaker_wav = paths
    if video.is_dir():
        found = [(p, {}) for p in sorted(video.iterdir()) if p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS]
        if not found:
            raise fail(video, f"no videos ({', '.join(VIDEO_EXTENSIONS)}) in this folder")
    elif video.suffix.lower() == ".jsonl":
        if not video.is_file():
            raise fail(video, "batch report not found")
        found = read_report(video, jobs)
        if not found:
            raise fail(video, "no finished jobs (status done or skipped) with a video output in this batch report")
    elif video.is_file():
        found = [(video, {})]
    else:
        raise fail(video, "video not found")
    many = video.is_dir() or video.suffix.lower() == ".jsonl"
    if many and text is not None:
        raise fail(None, "--text is for one video; give --text-file FOLDER with NAME.txt per video")
    jobs = []
    for path, row in found:
        stem = path.stem
        base = path.parent
        job = VideoJob(video=path, text=text)
        job.source = _side(source, stem, VIDEO_EXTENSIONS, many)
        job.bbox = _side(bbox, stem, (".bbox.pkl", ".pkl"), many) or _by_stem(base, stem, (".bbox.pkl",))
        job.text = text if text is not None else _read_text(_side(text_file, stem, (".txt",), many))
        job.reference_audio = _side(reference_audio, stem, AUDIO_EXTENSIONS, many)
        job.speaker_wav = _side(speaker_wav, stem, AUDIO_EXTENSIONS, many)
        for key, attr in (("in_vid_path", "source"), ("in_bbox_path", "bbox")):
            if row.get(key) and getattr(job, attr) is None:
                p = Path(row[key])
                setattr(job, attr, p if p.is_absolute() else video.parent / p)
        jobs.append(job)
    return jobs


__all__ = ["DONE_STATUSES", "VideoJob", "expand_jobs", "read_report"]
