"""One execution, driven by its own thread: the inbox loop, scheduling, cancellation.

The thread reads an inbox (task events from the executor, cancel requests). A job is submitted
when all of its upstream jobs succeeded (or were cached); before that its cache key is computed
from its inputs' hashes and, on a hit, no task is launched. A failed or cancelled job's
downstream jobs are not run (marked cancelled, saying why); independent branches continue.

On an executor that chains tasks (a :class:`ChainingExecutor`, such as Ray), a job whose
upstream jobs are still running is submitted at once with references to their results; its key
and cache lookup then happen in the worker, and if an upstream job fails, the chained job is
cancelled before it runs.
"""

from __future__ import annotations

import logging
import queue
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, replace
from typing import Any, Protocol

from forge_ops.artifacts import ArtifactStore
from forge_ops.schema import FINISHED_STATUSES, JobStatus, now_iso

from ._batch import FeedbackBatcher
from ._cache import CacheIndex, cache_key, runtime_versions
from ._events import Event, ExecutionStatusChanged, JobStatusChanged
from ._plan import Plan
from ._recording import RunRecorder
from ._results import ExecutionResult, JobRecord, replaced
from ._shared import RunSharing, SharedJobs, SharedJobSettled
from ._store_access import store_failure
from ._task import (
    TERMINAL_KINDS,
    ChainedInput,
    ChainingExecutor,
    Executor,
    TaskEvent,
    TaskEventKind,
    TaskHandle,
    TaskSpec,
)
from ._worker import missing_output

EventCallback = Callable[[Event], None]
#: After a forced cancel, how long to wait for the executor's word before giving up on it.
FORCED_CANCEL_TIMEOUT = 10.0


class EngineParts(Protocol):
    """What a run uses of its engine (see ``Engine``)."""

    store: ArtifactStore
    executor: Executor
    cache: CacheIndex
    cancel_grace: float
    feedback_interval: float
    max_retries: int
    console_cap: int
    log: logging.Logger
    shared: SharedJobs


@dataclass(frozen=True)
class CancelRequest:
    job: str | None  # None: the whole execution
    reason: str = "cancelled by request"  # the cancelled jobs' error

