"""Checkpoints for long operations: ``checkpoint(state, step=…)`` saves, ``resume()`` gives back
the last one, so that an attempt that follows a lost worker (a retry), or a restart of a job
that did not finish, goes on from there instead of from the start.

    state = resume()                       # None on a first attempt
    start = 0 if state is None else state["iteration"]
    for iteration in range(start, total):
        ...
        if iteration % 100 == 0:
            checkpoint({"iteration": iteration, "model": net.state_dict()}, step=iteration)

A checkpoint belongs to one job of one execution with the same inputs (its cache key): another
execution, or the job with other inputs, starts afresh. It is kept in the artifact store until
the job succeeds. Outside a job (or with an executor that keeps none) ``checkpoint`` does
nothing and ``resume`` returns None.
"""

from __future__ import annotations

from typing import Any

from ._context import Checkpoints, current_job

__all__ = ["Checkpoints", "checkpoint", "resume"]


def checkpoint(state: Any, *, step: int) -> None:
    """Save ``state`` (tensors, state dicts, numbers, lists and dicts of them) as this job's
    latest checkpoint, reached at ``step`` (an iteration count: the console says it when an
    attempt resumes)."""
    keeper = current_job().checkpoints
    if keeper is not None:
        keeper.save(state, int(step))


def resume() -> Any:
    """The state of this job's latest checkpoint, or None (a first attempt, or none kept)."""
    keeper = current_job().checkpoints
    if keeper is None:
        return None
    found = keeper.load()
    if found is None:
        return None
    step, state = found
    print(f"[forge] resuming from the checkpoint saved at step {step}")
    return state
