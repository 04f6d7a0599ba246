"""``--engine ray``: the same jobs on a Ray cluster, each worker a Ray actor holding its models.

Jobs go one at a time to free actors, preferring an actor that already holds the job's models
(``Dispatcher.take``). Jobs whose device is CUDA (or ``auto`` on a cluster with GPUs) run on
actors created with ``num_gpus=1``. An actor that dies (node lost, killed, out of memory) loses
only the job it held, which is retried on a new actor. Input and output paths are absolute, so
every node must see the same files at the same paths (shared storage).
"""

from __future__ import annotations

import logging

from ..errors import Unit2AVError
from .schedule import Dispatcher

log = logging.getLogger(__name__)

RAY_MISSING = "--engine ray needs Ray, which is not installed: pip install 'unit2av[ray]'"
MAX_START_FAILURES = 3  # actors dying before finishing any job, in a row, before the batch gives up


def import_ray():
    """The ``ray`` module, or a one-line ``Unit2AVError`` naming the extra."""
    try:
        import ray
    except ImportError as e:
        raise Unit2AVError(RAY_MISSING) from e
    return ray


class _Actor:
    """A Ray actor's body: a model cache and ``execute`` (wrapped by ``ray.remote`` in ``run_ray``)."""

    def __init__(self, threads: int):
        import torch

        from .models import ModelCache

        torch.set_num_threads(max(1, threads))
        self.cache = ModelCache()

    def run(self, job: dict) -> dict:
        from .models import execute

        return execute(job, self.cache)


def connect(address: str | None):
    """Join the cluster at ``address`` (``"auto"``, ``"ray://host:10001"``, ...) or start a local instance.

    An already initialised Ray (e.g. ``ray.init(num_cpus=2)`` by the caller) is used as it is.
    """
    ray = import_ray()
    if not ray.is_initialized():
        ray.init(
            address=address,
            runtime_env={"env_vars": {"TQDM_DISABLE": "1"}},
            log_to_driver=True,
            configure_logging=False,
        )
    return ray


def plan(dispatcher: Dispatcher, workers: int | None, resources: dict) -> tuple[int, int, int]:
    """``(gpu actors, cpu actors, threads per cpu actor)`` for the jobs and the cluster's ``resources``.

    Default: one actor per GPU for GPU jobs, one per 2 CPUs for the others, never more than jobs.
    """
    gpus, cpus = int(resources.get("GPU", 0)), max(1, int(resources.get("CPU", 1)))
    if gpus:
        for job in dispatcher.pending:  # "auto" runs on CUDA where the cluster has GPUs
            job.gpu = job.gpu or str(job.params.get("device", "auto")) == "auto"
    n_gpu_jobs = sum(j.gpu for j in dispatcher.pending)
    n_cpu_jobs = len(dispatcher.pending) - n_gpu_jobs
    if workers is None:
        gpu_actors = min(gpus, n_gpu_jobs)
        cpu_actors = min(max(1, cpus // 2), n_cpu_jobs)
    else:
        gpu_actors = min(workers, n_gpu_jobs) if gpus else 0
        cpu_actors = min(max(workers - gpu_actors, 1 if n_cpu_jobs else 0), n_cpu_jobs)
    if n_gpu_jobs and not gpus:
        raise Unit2AVError(f"{n_gpu_jobs} job(s) ask for a CUDA device but the Ray cluster has no GPU")
    return gpu_actors, cpu_actors, max(1, cpus // max(1, cpu_actors + gpu_actors))


def run_ray(dispatcher: Dispatcher, workers: int | None, on_result, address: str | None = None) -> None:
    """Run every job of ``dispatcher`` on Ray actors; ``on_result(result, running)`` after each.

    Args:
        dispatcher: the jobs.
        workers: actors (``None``: see ``plan``).
        on_result: progress callback.
        address: cluster address (``None``: a local Ray instance unless one is initialised).
    """
    ray = connect(address)
    gpu_actors, cpu_actors, threads = plan(dispatcher, workers, ray.cluster_resources())
    remote = ray.remote(_Actor)
    actors: dict[int, tuple] = {}  # id -> (handle, uses a GPU)
    counter = iter(range(10**9))

    def start(gpu: bool) -> None:
        opts = {"num_gpus": 1, "num_cpus": 1} if gpu else {"num_cpus": threads}
        actors[next(counter)] = (remote.options(**opts).remote(threads), gpu)

    for _ in range(gpu_actors):
        start(True)
    for _ in range(cpu_actors):
        start(False)
    in_flight: dict = {}  # object ref -> actor id
    start_failures = 0
    try:
        while not dispatcher.finished:
            for aid, (handle, gpu) in list(actors.items()):
                if aid not in dispatcher.running:
                    job = dispatcher.take(aid, gpu)
                    if job is not None:
                        in_flight[handle.run.remote(job.to_dict())] = aid
            on_result(None, len(dispatcher.running))
            if not in_flight:
                dispatcher.abandon("no Ray worker can take these jobs")
                break
            ready, _ = ray.wait(list(in_flight), num_returns=1)
            for ref in ready:
                aid = in_flight.pop(ref)
                try:
                    result = ray.get(ref)
                except ray.exceptions.RayActorError as e:
                    handle, gpu = actors.pop(aid)
                    held = dispatcher.died(aid, f"Ray actor died: {type(e).__name__}")
                    ray.kill(handle, no_restart=True)
                    start_failures += 1
                    if start_failures > MAX_START_FAILURES + dispatcher.max_retries:
                        dispatcher.abandon("Ray workers keep dying")
                        break
                    if held is not None and held.line in dispatcher.results:
                        on_result(dispatcher.results[held.line], len(dispatcher.running))
                    if dispatcher.has_work(gpu):
                        start(gpu)
                    continue
                start_failures = 0
                dispatcher.finish(aid, result)
                on_result(result, len(dispatcher.running))
    finally:
        for handle, _ in actors.values():
            ray.kill(handle, no_restart=True)


__all__ = ["RAY_MISSING", "connect", "import_ray", "plan", "run_ray"]
