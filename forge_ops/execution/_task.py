"""The executor interface: what a task is, what it reports, and the small Executor protocol."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from ._plan import JobSpec


@dataclass(frozen=True)
class TaskSpec:
    """One attempt to run a job: the job, its inputs' hashes and where artifacts live."""

    job: JobSpec
    inputs: dict[str, str]
    store: str
    execution: str
    commit: str | None = None
    max_retries: int = 1
    #: Recorded in the cache index by the worker when the task succeeds (None: do not).
    cache_key: str | None = None
    architectures: dict[str, Any] = field(default_factory=dict)
    layers: dict[str, Any] = field(default_factory=dict)
    artifacts: dict[str, Any] = field(default_factory=dict)

    @property
    def job_id(self) -> str:
        return self.job.job_id


class TaskEventKind(StrEnum):
    """Messages from a running task to the engine."""

    STARTED = "started"  # data: pid, attempt (0 first; a retry after a worker crash counts up)
    FEEDBACK = "feedback"  # data: items (see FeedbackBatcher)
    SUCCEEDED = "succeeded"  # data: outputs {port: artifact hash}
    FAILED = "failed"  # data: error (one line), traceback (the user's frames)
    CANCELLED = "cancelled"  # data: {}


TERMINAL_KINDS = frozenset({TaskEventKind.SUCCEEDED, TaskEventKind.FAILED,
                            TaskEventKind.CANCELLED})


@dataclass(frozen=True)
class TaskEvent:
    job_id: str
    kind: TaskEventKind
    data: dict[str, Any] = field(default_factory=dict)


Report = Callable[[TaskEvent], None]


class TaskHandle(Protocol):
    """A submitted task; ``cancel(force=False)`` interrupts it (KeyboardInterrupt in the job),
    ``cancel(force=True)`` kills its worker. Either way the task then reports CANCELLED."""

    def cancel(self, force: bool = False) -> None: ...


class Executor(Protocol):
    """Runs tasks somewhere and reports their events (from any thread) through ``report``.

    Every submitted task ends with exactly one terminal event (succeeded, failed, cancelled).
    Worker crashes are retried up to ``task.max_retries`` times; a retry reports STARTED again
    with a higher attempt number.
    """

    name: str

    def start(self) -> None: ...

    def submit(self, task: TaskSpec, report: Report) -> TaskHandle: ...

    def shutdown(self) -> None: ...
