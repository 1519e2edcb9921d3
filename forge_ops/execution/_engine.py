"""The engine: schedules a plan's jobs on an executor, caches, cancels, restarts.

::

    engine = Engine(ArtifactStore(path), LocalExecutor())
    result = engine.run(plan, on_event)                # blocks; or engine.start(...) -> handle
    handle = engine.restart(plan, result, job_id, on_event)   # it and its downstream re-run

Each execution is driven by one thread reading an inbox (task events from the executor, cancel
requests). A job is submitted when all of its upstream jobs succeeded (or were cached); before
that its cache key is computed from its inputs' hashes and, on a hit, no task is launched. A
failed or cancelled job's downstream jobs are not run (marked cancelled, saying why); independent
branches continue. ``on_event`` is called from that thread; it should hand work off quickly.

On an executor that chains tasks (Ray), a job whose upstream jobs are still running is submitted
at once with references to their results, so the executor starts it without a round trip
through this thread; its key and cache lookup then happen in the worker (a hit there runs no
operation and is not counted as a launched task). If an upstream job fails, the chained job is
cancelled before it runs.
"""

from __future__ import annotations

import datetime as dt
import logging
import queue
import threading
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from forge_ops.artifacts import ArtifactStore
from forge_ops.schema import FINISHED_STATUSES, JobStatus, new_id

from ._batch import FeedbackBatcher
from ._cache import CacheIndex, cache_key, runtime_versions
from ._events import Event, ExecutionStatusChanged, JobStatusChanged
from ._plan import Plan
from ._recording import RunRecorder
from ._task import (
    TERMINAL_KINDS,
    ChainedInput,
    Executor,
    TaskEvent,
    TaskEventKind,
    TaskHandle,
    TaskSpec,
)
from ._worker import missing_output

_log = logging.getLogger(__name__)

EventCallback = Callable[[Event], None]
#: After a forced cancel, how long to wait for the executor's word before giving up on it.
FORCED_CANCEL_TIMEOUT = 10.0


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")


@dataclass(frozen=True)
class JobRecord:
    """Where a job stands (execution document ``jobs`` entry, plus run details)."""

    job: str
    name: str
    operation: str
    status: JobStatus = JobStatus.QUEUED
    started: str | None = None
    finished: str | None = None
    error: str | None = None
    traceback: str | None = None
    cache_key: str | None = None
    cached_from: str | None = None
    outputs: dict[str, str] = field(default_factory=dict)
    #: The artifact hashes the job read, by input port (an Output job publishes ``data``).
    inputs: dict[str, str] = field(default_factory=dict)
    attempts: int = 0

    @property
    def duration(self) -> float | None:
        """Seconds from start to finish, if both are known."""
        if not (self.started and self.finished):
            return None
        start = dt.datetime.fromisoformat(self.started)
        return (dt.datetime.fromisoformat(self.finished) - start).total_seconds()


_RECORD_FIELDS = frozenset(JobRecord.__dataclass_fields__)


def _replaced(record: JobRecord, changes: dict[str, Any]) -> JobRecord:
    """``dataclasses.replace`` without its per-call field introspection (a record changes a
    few times per job, and a pipeline of tiny jobs has many)."""
    if not changes.keys() <= _RECORD_FIELDS:
        raise TypeError(f"JobRecord has no field {sorted(changes.keys() - _RECORD_FIELDS)}")
    new = object.__new__(JobRecord)
    new.__dict__.update(record.__dict__)
    new.__dict__.update(changes)
    return new


@dataclass(frozen=True)
class ExecutionResult:
    """The final record of an execution (what ``forge run --json`` prints)."""

    execution: str
    status: JobStatus
    jobs: dict[str, JobRecord]
    started: str
    finished: str
    tasks_launched: int
    executor: str

    def outputs(self) -> dict[str, dict[str, str]]:
        """``{job: {port: artifact hash}}`` of every job that has outputs."""
        return {job: dict(r.outputs) for job, r in self.jobs.items() if r.outputs}

    def to_plain(self) -> dict[str, Any]:
        return {
            "execution": self.execution,
            "status": self.status.value,
            "executor": self.executor,
            "started": self.started,
            "finished": self.finished,
            "tasks_launched": self.tasks_launched,
            "jobs": {
                job: {
                    "name": r.name,
                    "status": r.status.value,
                    "duration": r.duration,
                    "cached_from": r.cached_from,
                    "cache_key": r.cache_key,
                    "outputs": dict(r.outputs),
                    "inputs": dict(r.inputs),
                    "error": r.error,
                    "attempts": r.attempts,
                }
                for job, r in self.jobs.items()
            },
        }


