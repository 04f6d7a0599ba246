"""Running one job with a worker's models (a ``unit2av.pipeline.models.ModelCache`` that keeps every
model it loads: a worker serving jobs for two languages keeps both vocoders; jobs of one AV2AV
container share its face renderer; the GE2E speaker encoder is loaded the first time a job needs it).
"""

from __future__ import annotations

import logging
import os
import signal
import time
from pathlib import Path

from ..errors import Unit2AVError
from ..pipeline.models import ModelCache
from .registry import COMMANDS

log = logging.getLogger(__name__)

# Internal test hook, not a user feature: "<line>:<flag file>" makes the worker that starts job
# <line> kill itself with SIGKILL (once: the flag file records that it happened), after its models
# are loaded, so the tests can check that a dead worker's job is retried elsewhere.
_KILL_HOOK = "_UNIT2AV_BATCH_TEST_KILL"


def _one_line(e: BaseException) -> str:
    """A Unit2AVError's own line; other errors as ``Type: message`` on one line."""
    if isinstance(e, Unit2AVError):
        return " ".join(str(e).split())
    return " ".join(f"{type(e).__name__}: {e}".split())[:500]


def _test_kill(line: int) -> None:
    spec = os.environ.get(_KILL_HOOK)
    if not spec:
        return
    target, _, flag = spec.partition(":")
    if int(target) == line and not os.path.exists(flag):
        Path(flag).write_text(str(os.getpid()))
        os.kill(os.getpid(), signal.SIGKILL)


def execute(job: dict, cache: ModelCache) -> dict:
    """Run one job (``Job.to_dict()``) with the worker's models; never raises for a job's own failure.

    Returns:
        ``{"line", "status": "done" | "failed", "reason", "seconds", ...durations}``.
    """
    t0 = time.perf_counter()
    cmd = COMMANDS[job["command"]]
    params = dict(job["params"])
    try:
        if cmd.models is not None:
            params.update(cmd.models(cache, params))
        _test_kill(job["line"])
        result = cmd.resolve()(**params)
        out = {"status": "done", "reason": None}
        if cmd.summary is not None:
            out.update(cmd.summary(result))
    except Exception as e:  # a bad input fails its own job only
        log.debug("job %d failed", job["line"], exc_info=True)
        out = {"status": "failed", "reason": _one_line(e)}
    out.update(line=job["line"], seconds=round(time.perf_counter() - t0, 3))
    return out


__all__ = ["ModelCache", "execute"]
