"""``--engine local``: a pool of worker processes on this machine, each holding its own models.

Each worker is a spawned process with its own pipe. The parent sends one job at a time and waits
on every pipe and every process sentinel at once, so a worker that dies (killed, out of memory)
is seen at once: only the job it held is lost, and it is retried on another worker (a fresh one
takes the dead one's place). ``concurrent.futures.ProcessPoolExecutor`` is not used because one
dead worker breaks its whole pool.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
from multiprocessing.connection import wait

from .schedule import Dispatcher

log = logging.getLogger(__name__)

MEM_PER_WORKER_GIB = 2.0  # budget per worker: AV2AV's face renderer + a vocoder + decode/encode buffers
THREADS_PER_WORKER = 2  # torch threads a worker wants; more cores -> more workers, not more threads each
MAX_START_FAILURES = 3  # per worker: workers dying without a job, in a row, before the batch gives up


def available_memory_gib() -> float | None:
    """``MemAvailable`` of /proc/meminfo in GiB (``None`` where there is no /proc)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return None


def gpu_count() -> int:
    """CUDA devices visible here (0 without CUDA)."""
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def default_workers(num_jobs: int, gpus: int = 0) -> int:
    """How many workers ``--workers`` defaults to.

    One per GPU when there are GPUs; otherwise one per ``THREADS_PER_WORKER`` cores, at most one
    per ``MEM_PER_WORKER_GIB`` of available memory; never more than there are jobs; at least one.
    """
    if gpus:
        n = gpus
    else:
        n = (os.cpu_count() or 1) // THREADS_PER_WORKER
        mem = available_memory_gib()
        if mem is not None:
            n = min(n, int(mem // MEM_PER_WORKER_GIB))
    return max(1, min(n, num_jobs))


def worker_threads(workers: int, gpus: int = 0) -> int:
    """Torch threads of each worker: the cores shared out (at most ``THREADS_PER_WORKER`` with GPUs)."""
    share = max(1, (os.cpu_count() or 1) // workers)
    return min(THREADS_PER_WORKER, share) if gpus else share


def _worker_main(conn, threads: int, level: int) -> None:
    """A worker: receive a job, run it with this process's model cache, send the result; ``None`` ends it."""
    import torch

    from .models import ModelCache, execute

    logging.basicConfig(level=level, format="%(levelname)s %(name)s [worker %(process)d]: %(message)s")
    torch.set_num_threads(threads)
    cache = ModelCache()
    while True:
        try:
            job = conn.recv()
        except (EOFError, KeyboardInterrupt):
            return
        if job is None:
            return
        conn.send(execute(job, cache))


class _Pool:
    """The worker processes, started on demand."""

    def __init__(self, threads: int, gpus: int):
        self.ctx = mp.get_context("spawn")
        self.threads, self.gpus = threads, gpus
        self.procs: dict[int, tuple] = {}  # id -> (process, parent end of the pipe)
        self.next_id = 0

    def start(self) -> int:
        wid, self.next_id = self.next_id, self.next_id + 1
        parent, child = self.ctx.Pipe()
        env = {"TQDM_DISABLE": "1"}  # no per-video bars under the overall one
        if self.gpus:  # one GPU per worker, round robin over those this process sees
            visible = os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",")
            ids = visible if len(visible) >= self.gpus and all(visible) else [str(i) for i in range(self.gpus)]
            env["CUDA_VISIBLE_DEVICES"] = ids[wid % self.gpus]
        saved = {k: os.environ.get(k) for k in env}
        os.environ.update(env)  # a spawned child takes the parent's environment at start
        try:
            proc = self.ctx.Process(
                target=_worker_main,
                args=(child, self.threads, logging.getLogger().level),
                daemon=True,
                name=f"unit2av-batch-{wid}",
            )
            proc.start()
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
        child.close()
        self.procs[wid] = (proc, parent)
        return wid

    def stop(self, wid: int) -> None:
        proc, conn = self.procs.pop(wid)
        try:
            conn.send(None)
        except (BrokenPipeError, OSError):
            pass
        conn.close()
        proc.join(timeout=10)
        if proc.is_alive():
            proc.terminate()
            proc.join(timeout=5)

    def reap(self, wid: int) -> int | None:
        """Forget a dead worker; its exit code."""
        proc, conn = self.procs.pop(wid)
        conn.close()
        proc.join(timeout=5)
        return proc.exitcode

    def close(self) -> None:
        for wid in list(self.procs):
            self.stop(wid)


def _death(code: int | None) -> str:
    if code is not None and code < 0:
        return f"killed by signal {-code}"
    return f"exit code {code}"


def _send(pool: _Pool, dispatcher: Dispatcher, idle: list[int]) -> None:
    """Give each idle worker its next job (a worker that died meanwhile is seen through its sentinel)."""
    while idle and dispatcher.pending:
        wid = idle.pop(0)
        job = dispatcher.take(wid)
        try:
            pool.procs[wid][1].send(job.to_dict())
        except (BrokenPipeError, OSError):
            pass


def _receive(conn):
    """A result waiting on ``conn``, or ``None`` (nothing there, or the worker is gone)."""
    try:
        return conn.recv() if conn.poll() else None
    except (EOFError, OSError):
        return None


def run_local(dispatcher: Dispatcher, workers: int, on_result, gpus: int | None = None) -> None:
    """Run every job of ``dispatcher`` on ``workers`` processes; ``on_result(result, running)`` after each.

    Args:
        dispatcher: the jobs.
        workers: worker processes (at most one per job is started).
        on_result: progress callback; ``result`` is ``None`` when only the running count changed.
        gpus: GPUs to spread the workers over (``None``: those visible here).
    """
    gpus = gpu_count() if gpus is None else gpus
    pool = _Pool(worker_threads(workers, gpus), gpus)
    idle = [pool.start() for _ in range(min(workers, len(dispatcher.pending)))]
    start_failures = 0
    try:
        while not dispatcher.finished:
            _send(pool, dispatcher, idle)
            on_result(None, len(dispatcher.running))
            handles = {}
            for w, (proc, conn) in pool.procs.items():
                handles[conn], handles[proc.sentinel] = w, w
            for ready in wait(list(handles)):
                wid = handles[ready]
                if wid not in pool.procs:
                    continue  # already handled through its other handle
                proc, conn = pool.procs[wid]
                result = _receive(conn)
                if result is not None:
                    dispatcher.finish(wid, result)
                    on_result(result, len(dispatcher.running))
                    start_failures = 0
                if proc.is_alive() and (result is not None or ready is conn):
                    if result is not None:
                        idle.append(wid)
                    continue  # (a closed pipe of a dying worker: its sentinel follows)
                code = pool.reap(wid)
                held = dispatcher.died(wid, _death(code))
                if wid in idle:
                    idle.remove(wid)
                if held is None and result is None:
                    start_failures += 1
                    if start_failures >= MAX_START_FAILURES * workers:
                        dispatcher.abandon(f"batch workers could not start ({_death(code)})")
                        break
                elif held is not None and held.line in dispatcher.results:
                    on_result(dispatcher.results[held.line], len(dispatcher.running))
                if dispatcher.pending and len(pool.procs) < workers:
                    idle.append(pool.start())
    finally:
        pool.close()


__all__ = ["available_memory_gib", "default_workers", "gpu_count", "run_local", "worker_threads"]
