"""The engine: schedules a plan's jobs on an executor, caches, cancels, restarts.

::

    engine = Engine(ArtifactStore(path), LocalExecutor())
    result = engine.run(plan, on_event)                # blocks; or engine.start(...) -> handle
    handle = engine.restart(plan, result, job_id, on_event)   # it and its downstream re-run

Each execution is driven by one thread (see ``_run``). ``on_event`` is called from that thread;
it should hand work off quickly.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Collection, Mapping
from concurrent.futures import Future
from typing import Any

from forge_ops.artifacts import ArtifactStore
from forge_ops.schema import JobStatus, new_id

from ._cache import CacheIndex
from ._plan import Plan
from ._results import ExecutionResult, JobRecord
from ._run import CancelRequest, EventCallback, Run
from ._shared import SharedJobs
from ._task import Executor

_log = logging.getLogger(__name__)


class ExecutionHandle:
    """A running execution: cancel it (or one job), wait for its result."""

    def __init__(self, run: Run) -> None:
        self._run = run

    @property
    def execution(self) -> str:
        return self._run.execution

    @property
    def to_run(self) -> frozenset[str]:
        """The jobs this execution runs (every job but those a restart keeps)."""
        return self._run.to_run_set

    @property
    def future(self) -> Future[ExecutionResult]:
        """The result as a future (``asyncio.wrap_future`` awaits it); it raises RuntimeError
        if the engine itself failed without one."""
        return self._run.future

    def cancel(self, job: str | None = None, reason: str = "cancelled by request") -> None:
        """Cancel one job (and so its downstream) or, with no job, the whole execution:
        interrupt first, kill after the engine's grace period. ``reason`` becomes the
        cancelled jobs' error."""
        if job is not None and job not in self._run.plan.jobs:
            raise KeyError(f"no job {job!r} in execution {self.execution}")
        self._run.inbox.put(CancelRequest(job, reason))

    def done(self) -> bool:
        return self._run.future.done()

    def wait(self, timeout: float | None = None) -> ExecutionResult:
        """Block until the execution ends; raises TimeoutError after ``timeout`` seconds."""
        try:
            return self._run.future.result(timeout)
        except TimeoutError:
            raise TimeoutError(
                f"execution {self.execution} still running after {timeout} s") from None

    def records(self) -> dict[str, JobRecord]:
        """A snapshot of the jobs' records so far."""
        return dict(self._run.records)


class Engine:
    """Runs plans on ``executor`` with artifacts and the cache index in ``store``."""

    def __init__(self, store: ArtifactStore, executor: Executor, *, cancel_grace: float = 5.0,
                 feedback_interval: float = 0.1, max_retries: int = 1,
                 console_cap: int = 100_000, logger: logging.Logger | None = None) -> None:
        self.store = store
        self.executor = executor
        self.cache = CacheIndex(store)
        self.cancel_grace = cancel_grace
        self.feedback_interval = feedback_interval
        self.max_retries = max_retries
        self.console_cap = console_cap
        self.log = logger or _log
        #: Jobs in flight across this engine's executions, so concurrent runs share them.
        self.shared = SharedJobs()

    def start(self, plan: Plan, on_event: EventCallback | None = None, *,
              execution: str | None = None, commit: str | None = None, use_cache: bool = True,
              keep: Mapping[str, JobRecord] | None = None,
              force: Collection[str] = ()) -> ExecutionHandle:
        """Start running ``plan`` in the background.

        ``keep``: records of jobs not to run again (their outputs are reused); ``force``: jobs
        to run even on a cache hit. ``use_cache=False`` recomputes every job.
        """
        self.executor.start()
        run = Run(self, plan, on_event, execution=execution or new_id(), commit=commit,
                  use_cache=use_cache, keep=dict(keep or {}), force=frozenset(force))
        thread = threading.Thread(target=run.main, name=f"forge-exec-{run.execution}",
                                  daemon=True)
        thread.start()
        return ExecutionHandle(run)

    def run(self, plan: Plan, on_event: EventCallback | None = None, **options: Any
            ) -> ExecutionResult:
        """Run ``plan`` to the end (see ``start`` for the options)."""
        return self.start(plan, on_event, **options).wait()

    def restart(self, plan: Plan, previous: ExecutionResult, job: str,
                on_event: EventCallback | None = None, *, commit: str | None = None
                ) -> ExecutionHandle:
        """Re-run ``job`` and everything downstream of it in ``previous``'s execution, forced;
        the other jobs keep their records and outputs, except those that did not succeed
        (failed, cancelled, interrupted): they run again too, from the cache where it has
        them."""
        rerun = plan.downstream(job)
        keep = {
            j: r for j, r in previous.jobs.items()
            if j not in rerun and r.status in (JobStatus.SUCCEEDED, JobStatus.CACHED)
        }
        return self.start(plan, on_event, execution=previous.execution, commit=commit,
                          keep=keep, force=rerun)
