"""The job that is running in this process: its feedback sink and artifact loader.

Process-wide rather than a context variable on purpose: threads started by operation code must
report to the same job. An executor runs one job per process at a time.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

from ._sink import FeedbackSink, NullSink

__all__ = ["ArtifactLoader", "Checkpoints", "JobContext", "current_job", "job_context"]

#: Loads a stored artifact's value from its content hash (the executor's artifact store).
ArtifactLoader = Callable[[str], Any]


class Checkpoints(Protocol):
    """Where a job's checkpoints go (the executor's artifact store; see ``_checkpoints``)."""

    def save(self, state: Any, step: int) -> None: ...

    def load(self) -> tuple[int, Any] | None: ...


@dataclass(frozen=True)
class JobContext:
    sink: FeedbackSink
    load_artifact: ArtifactLoader | None = None
    #: Where ``checkpoint``/``resume`` keep the job's checkpoints (None: nowhere).
    checkpoints: Checkpoints | None = None


_NO_JOB = JobContext(NullSink())
_lock = threading.Lock()
_current: JobContext = _NO_JOB


def current_job() -> JobContext:
    """The running job's context (a context with a NullSink when no job is running)."""
    return _current


@contextmanager
def job_context(
    sink: FeedbackSink, load_artifact: ArtifactLoader | None = None,
    checkpoints: Checkpoints | None = None,
) -> Iterator[JobContext]:
    """Make ``sink`` (``load_artifact``, ``checkpoints``) the current job's for the duration of
    the block."""
    global _current
    context = JobContext(sink, load_artifact, checkpoints)
    with _lock:
        previous, _current = _current, context
    try:
        yield context
    finally:
        with _lock:
            _current = previous
