"""The evaluation report: one row per video (the JSON schema), a summary, a readable table.

Every row has every key; a figure that could not be computed is ``None`` (JSON ``null``) and
the row's ``notes`` say why. The README documents each field.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

from ..io.safe import write_bytes_atomic

SCHEMA_VERSION = 1


def empty_row(job) -> dict:
    """A row with every field present and ``None`` (the schema, in one place)."""
    return {
        "video": str(job.video),
        "source": str(job.source) if job.source is not None else None,
        "bbox": str(job.bbox) if job.bbox is not None else None,
        "frames": None,
        "fps": None,
        "duration_s": None,
        "intelligibility": {
            "recogniser": None,
            "transcript": None,
            "reference_text": None,
            "wer": None,
            "cer": None,
            "source_transcript": None,
            "source_wer": None,
            "source_cer": None,
            "stoi": None,
            "estoi": None,
            "reference_lag_ms": None,
        },
        "voice": {
            "speaker_similarity": None,
            "f0_median_hz": None,
            "voiced_share": None,
            "source_f0_median_hz": None,
            "source_voiced_share": None,
        },
        "audio_quality": {"dnsmos_sig": None, "dnsmos_bak": None, "dnsmos_ovrl": None, "source_dnsmos_ovrl": None},
        "sync": {
            "offset_frames": None,
            "confidence": None,
            "peak_confidence": None,
            "correlation": None,
            "peak_lag_frames": None,
            "expected_lag_frames": None,
            "frames_used": None,
            "source_peak_lag_frames": None,
            "source_peak_confidence": None,
        },
        "seams": {
            "border_edge_ratio": None,
            "mouth_sharpness": None,
            "mouth_sharpness_ratio": None,
            "source_border_edge_ratio": None,
            "frames_used": None,
        },
        "notes": [],
        "error": None,
    }


# (column title, section, field, format, which end is worse: "high" / "low" / None)
COLUMNS = (
    ("WER", "intelligibility", "wer", "{:.2f}", "high"),
    ("CER", "intelligibility", "cer", "{:.2f}", "high"),
    ("ESTOI", "intelligibility", "estoi", "{:.2f}", "low"),
    ("spk sim", "voice", "speaker_similarity", "{:.2f}", "low"),
    ("f0 Hz", "voice", "f0_median_hz", "{:.0f}", None),
    ("OVRL", "audio_quality", "dnsmos_ovrl", "{:.2f}", "low"),
    ("offset", "sync", "offset_frames", "{:+d}", None),
    ("sync conf", "sync", "confidence", "{:.2f}", "low"),
    ("border", "seams", "border_edge_ratio", "{:.2f}", "high"),
    ("sharp", "seams", "mouth_sharpness_ratio", "{:.2f}", "low"),
)


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def summarise(rows: list[dict]) -> dict:
    """Means over the videos of every numeric figure, and the worst video for the table's figures.

    Returns:
        ``{"videos", "failed", "mean": {section: {field: mean}}, "worst": {section.field: video}}``.
    """
    mean: dict = {}
    for section in ("intelligibility", "voice", "audio_quality", "sync", "seams"):
        fields = rows[0][section].keys() if rows else ()
        for field in fields:
            values = [r[section][field] for r in rows if _number(r[section].get(field))]
            if values:
                mean.setdefault(section, {})[field] = sum(values) / len(values)
    worst = {}
    for _, section, field, _, bad in COLUMNS:
        scored = [(r[section][field], r["video"]) for r in rows if _number(r[section].get(field))]
        if bad and scored:
            worst[f"{section}.{field}"] = (max(scored) if bad == "high" else min(scored))[1]
    if rows:
        offsets = [(abs(r["sync"]["offset_frames"]), r["video"]) for r in rows if _number(r["sync"]["offset_frames"])]
        if offsets:
            worst["sync.offset_frames"] = max(offsets)[1]
    return {"videos": len(rows), "failed": sum(r.get("error") is not None for r in rows), "mean": mean, "worst": worst}


def format_table(rows: list[dict], summary: dict | None = None) -> str:
    """A fixed-width text table: one line per video (and a mean line for several)."""
    used = [c for c in COLUMNS if any(_number(r[c[1]].get(c[2])) for r in rows)]
    name_w = min(40, max([5] + [len(Path(r["video"]).name) for r in rows]))

    def cell(value, fmt):
        if not _number(value):
            return "-"
        return fmt.format(int(round(value)) if fmt == "{:+d}" else value)

    widths = [max(len(c[0]), 6) for c in used]
    lines = ["video".ljust(name_w) + "  " + "  ".join(c[0].rjust(w) for c, w in zip(used, widths))]
    for r in rows:
        name = Path(r["video"]).name[-name_w:].ljust(name_w)
        if r.get("error"):
            lines.append(f"{name}  error: {r['error']}")
            continue
        lines.append(name + "  " + "  ".join(cell(r[c[1]].get(c[2]), c[3]).rjust(w) for c, w in zip(used, widths)))
    if summary is not None and len(rows) > 1:
        mean = summary["mean"]
        lines.append(
            "mean".ljust(name_w)
            + "  "
            + "  ".join(
                cell(mean.get(c[1], {}).get(c[2]), c[3] if c[3] != "{:+d}" else "{:+.1f}").rjust(w)
                for c, w in zip(used, widths)
            )
        )
    return "\n".join(lines)


def _plain(obj):
    """JSON-ready copy: NaN/inf become null, numpy scalars plain numbers."""
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if hasattr(obj, "item") and not isinstance(obj, (str, bytes)):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def write_json(path: str | os.PathLike, rows: list[dict], summary: dict) -> None:
    """Write the report atomically: ``.jsonl`` = a line per video then ``{"summary": ...}``; else one document."""
    path = Path(path)
    if path.suffix.lower() == ".jsonl":
        lines = [json.dumps(_plain(r), ensure_ascii=False) for r in rows]
        lines.append(json.dumps({"summary": _plain(summary)}, ensure_ascii=False))
        text = "\n".join(lines) + "\n"
    else:
        doc = {"schema_version": SCHEMA_VERSION, "videos": _plain(rows), "summary": _plain(summary)}
        text = json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
    write_bytes_atomic(path, text.encode("utf-8"))


__all__ = ["COLUMNS", "SCHEMA_VERSION", "empty_row", "format_table", "summarise", "write_json"]
