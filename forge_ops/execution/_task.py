"""The executor interface: what a task is, what it reports, and the small Executor protocol."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

from ._plan import JobSpec
from ._sandbox import SandboxPolicy


@dataclass(frozen=True)
class ChainedInput:
    """An input whose producer was still running when the task was submitted: the worker reads
    it from ``upstream``'s result, which the executor hands over once it exists."""

    upstream: str  # the producing job's id
    port: str  # its output port
    name: str  # its name, for messages


@dataclass(frozen=True)
class TaskSpec:
    """One attempt to run a job: the job, its inputs' hashes and where artifacts live."""

    job: JobSpec
    inputs: dict[str, str]
    store: str
    execution: str
    commit: str | None = None
    max_retries: int = 1
    #: The job's cache key (None: not cached); the engine records it once the task succeeds.
    cache_key: str | None = None
    architectures: dict[str, Any] = field(default_factory=dict)
    layers: dict[str, Any] = field(default_factory=dict)
    artifacts: dict[str, Any] = field(default_factory=dict)
    #: Inputs still being produced at submission (by port); their hashes, the cache key and
    #: the cache lookup are then worked out in the worker (see ``resolve_chained``).
    chained: dict[str, ChainedInput] = field(default_factory=dict)
    #: For chained tasks: whether a cache hit may stand in for running the job.
    cache_lookup: bool = False
    #: For chained tasks: the runtime versions the engine keys the cache with.
    runtime: dict[str, str] = field(default_factory=dict)
    #: How the worker confines the job (set by executors that run jobs in a sandbox).
    sandbox: SandboxPolicy | None = None

    @property
    def job_id(self) -> str:
        return self.job.job_id

    @property
    def chained_upstream(self) -> list[str]:
        """The jobs whose results a chained task receives, in the order the executor passes
        them."""
        return sorted({chained.upstream for chained in self.chained.values()})


class TaskEventKind(StrEnum):
    """Messages from a running task to the engine."""

    STARTED = "started"  # data: pid, attempt (0 first; a retry after a worker crash counts up)
    FEEDBACK = "feedback"  # data: items (see FeedbackBatcher)
    SUCCEEDED = "succeeded"  # data: outputs {port: artifact hash} (+ cached_from on a hit)
    FAILED = "failed"  # data: error (one line), traceback (the user's frames)
    CANCELLED = "cancelled"  # data: {} or, for a chained task whose upstream failed, skipped


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


@runtime_checkable
class ChainingExecutor(Executor, Protocol):
    """An executor that can submit a task before its upstream tasks finish (the engine checks
    with ``isinstance``, which looks for the methods, not their signatures).

    ``upstream`` maps each job of ``task.chained_upstream`` to the handle ``submit`` or
    ``submit_chained`` returned for it. The task runs once they all succeeded; if one of them
    does not, it ends CANCELLED with ``skipped`` in its data and runs nothing. Chained tasks
    report ``inputs`` and ``cache_key`` with their terminal event.
    """

    def submit_chained(self, task: TaskSpec, upstream: dict[str, TaskHandle],
                       report: Report) -> TaskHandle: ...
