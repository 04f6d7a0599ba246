"""``report.jsonl``: one line per job of the job file, the progress bar, and the summary line.

Each line: ``{"job": <line>, "status": "done" | "failed" | "skipped", "reason": <one line or
null>, "output": <path>, "seconds": <float>, "attempts": <int>, "command": ..., "key": ...}``
plus the durations the job wrote (``video_seconds``, ``audio_seconds``). ``skipped`` = done by
an earlier run. The report of the previous run is read back to keep its failed jobs failed
(with their reasons) until ``--retry-failed``.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

from ..io.safe import write_bytes_atomic
from .jobs import Job

log = logging.getLogger(__name__)

REPORT_NAME = "report.jsonl"
INTERRUPTED = "interrupted before it ran to the end"


def read_previous(out_dir: str | os.PathLike) -> dict[int, dict]:
    """``{line: entry}`` of an earlier run's report (empty when there is none or it is unreadable)."""
    path = Path(out_dir) / REPORT_NAME
    entries: dict[int, dict] = {}
    if not path.is_file():
        return entries
    for text in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            entry = json.loads(text)
        except json.JSONDecodeError:
            continue
        if isinstance(entry, dict) and isinstance(entry.get("job"), int):
            entries[entry["job"]] = entry
    return entries


def earlier_failure(job: Job, previous: dict[int, dict]) -> dict | None:
    """The earlier run's failure of this very job (same resolved parameters), if it really ran and failed."""
    entry = previous.get(job.line)
    if (
        entry
        and entry.get("status") == "failed"
        and entry.get("key") == job.key
        and entry.get("reason")
        and entry.get("reason") != INTERRUPTED
    ):
        return entry
    return None


def entry_for(job: Job, status: str, result: dict | None = None) -> dict:
    """The report line of ``job``."""
    result = dict(result or {})
    out = {
        "job": job.line,
        "status": status,
        "reason": result.pop("reason", None),
        "output": str(job.outputs[0]) if len(job.outputs) == 1 else [str(o) for o in job.outputs],
        "seconds": float(result.pop("seconds", 0.0)),
        "attempts": int(result.pop("attempts", job.attempts)),
        "command": job.command,
        "key": job.key,
    }
    result.pop("status", None)
    result.pop("line", None)
    out.update(result)  # durations written
    return out


def write_report(out_dir: str | os.PathLike, entries: list[dict]) -> Path:
    """Write ``report.jsonl`` atomically (entries in job-file order)."""
    path = Path(out_dir) / REPORT_NAME
    text = "".join(json.dumps(e) + "\n" for e in sorted(entries, key=lambda e: e["job"]))
    write_bytes_atomic(path, text.encode())
    return path


def summary_line(entries: list[dict], seconds: float, path: Path | None = None) -> str:
    """``"batch: 6 done, 2 skipped, 1 failed of 9 jobs in 41.2 s (8.7 videos/min)"``."""
    count = {s: sum(e["status"] == s for e in entries) for s in ("done", "skipped", "failed")}
    rate = 60.0 * count["done"] / seconds if seconds > 0 else 0.0
    where = f"; report: {path}" if path is not None else ""
    return (
        f"batch: {count['done']} done, {count['skipped']} skipped, {count['failed']} failed of {len(entries)} "
        f"jobs in {seconds:.1f} s ({rate:.1f} videos/min){where}"
    )


class Progress:
    """One overall bar: jobs finished of those to run, with done / failed / running and videos per minute."""

    def __init__(self, total: int, enabled: bool = True):
        from tqdm import tqdm

        self.t0 = time.perf_counter()
        self.done = self.failed = 0
        self.bar = tqdm(total=total, unit="job", desc="batch", disable=None if enabled else True)

    def update(self, result: dict | None, running: int) -> None:
        """Count one finished job's ``result`` (``None``: only the running count changed)."""
        if result is not None:
            if result["status"] == "done":
                self.done += 1
            else:
                self.failed += 1
                log.info("job %d failed: %s", result["line"], result["reason"])
            self.bar.update(1)
        minutes = (time.perf_counter() - self.t0) / 60.0
        self.bar.set_postfix(
            done=self.done,
            failed=self.failed,
            running=running,
            per_min=f"{self.done / minutes:.1f}" if minutes > 0 else "-",
            refresh=False,
        )
        self.bar.refresh()

    def close(self) -> None:
        self.bar.close()


__all__ = [
    "INTERRUPTED",
    "REPORT_NAME",
    "Progress",
    "earlier_failure",
    "entry_for",
    "read_previous",
    "summary_line",
    "write_report",
]
