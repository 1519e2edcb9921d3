"""The job that is running in this process: its feedback sink and artifact loader.

Process-wide rather than a context variable on purpose: threads started by operation code must
report to the same job. An executor runs one job per process at a time.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from ._sink import FeedbackSink, NullSink

__all__ = ["ArtifactLoader", "JobContext", "current_job", "job_context"]

#: Loads a stored artifact's value from its content hash (the executor's artifact store).
ArtifactLoader = Callable[[str], Any]


@dataclass(frozen=True)
class JobContext:
    sink: FeedbackSink
    load_artifact: ArtifactLoader | None = None


_NO_JOB = JobContext(NullSink())
_lock = threading.Lock()
_current: JobContext = _NO_JOB


def current_job() -> JobContext:
    """The running job's context (a context with a NullSink when no job is running)."""
    return _current


@contextmanager
def job_context(
    sink: FeedbackSink, load_artifact: ArtifactLoader | None = None
) -> Iterator[JobContext]:
    """Make ``sink`` (and ``load_artifact``) the current job's for the duration of the block."""
    global _current
    context = JobContext(sink, load_artifact)
    with _lock:
        previous, _current = _current, context
    try:
        yield context
    finally:
        with _lock:
            _current = previous