@dataclass(frozen=True)
class _CancelRequest:
    job: str | None  # None: the whole execution


class ExecutionHandle:
    """A running execution: cancel it (or one job), wait for its result."""

    def __init__(self, run: _Run) -> None:
        self._run = run

    @property
    def execution(self) -> str:
        return self._run.execution

    def cancel(self, job: str | None = None) -> None:
        """Cancel one job (and so its downstream) or, with no job, the whole execution:
        interrupt first, kill after the engine's grace period."""
        if job is not None and job not in self._run.plan.jobs:
            raise KeyError(f"no job {job!r} in execution {self.execution}")
        self._run.inbox.put(_CancelRequest(job))

    def done(self) -> bool:
        return self._run.finished.is_set()

    def wait(self, timeout: float | None = None) -> ExecutionResult:
        """Block until the execution ends; raises TimeoutError after ``timeout`` seconds."""
        if not self._run.finished.wait(timeout):
            raise TimeoutError(f"execution {self.execution} still running after {timeout} s")
        if self._run.result is None:
            raise RuntimeError(f"execution {self.execution} ended without a result (engine "
                               "error; see the log)")
        return self._run.result

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

    def start(self, plan: Plan, on_event: EventCallback | None = None, *,
              execution: str | None = None, commit: str | None = None, use_cache: bool = True,
              keep: Mapping[str, JobRecord] | None = None,
              force: Collection[str] = ()) -> ExecutionHandle:
        """Start running ``plan`` in the background.

        ``keep``: records of jobs not to run again (their outputs are reused); ``force``: jobs
        to run even on a cache hit. ``use_cache=False`` recomputes every job.
        """
        self.executor.start()
        run = _Run(self, plan, on_event, execution=execution or new_id(), commit=commit,
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
        """Re-run ``job`` and everything downstream of it in ``previous``'s execution; the other
        jobs keep their records and outputs."""
        rerun = plan.downstream(job)
        keep = {j: r for j, r in previous.jobs.items() if j not in rerun}
        return self.start(plan, on_event, execution=previous.execution, commit=commit,
                          keep=keep, force=rerun)


class _Run:
    """One execution's state, driven by its own thread (``main``)."""

    def __init__(self, engine: Engine, plan: Plan, on_event: EventCallback | None, *,
                 execution: str, commit: str | None, use_cache: bool,
                 keep: dict[str, JobRecord], force: frozenset[str]) -> None:
        self.engine = engine
        self.plan = plan
        self.on_event = on_event
        self.execution = execution
        self.commit = commit
        self.use_cache = use_cache
        self.force = force
        self.inbox: queue.Queue[TaskEvent | _CancelRequest] = queue.Queue()
        self.records: dict[str, JobRecord] = {}
        for job_id, spec in plan.jobs.items():
            kept = keep.get(job_id)
            self.records[job_id] = kept or JobRecord(job_id, spec.name, spec.operation)
        self.to_run = [j for j in plan.order if j not in keep]
        self.to_run_set = frozenset(self.to_run)
        #: Jobs of ``to_run`` not yet finished (kept by ``update``; checked after every event).
        self.unfinished = {j for j in self.to_run
                           if self.records[j].status not in FINISHED_STATUSES}
        #: Queued jobs not yet launched, in plan order.
        self.waiting: dict[str, None] = dict.fromkeys(self.to_run)
        #: Waiting jobs to (re)examine in ``schedule`` (an ordered set).
        self.candidates: dict[str, None] = dict.fromkeys(self.to_run)
        #: Each job's upstream jobs, sorted (looked up several times per job and event).
        self.upstream = {job_id: tuple(sorted(plan.upstream(job_id))) for job_id in plan.order}
        self.dependents: dict[str, list[str]] = {}
        for job_id in plan.order:
            for upstream in self.upstream[job_id]:
                self.dependents.setdefault(upstream, []).append(job_id)
        self.handles: dict[str, TaskHandle] = {}
        #: The executor's ``submit_chained`` if it has one; jobs submitted that way.
        self.submit_chained: Callable[..., TaskHandle] | None = getattr(
            engine.executor, "submit_chained", None)
        self.chained: set[str] = set()
        self.runtime = runtime_versions()
        self.cancel_deadlines: dict[str, float] = {}
        self.forced: dict[str, float] = {}
        self.cancelled_by_user: set[str] = set()
        self.cancel_all = False
        self.tasks_launched = 0
        self.batcher = FeedbackBatcher(execution, engine.feedback_interval,
                                       engine.console_cap)
        self.recorder = RunRecorder(engine.store, engine.cache, execution=execution,
                                    commit=commit, log=engine.log)
        self.finished = threading.Event()
        self.result: ExecutionResult | None = None
        self.started = _now()

    # -- events ------------------------------------------------------------------------------
    def emit(self, event: Event) -> None:
        if self.on_event is None:
            return
        try:
            self.on_event(event)
        except Exception:
            self.engine.log.exception("on_event callback failed for %s", event)

    def update(self, job: str, **changes: Any) -> JobRecord:
        record = _replaced(self.records[job], changes)
        self.records[job] = record
        if record.status in FINISHED_STATUSES:
            self.unfinished.discard(job)
            # Jobs waiting on this one may now run (or never will).
            self.candidates.update(dict.fromkeys(self.dependents.get(job, ())))
        elif job in self.to_run_set:
            self.unfinished.add(job)
        if "status" in changes:
            self.flush(job)
            if self.on_event is None:
                return record
            self.emit(JobStatusChanged(
                self.execution, job, record.status, _now(), started=record.started,
                finished=record.finished, error=record.error, traceback=record.traceback,
                cache_key=record.cache_key, cached_from=record.cached_from,
                outputs=dict(record.outputs), attempt=max(0, record.attempts - 1)))
        return record

    def flush(self, job: str) -> None:
        feedback = self.batcher.flush(job, time.monotonic())
        if feedback is not None:
            self.emit(feedback)

    # -- the loop ----------------------------------------------------------------------------
    def main(self) -> None:
        try:
            self.emit(ExecutionStatusChanged(self.execution, JobStatus.RUNNING, self.started))
            for job in self.to_run:
                self.update(job, status=JobStatus.QUEUED, started=None, finished=None,
                            error=None, traceback=None, cached_from=None, outputs={},
                            inputs={}, attempts=0)
            self.schedule()
            while not self.all_finished():
                self.step()
            self.recorder.flush()
            status = self.final_status()
            self.result = ExecutionResult(self.execution, status, dict(self.records),
                                          self.started, _now(), self.tasks_launched,
                                          self.engine.executor.name)
            self.emit(ExecutionStatusChanged(self.execution, status, self.result.finished))
        except Exception as exc:
            # Never leave a caller waiting on a result: settle every job, say why.
            self.engine.log.exception("execution %s: engine failure", self.execution)
            self.recorder.flush()
            for handle in self.handles.values():
                handle.cancel(force=True)
            for job in self.to_run:
                if self.records[job].status not in FINISHED_STATUSES:
                    self.records[job] = replace(self.records[job], status=JobStatus.FAILED,
                                                finished=_now(),
                                                error=f"the engine failed: {exc!r}")
            self.result = ExecutionResult(self.execution, JobStatus.FAILED, dict(self.records),
                                          self.started, _now(), self.tasks_launched,
                                          self.engine.executor.name)
            self.emit(ExecutionStatusChanged(self.execution, JobStatus.FAILED,
                                             self.result.finished))
        finally:
            self.finished.set()

    def all_finished(self) -> bool:
        return not self.unfinished

    def step(self) -> None:
        now = time.monotonic()
        deadlines = [*self.cancel_deadlines.values(), *self.forced.values()]
        for due in (self.batcher.next_due(), self.recorder.deadline()):
            if due is not None:
                deadlines.append(due)
        timeout = max(0.0, min(deadlines) - now) if deadlines else 0.5
        try:
            message = self.inbox.get(timeout=min(timeout, 0.5))
        except queue.Empty:
            message = None
        if isinstance(message, TaskEvent):
            self.on_task_event(message)
        elif isinstance(message, _CancelRequest):
            self.on_cancel(message.job)
        now = time.monotonic()
        for job in self.batcher.due(now):
            self.flush(job)
        if self.recorder.due(now, idle=self.inbox.empty()):
            self.recorder.flush()
        for job, deadline in list(self.cancel_deadlines.items()):
            if now >= deadline:
                del self.cancel_deadlines[job]
                if self.records[job].status not in FINISHED_STATUSES:
                    self.batcher.note(job, "[forge] the job did not stop when interrupted; "
                                           "killing its worker")
                    self.handles[job].cancel(force=True)
                    self.forced[job] = now + FORCED_CANCEL_TIMEOUT
        for job, deadline in list(self.forced.items()):
            if now >= deadline:
                del self.forced[job]
                if self.records[job].status not in FINISHED_STATUSES:
                    self.finish_unrun(job, JobStatus.CANCELLED,
                                      "cancelled; the executor did not confirm the worker died")
        self.schedule()

    def on_task_event(self, event: TaskEvent) -> None:
        job = event.job_id
        record = self.records.get(job)
        if record is None or record.status in FINISHED_STATUSES:
            return  # a late message about a job already settled
        if event.kind in TERMINAL_KINDS and record.status is JobStatus.QUEUED \
                and "pid" in event.data:
            # The executor reported a short job's start and end in one message.
            self.on_task_event(TaskEvent(job, TaskEventKind.STARTED, event.data))
            record = self.records[job]
        if event.kind is TaskEventKind.STARTED:
            attempt = int(event.data.get("attempt", record.attempts))
            if attempt > 0:
                self.batcher.note(job, f"[forge] the worker died; retrying (attempt "
                                       f"{attempt + 1} of {self.engine.max_retries + 1})")
            started = record.started or event.data.get("started") or _now()
            self.update(job, status=JobStatus.RUNNING, started=started, attempts=attempt + 1)
        elif event.kind is TaskEventKind.FEEDBACK:
            self.batcher.add(job, event.data.get("items", []))
            return
        # A chained task reports what it worked out in the worker.
        known = {name: event.data[name] for name in ("inputs", "cache_key")
                 if name in event.data}
        if event.kind is TaskEventKind.SUCCEEDED and event.data.get("cached_from"):
            self.tasks_launched -= 1  # a lookup, no operation ran
            now = _now()
            self.update(job, status=JobStatus.CACHED, started=now, finished=now,
                        outputs=dict(event.data.get("outputs", {})),
                        cached_from=event.data["cached_from"], **known)
        elif event.kind is TaskEventKind.SUCCEEDED:
            outputs = dict(event.data.get("outputs", {}))
            record = self.update(job, status=JobStatus.SUCCEEDED, finished=_now(),
                                 outputs=outputs, started=record.started or _now(), **known)
            self.recorder.succeeded(job, outputs, record.cache_key)
        elif event.kind is TaskEventKind.FAILED:
            self.update(job, status=JobStatus.FAILED, finished=_now(),
                        error=str(event.data.get("error", "failed")),
                        traceback=event.data.get("traceback") or None, **known)
        elif event.kind is TaskEventKind.CANCELLED and event.data.get("skipped"):
            self.tasks_launched -= 1  # it ran nothing
            self.finish_unrun(job, JobStatus.CANCELLED,
                              self.blocked_by(job) or str(event.data["skipped"]))
        elif event.kind is TaskEventKind.CANCELLED:
            self.update(job, status=JobStatus.CANCELLED, finished=_now(),
                        error="cancelled by request")
        if event.kind in TERMINAL_KINDS:
            self.handles.pop(job, None)
            self.chained.discard(job)
            self.cancel_deadlines.pop(job, None)
            self.forced.pop(job, None)

    def on_cancel(self, job: str | None) -> None:
        targets = self.to_run if job is None else [job]
        if job is None:
            self.cancel_all = True
        for target in targets:
            record = self.records[target]
            if record.status in FINISHED_STATUSES:
                continue
            self.cancelled_by_user.add(target)
            handle = self.handles.get(target)
            if handle is None:
                self.finish_unrun(target, JobStatus.CANCELLED, "cancelled by request")
            elif target not in self.cancel_deadlines and target not in self.forced:
                handle.cancel(force=False)
                self.cancel_deadlines[target] = time.monotonic() + self.engine.cancel_grace

    def finish_unrun(self, job: str, status: JobStatus, why: str) -> None:
        self.update(job, status=status, finished=_now(), error=why)

    # -- scheduling --------------------------------------------------------------------------
    def schedule(self) -> None:
        """Submit (or satisfy from the cache) every queued job whose inputs are ready.

        Only candidates are examined: at first every job, later the dependents of jobs that
        finished (a cache hit finishes a job at once and so feeds this same loop) or, on a
        chaining executor, were submitted.
        """
        while self.candidates:
            job = next(iter(self.candidates))
            del self.candidates[job]
            if job not in self.waiting:
                if job in self.chained:
                    self.unchain_if_blocked(job)
                continue
            if self.records[job].status is not JobStatus.QUEUED:
                del self.waiting[job]
                continue
            blocked = self.blocked_by(job)
            if blocked is not None:
                del self.waiting[job]
                self.finish_unrun(job, JobStatus.CANCELLED, blocked)
            elif self.ready(job) or self.chainable(job):
                del self.waiting[job]
                self.launch(job)

    def chainable(self, job: str) -> bool:
        """Whether ``job`` can be submitted now, chained to its still running upstream jobs."""
        return self.submit_chained is not None and all(
            self.records[u].status in (JobStatus.SUCCEEDED, JobStatus.CACHED)
            or u in self.handles for u in self.upstream[job])

    def unchain_if_blocked(self, job: str) -> None:
        """Cancel a chained job that has not started if one of its upstream jobs failed."""
        if self.records[job].status is not JobStatus.QUEUED:
            return
        blocked = self.blocked_by(job)
        if blocked is not None:
            self.chained.discard(job)
            handle = self.handles.pop(job)
            handle.cancel()
            self.tasks_launched -= 1  # it will run nothing
            self.finish_unrun(job, JobStatus.CANCELLED, blocked)

    def blocked_by(self, job: str) -> str | None:
        for upstream in self.upstream[job]:
            record = self.records[upstream]
            if record.status in (JobStatus.FAILED, JobStatus.CANCELLED):
                verb = "failed" if record.status is JobStatus.FAILED else "was cancelled"
                return f"not run: upstream job {record.name} {verb}"
        return None

    def ready(self, job: str) -> bool:
        return all(self.records[u].status in (JobStatus.SUCCEEDED, JobStatus.CACHED)
                   for u in self.upstream[job])

    def launch(self, job: str) -> None:
        """Satisfy ``job`` from the cache or submit it (chained to running upstream jobs)."""
        spec = self.plan.jobs[job]
        inputs: dict[str, str] = {}
        chained: dict[str, ChainedInput] = {}
        for port, wire in spec.inputs.items():
            upstream = self.records[wire.src_job]
            if upstream.status not in (JobStatus.SUCCEEDED, JobStatus.CACHED):
                chained[port] = ChainedInput(wire.src_job, wire.src_port, upstream.name)
            elif wire.src_port in upstream.outputs:
                inputs[port] = upstream.outputs[wire.src_port]
            else:
                self.finish_unrun(job, JobStatus.FAILED, missing_output(
                    port, wire.src_port, upstream.name, upstream.outputs))
                return
        use_cache = (self.use_cache and job not in self.force
                     and not spec.settings.always_recompute)
        key = None
        if not chained:
            key = cache_key(spec, inputs, self.runtime)
            self.update(job, cache_key=key, inputs=inputs)
            entry = self.engine.cache.lookup(key) if use_cache else None
            if entry is not None:
                now = _now()
                self.update(job, status=JobStatus.CACHED, started=now, finished=now,
                            outputs=dict(entry.outputs), cached_from=entry.execution)
                return
        task = TaskSpec(job=spec, inputs=inputs, store=self.engine.store.location,
                        execution=self.execution, commit=self.commit,
                        max_retries=self.engine.max_retries, cache_key=key,
                        architectures=self.plan.architectures, layers=self.plan.layers,
                        artifacts=self.plan.artifacts, chained=chained,
                        cache_lookup=use_cache and bool(chained), runtime=self.runtime)
        try:
            if chained and self.submit_chained is not None:
                upstream_handles = {u: self.handles[u] for u in task.chained_upstream}
                handle = self.submit_chained(task, upstream_handles, self.inbox.put)
            else:
                handle = self.engine.executor.submit(task, self.inbox.put)
        except Exception as exc:
            self.engine.log.exception("submitting job %s failed", job)
            self.finish_unrun(job, JobStatus.FAILED, f"the {self.engine.executor.name} executor "
                              f"could not start the job: {exc}")
            return
        self.tasks_launched += 1
        self.handles[job] = handle
        if chained:
            self.chained.add(job)
        if self.submit_chained is not None:
            # Its dependents may now be submitted chained to it.
            self.candidates.update(dict.fromkeys(self.dependents.get(job, ())))

    def final_status(self) -> JobStatus:
        statuses = {self.records[j].status for j in self.plan.jobs}
        if JobStatus.FAILED in statuses:
            return JobStatus.FAILED
        if self.cancel_all or self.cancelled_by_user or JobStatus.CANCELLED in statuses:
            return JobStatus.CANCELLED
        return JobStatus.SUCCEEDED
