"""Measure dubbed videos offline: intelligibility, voice, audio quality, lip sync and seams.

    from unit2av.evaluate import Evaluator, evaluate_all, expand_jobs, summarise
    rows = evaluate_all(Evaluator(lang="en"), expand_jobs("dub.mp4", source="src.mp4", bbox="src.bbox.pkl"))

One module per measure (``asr``, ``intelligibility``, ``voice``, ``quality``, ``sync``,
``seams``); ``run`` measures a video, ``report`` holds the JSON schema, summary and table.
"""

from __future__ import annotations

from .inputs import VideoJob, expand_jobs
from .report import format_table, summarise, write_json
from .run import SECTIONS, Evaluator, evaluate_all

__all__ = [
    "SECTIONS",
    "Evaluator",
    "VideoJob",
    "evaluate_all",
    "expand_jobs",
    "format_table",
    "summarise",
    "write_json",
]
