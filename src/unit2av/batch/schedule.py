"""Which job a free worker takes next, and what happens when a worker dies (both engines).

A free worker first takes a job whose models it already holds (same container, config,
language, device: ``Job.model_key``), so its models stay warm; otherwise the next job in file
order. A job whose worker died goes back to the front of the queue for another worker, up to
``max_retries`` times; a job that fails by itself (a bad input) is not retried.
"""

from __future__ import annotations

import logging
from collections import defaultdict

from .jobs import Job

log = logging.getLogger(__name__)


class Dispatcher:
    """Job bookkeeping shared by the local pool and the Ray engine.

    Args:
        jobs: the jobs to run (done and skipped ones already left out).
        max_retries: how many times a job whose worker died is run again.

    Attributes:
        results: ``{line: result dict}`` of finished jobs (done or failed).
        running: ``{worker id: job}``.
    """

    def __init__(self, jobs: list[Job], max_retries: int):
        self.pending: list[Job] = list(jobs)
        self.max_retries = max_retries
        self.results: dict[int, dict] = {}
        self.running: dict = {}
        self.warm: dict = defaultdict(set)  # worker id -> model keys it has served

    @property
    def finished(self) -> bool:
        return not self.pending and not self.running

    def has_work(self, gpu: bool | None = None) -> bool:
        """Jobs wait (for a GPU or CPU worker when ``gpu`` is given)."""
        return any(gpu is None or j.gpu == gpu for j in self.pending)

    def take(self, worker, gpu: bool | None = None) -> Job | None:
        """The next job for an idle ``worker`` (one holding GPU jobs only when ``gpu``), or ``None``."""
        fits = [i for i, j in enumerate(self.pending) if gpu is None or j.gpu == gpu]
        if not fits:
            return None
        warm = self.warm[worker]
        pick = next((i for i in fits if self.pending[i].model_key in warm), fits[0])
        job = self.pending.pop(pick)
        job.attempts += 1
        self.running[worker] = job
        self.warm[worker].add(job.model_key)
        return job

    def finish(self, worker, result: dict) -> Job:
        """Record the result ``worker`` sent for its job."""
        job = self.running.pop(worker)
        self.results[job.line] = dict(result, attempts=job.attempts)
        return job

    def died(self, worker, why: str) -> Job | None:
        """``worker`` died: its job goes back to the queue, or fails after ``max_retries`` retries.

        Returns:
            The job it held (``None`` if it held none).
        """
        self.warm.pop(worker, None)
        job = self.running.pop(worker, None)
        if job is None:
            return None
        if job.attempts > self.max_retries:
            reason = f"the worker died ({why}) in each of {job.attempts} attempts"
            self._fail(job, reason)
            log.warning("job %d: %s", job.line, reason)
        else:
            log.warning("job %d: the worker died (%s); retrying it on another worker", job.line, why)
            self.pending.insert(0, job)
        return job

    def abandon(self, reason: str) -> None:
        """Fail every job not yet finished (e.g. no worker could start)."""
        for job in self.pending + list(self.running.values()):
            self._fail(job, reason)
        self.pending, self.running = [], {}

    def _fail(self, job: Job, reason: str) -> None:
        """Record ``job`` as failed without having run to the end (no time counted)."""
        self.results[job.line] = {
            "line": job.line,
            "status": "failed",
            "reason": reason,
            "seconds": 0.0,
            "attempts": job.attempts,
        }


__all__ = ["Dispatcher"]