class Run:
    """One execution's state, driven by its own thread (``main``)."""

    def __init__(self, engine: EngineParts, plan: Plan, on_event: EventCallback | None, *,
                 execution: str, commit: str | None, use_cache: bool,
                 keep: dict[str, JobRecord], force: frozenset[str]) -> None:
        self.engine = engine
        self.plan = plan
        self.on_event = on_event
        self.execution = execution
        self.commit = commit
        self.use_cache = use_cache
        self.force = force
        self.inbox: queue.Queue[TaskEvent | CancelRequest | SharedJobSettled] = queue.Queue()
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
        #: The executor if it chains tasks; the jobs submitted chained.
        self.chaining: ChainingExecutor | None = (
            engine.executor if isinstance(engine.executor, ChainingExecutor) else None)
        self.chained: set[str] = set()
        self.runtime = runtime_versions()
        self.cancel_deadlines: dict[str, float] = {}
        self.forced: dict[str, float] = {}
        self.cancelled_by_user: dict[str, str] = {}  # job -> why
        #: Jobs computed for, or awaited from, other executions running now (see _shared).
        self.sharing = RunSharing(self, engine.shared)
        self.cancel_all = False
        self.tasks_launched = 0
        self.batcher = FeedbackBatcher(execution, engine.feedback_interval,
                                       engine.console_cap)
        self.recorder = RunRecorder(engine.store, engine.cache, execution=execution,
                                    commit=commit, log=engine.log)
        #: The result, once the run ends (running from the start, so it cannot be cancelled).
        self.future: Future[ExecutionResult] = Future()
        self.future.set_running_or_notify_cancel()
        self.started = now_iso("milliseconds")

    # -- events ------------------------------------------------------------------------------
    def emit(self, event: Event) -> None:
        if self.on_event is None:
            return
        try:
            self.on_event(event)
        except Exception:
            self.engine.log.exception("on_event callback failed for %s", event)

    def update(self, job: str, **changes: Any) -> JobRecord:
        record = replaced(self.records[job], changes)
        self.records[job] = record
        if record.status in FINISHED_STATUSES:
            self.unfinished.discard(job)
            # Jobs waiting on this one may now run (or never will).
            self.candidates.update(dict.fromkeys(self.dependents.get(job, ())))
            self.sharing.finished(job)
        elif job in self.to_run_set:
            self.unfinished.add(job)
        if "status" in changes:
            self.flush(job)
            if self.on_event is None:
                return record
            self.emit(JobStatusChanged(
                self.execution, job, record.status, now_iso("milliseconds"), started=record.started,
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
        result: ExecutionResult | None = None
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
            result = ExecutionResult(self.execution, status, dict(self.records), self.started,
                                     now_iso("milliseconds"), self.tasks_launched,
                                     self.engine.executor.name)
            self.emit(ExecutionStatusChanged(self.execution, status, result.finished))
        except Exception as exc:
            # Never leave a caller waiting on a result: settle every job, say why.
            self.engine.log.exception("execution %s: engine failure", self.execution)
            self.recorder.flush()
            for handle in self.handles.values():
                handle.cancel(force=True)
            why = store_failure(exc, self.engine.store.location) or \
                f"the engine failed: {exc!r}; see the server log"
            for job in self.to_run:
                if self.records[job].status not in FINISHED_STATUSES:
                    self._fail_quietly(job, why)
            result = ExecutionResult(self.execution, JobStatus.FAILED, dict(self.records),
                                     self.started, now_iso("milliseconds"), self.tasks_launched,
                                     self.engine.executor.name)
            self.emit(ExecutionStatusChanged(self.execution, JobStatus.FAILED, result.finished))
        finally:
            self.sharing.close()
            if result is not None:
                self.future.set_result(result)
            else:
                self.future.set_exception(RuntimeError(
                    f"execution {self.execution} ended without a result (engine error; see the "
                    "log)"))

    def _fail_quietly(self, job: str, why: str) -> None:
        """Fail a job after the engine failed: through ``update`` (so the documents say it),
        else at least in the result."""
        try:
            self.update(job, status=JobStatus.FAILED, finished=now_iso("milliseconds"),
                        error=why)
        except Exception:
            self.records[job] = replace(self.records[job], status=JobStatus.FAILED,
                                        finished=now_iso("milliseconds"), error=why)

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
        elif isinstance(message, CancelRequest):
            self.on_cancel(message.job, message.reason)
        elif isinstance(message, SharedJobSettled):
            self.sharing.on_settled(message)
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
            started = record.started or event.data.get("started") or now_iso("milliseconds")
            self.update(job, status=JobStatus.RUNNING, started=started, attempts=attempt + 1)
        elif event.kind is TaskEventKind.FEEDBACK:
            self.batcher.add(job, event.data.get("items", []))
            return
        # A chained task reports what it worked out in the worker.
        known = {name: event.data[name] for name in ("inputs", "cache_key")
                 if name in event.data}
        if event.kind is TaskEventKind.SUCCEEDED and event.data.get("cached_from"):
            self.tasks_launched -= 1  # a lookup, no operation ran
            now = now_iso("milliseconds")
            self.update(job, status=JobStatus.CACHED, started=now, finished=now,
                        outputs=dict(event.data.get("outputs", {})),
                        cached_from=event.data["cached_from"], **known)
        elif event.kind is TaskEventKind.SUCCEEDED:
            outputs = dict(event.data.get("outputs", {}))
            finished = now_iso("milliseconds")
            record = self.update(job, status=JobStatus.SUCCEEDED, finished=finished,
                                 outputs=outputs, started=record.started or finished, **known)
            self.recorder.succeeded(job, outputs, record.cache_key)
        elif event.kind is TaskEventKind.FAILED:
            self.update(job, status=JobStatus.FAILED, finished=now_iso("milliseconds"),
                        error=str(event.data.get("error", "failed")),
                        traceback=event.data.get("traceback") or None, **known)
        elif event.kind is TaskEventKind.CANCELLED and event.data.get("skipped"):
            self.tasks_launched -= 1  # it ran nothing
            self.finish_unrun(job, JobStatus.CANCELLED,
                              self.blocked_by(job) or str(event.data["skipped"]))
        elif event.kind is TaskEventKind.CANCELLED:
            self.update(job, status=JobStatus.CANCELLED, finished=now_iso("milliseconds"),
                        error=self.cancelled_by_user.get(job, "cancelled by request"))
        if event.kind in TERMINAL_KINDS:
            self.handles.pop(job, None)
            self.chained.discard(job)
            self.cancel_deadlines.pop(job, None)
            self.forced.pop(job, None)

    def on_cancel(self, job: str | None, reason: str = "cancelled by request") -> None:
        targets = self.to_run if job is None else [job]
        if job is None:
            self.cancel_all = True
        for target in targets:
            record = self.records[target]
            if record.status in FINISHED_STATUSES:
                continue
            self.cancelled_by_user[target] = reason
            handle = self.handles.get(target)
            if handle is None:
                self.sharing.withdraw(target)
                self.finish_unrun(target, JobStatus.CANCELLED, reason)
            elif target not in self.cancel_deadlines and target not in self.forced:
                handle.cancel(force=False)
                self.cancel_deadlines[target] = time.monotonic() + self.engine.cancel_grace

    def finish_unrun(self, job: str, status: JobStatus, why: str) -> None:
        self.update(job, status=status, finished=now_iso("milliseconds"), error=why)

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
        return self.chaining is not None and all(
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

    def launch(self, job: str, shared: bool = True) -> None:
        """Satisfy ``job`` from the cache (or from another execution computing it now, unless
        not ``shared``) or submit it (chained to running upstream jobs)."""
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
            try:
                entry = self.engine.cache.lookup(key) if use_cache else None
            except Exception as exc:
                reason = store_failure(exc, self.engine.store.location)
                if reason is None:
                    raise
                self.finish_unrun(job, JobStatus.FAILED, reason)
                return
            if entry is not None:
                now = now_iso("milliseconds")
                self.update(job, status=JobStatus.CACHED, started=now, finished=now,
                            outputs=dict(entry.outputs), cached_from=entry.execution)
                return
            if use_cache and shared and self.sharing.wait_or_own(job, key):
                return
        task = TaskSpec(job=spec, inputs=inputs, store=self.engine.store.location,
                        execution=self.execution, commit=self.commit,
                        max_retries=self.engine.max_retries, cache_key=key,
                        architectures=self.plan.architectures, layers=self.plan.layers,
                        artifacts=self.plan.artifacts, chained=chained,
                        cache_lookup=use_cache and bool(chained), runtime=self.runtime)
        try:
            if chained and self.chaining is not None:
                upstream_handles = {u: self.handles[u] for u in task.chained_upstream}
                handle = self.chaining.submit_chained(task, upstream_handles, self.inbox.put)
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
        if self.chaining is not None:
            # Its dependents may now be submitted chained to it.
            self.candidates.update(dict.fromkeys(self.dependents.get(job, ())))

    def final_status(self) -> JobStatus:
        statuses = {self.records[j].status for j in self.plan.jobs}
        if JobStatus.FAILED in statuses:
            return JobStatus.FAILED
        if self.cancel_all or self.cancelled_by_user or JobStatus.CANCELLED in statuses:
            return JobStatus.CANCELLED
        return JobStatus.SUCCEEDED
