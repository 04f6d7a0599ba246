"""Many jobs at once: a resumable batch on a local process pool or a Ray cluster.

    from unit2av.batch import run
    report = run("jobs.jsonl", "out/", engine="local", workers=2)

The job file plus the output folder are the state: a rerun skips jobs whose outputs exist
(written atomically, so they are complete), keeps earlier failures failed unless
``retry_failed``, and writes ``report.jsonl`` with one line per job.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import Unit2AVError

log = logging.getLogger(__name__)

ENGINES = ("local", "ray")


@dataclass
class BatchResult:
    """What ``run`` did: the report lines (job-file order), where they were written, and the summary."""

    entries: list[dict]
    path: Path
    seconds: float
    summary: str
    counts: dict = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        """0 when every job is done or skipped, 1 when some failed."""
        return 1 if self.counts.get("failed") else 0


def _check_options(engine: str, workers: int | None) -> None:
    """Refuse an unknown engine, fewer than one worker, or the Ray engine without Ray, before anything runs."""
    if engine not in ENGINES:
        raise Unit2AVError(f"unknown engine {engine!r} (choose {' or '.join(ENGINES)})")
    if workers is not None and workers < 1:
        raise Unit2AVError(f"--workers must be at least 1, got {workers}")
    if engine == "ray":
        from .engine_ray import import_ray

        import_ray()  # a missing extra is a one-line error before anything runs


def _triage(all_jobs: list, previous: dict, retry_failed: bool) -> tuple[dict, list]:
    """Split the jobs into those settled already and those to run.

    Args:
        all_jobs: the parsed jobs (``Job``), in job-file order.
        previous: the earlier run's report (``read_previous``).
        retry_failed: run earlier failures again instead of keeping them failed.

    Returns:
        ``(entries, todo)``: report entries by job line for the skipped (outputs exist) and kept-failed
        jobs, and the jobs to run.
    """
    from .jobs import is_done
    from .report import earlier_failure, entry_for

    entries, todo = {}, []
    for job in all_jobs:
        failure = None if retry_failed else earlier_failure(job, previous)
        if is_done(job):
            entries[job.line] = entry_for(job, "skipped", {"attempts": 0})
        elif failure is not None:
            entries[job.line] = entry_for(job, "failed", {"reason": failure["reason"], "attempts": 0})
        else:
            todo.append(job)
    return entries, todo


def _run_engine(engine: str, dispatcher, num_jobs: int, workers: int | None, update, ray_address: str | None) -> None:
    """Run the dispatcher's ``num_jobs`` jobs on local worker processes or Ray actors (``update``: progress)."""
    if engine == "local":
        from .engine_local import default_workers, gpu_count, run_local

        gpus = gpu_count()
        n = workers or default_workers(num_jobs, gpus)
        log.info("batch: %d job(s) to run on %d local worker(s)", num_jobs, n)
        run_local(dispatcher, n, update, gpus)
    else:
        from .engine_ray import run_ray

        run_ray(dispatcher, workers, update, ray_address)


def run(
    jobs,
    out_dir: str | os.PathLike,
    engine: str = "local",
    workers: int | None = None,
    max_retries: int = 2,
    retry_failed: bool = False,
    ray_address: str | None = None,
    progress: bool = True,
) -> BatchResult:
    """Run a job file (or a list of job dicts) and write ``<out_dir>/report.jsonl``.

    The local engine spawns its workers: in a script, call ``run`` under ``if __name__ == "__main__":``.

    Args:
        jobs: a JSON-lines job file, or a list of job dicts (input paths relative to the current folder).
        out_dir: output folder; output paths of the jobs are relative to it.
        engine: ``"local"`` (worker processes here) or ``"ray"`` (Ray actors).
        workers: worker processes / actors (``None``: what the cores, memory and GPUs allow).
        max_retries: times a job is run again after its worker died.
        retry_failed: run jobs that failed in an earlier run again (by default they stay failed).
        ray_address: Ray cluster address (``"auto"``, ``"ray://host:10001"``); ``None``: a local instance.
        progress: show the overall progress bar.

    Returns:
        ``BatchResult`` (its ``entries`` are the report's lines).

    Raises:
        Unit2AVError: a bad job file (nothing runs), an unknown engine, Ray missing.
    """
    from .jobs import parse_jobs
    from .report import INTERRUPTED, Progress, entry_for, read_previous, summary_line, write_report
    from .schedule import Dispatcher

    _check_options(engine, workers)
    t0 = time.perf_counter()
    out = Path(out_dir)
    all_jobs = parse_jobs(jobs, out)
    entries, todo = _triage(all_jobs, read_previous(out), retry_failed)
    out.mkdir(parents=True, exist_ok=True)
    dispatcher = Dispatcher(sorted(todo, key=lambda j: j.model_key), max_retries)  # stable: file order per model
    bar = Progress(len(todo), enabled=progress)
    try:
        if todo:
            _run_engine(engine, dispatcher, len(todo), workers, bar.update, ray_address)
    finally:
        bar.close()
        for job in todo:
            result = dispatcher.results.get(job.line)
            if result is None:
                result = {"status": "failed", "reason": INTERRUPTED}
            entries[job.line] = entry_for(job, result["status"], result)
        seconds = time.perf_counter() - t0
        path = write_report(out, list(entries.values()))
    ordered = [entries[j.line] for j in all_jobs]
    counts = {s: sum(e["status"] == s for e in ordered) for s in ("done", "skipped", "failed")}
    return BatchResult(ordered, path, seconds, summary_line(ordered, seconds, path), counts)


__all__ = ["ENGINES", "BatchResult", "run"]
