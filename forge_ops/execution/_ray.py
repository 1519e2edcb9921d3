"""RayExecutor: each task a Ray generator task that streams its feedback back.

The operation runs in a thread of the Ray worker while the task's generator yields batched
feedback every ~0.1 s. Cancel (``ray.cancel``) raises KeyboardInterrupt in the generator, which
raises JobCancelled in the operation's thread; a forced cancel kills the worker. Worker crashes
are retried by Ray (``max_retries``); user errors are reported, never retried. GPU tasks set
``max_calls=0`` so Ray does not restart their worker after every call (its GPU default is 1).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from typing import Any

from ._task import TERMINAL_KINDS, Report, TaskEvent, TaskEventKind, TaskSpec
from ._worker import (
    FLUSH_SECONDS,
    FeedbackBuffer,
    JobCancelled,
    interrupt_thread,
    limit_threads,
    task_outcome,
)

_log = logging.getLogger(__name__)
CANCEL_UNWIND_SECONDS = 2.0


def _ray_task(task: TaskSpec) -> Iterator[TaskEvent]:
    """Body of the Ray task (a generator: each yield reaches the engine as it happens)."""
    limit_threads(task.job.settings.num_cpus)
    cancelled = threading.Event()
    sink = FeedbackBuffer(task, cancelled)
    result: list[TaskEvent] = []

    def target() -> None:
        try:
            result.append(task_outcome(task, sink))
        except JobCancelled:
            result.append(TaskEvent(task.job_id, TaskEventKind.CANCELLED))

    runner = threading.Thread(target=target, name="forge-operation", daemon=True)
    pid = os.getpid()
    yield TaskEvent(task.job_id, TaskEventKind.STARTED, {"pid": pid})
    runner.start()
    try:
        while runner.is_alive():
            runner.join(FLUSH_SECONDS)
            items = sink.drain()
            if items:
                yield TaskEvent(task.job_id, TaskEventKind.FEEDBACK, {"items": items, "pid": pid})
    except (KeyboardInterrupt, GeneratorExit):
        cancelled.set()
        interrupt_thread(runner)
        runner.join(CANCEL_UNWIND_SECONDS)
        raise
    items = sink.drain()
    if items:
        yield TaskEvent(task.job_id, TaskEventKind.FEEDBACK, {"items": items, "pid": pid})
    outcome = result[0] if result else TaskEvent(task.job_id, TaskEventKind.CANCELLED)
    yield TaskEvent(outcome.job_id, outcome.kind, {**outcome.data, "pid": pid})


class _RayTask:
    """A submitted Ray task and the thread that consumes its stream."""

    def __init__(self, task: TaskSpec, report: Report) -> None:
        self.task = task
        self.report = report
        self.generator: Any = None
        self.cancel_requested = False
        self.attempt = 0

    def cancel(self, force: bool = False) -> None:
        import ray

        self.cancel_requested = True
        if self.generator is not None:
            try:
                ray.cancel(self.generator, force=force)
            except Exception:  # already finished, or the worker is gone
                _log.debug("ray.cancel of %s failed", self.task.job_id, exc_info=True)

    def consume(self) -> None:
        import ray
        from ray import exceptions

        outcome: TaskEvent | None = None
        pid: int | None = None
        try:
            for ref in self.generator:
                event: TaskEvent = ray.get(ref)
                # Ray replays a retried generator skipping the items already consumed, so a
                # retry shows only as events from a new worker process.
                if event.data.get("pid") != pid:
                    if pid is not None:
                        self.attempt += 1
                    pid = event.data.get("pid")
                    self.report(TaskEvent(event.job_id, TaskEventKind.STARTED,
                                          {"pid": pid, "attempt": self.attempt}))
                if event.kind in TERMINAL_KINDS:
                    outcome = event
                elif event.kind is not TaskEventKind.STARTED:
                    self.report(event)
        except (exceptions.TaskCancelledError, exceptions.RayTaskError) as exc:
            if self.cancel_requested:
                outcome = TaskEvent(self.task.job_id, TaskEventKind.CANCELLED)
            else:
                outcome = self._failure(f"the Ray task failed: {exc}")
        except (exceptions.WorkerCrashedError, exceptions.NodeDiedError,
                exceptions.RayError) as exc:
            if self.cancel_requested:
                outcome = TaskEvent(self.task.job_id, TaskEventKind.CANCELLED)
            else:
                outcome = self._failure(
                    f"the Ray worker running this job died ({type(exc).__name__}); retried "
                    f"{self.attempt} of {self.task.max_retries} time(s) allowed; see the Ray "
                    "logs for why it died")
        if outcome is None:
            outcome = (TaskEvent(self.task.job_id, TaskEventKind.CANCELLED)
                       if self.cancel_requested else self._failure("the Ray task ended without "
                                                                   "reporting an outcome"))
        self.report(outcome)

    def _failure(self, message: str) -> TaskEvent:
        return TaskEvent(self.task.job_id, TaskEventKind.FAILED,
                         {"error": message, "traceback": ""})


class RayExecutor:
    """Runs tasks on Ray: a local runtime, or the cluster at ``address`` / ``RAY_ADDRESS``.

    If Ray is already initialised in this process (e.g. by a test fixture) it is used as is and
    left running on shutdown.
    """

    name = "ray"

    def __init__(self, address: str | None = None, *, num_cpus: int | None = None,
                 num_gpus: int | None = None, init_options: dict[str, Any] | None = None
                 ) -> None:
        self.address = address or os.environ.get("RAY_ADDRESS") or None
        self.num_cpus = num_cpus
        self.num_gpus = num_gpus
        self.init_options = dict(init_options or {})
        self._owns_runtime = False
        self._remote: dict[bool, Any] = {}
        self._lock = threading.Lock()

    def start(self) -> None:
        import ray

        with self._lock:
            if not ray.is_initialized():
                options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                                           "logging_level": logging.WARNING}
                if self.address:
                    options["address"] = self.address
                else:
                    options.update(num_cpus=self.num_cpus, num_gpus=self.num_gpus)
                options.update(self.init_options)
                ray.init(**options)
                self._owns_runtime = True
            if not self._remote:
                # max_calls cannot be set through .options(): one remote function per kind.
                self._remote[False] = ray.remote(_ray_task)
                self._remote[True] = ray.remote(max_calls=0)(_ray_task)

    def infeasible(self, task: TaskSpec) -> str | None:
        """Why no node of the cluster can ever run ``task``, or None if one can."""
        import ray

        cpus, gpus = task.job.settings.num_cpus, task.job.settings.num_gpus
        nodes = [n.get("Resources", {}) for n in ray.nodes() if n.get("Alive")]
        if any(r.get("CPU", 0) >= cpus and r.get("GPU", 0) >= gpus for r in nodes):
            return None
        best_cpu = max((r.get("CPU", 0) for r in nodes), default=0)
        best_gpu = max((r.get("GPU", 0) for r in nodes), default=0)
        return (f"infeasible: {task.job.name} asks for num_cpus={cpus:g}, num_gpus={gpus:g} but "
                f"no node of the Ray cluster has that much (the largest have {best_cpu:g} CPUs, "
                f"{best_gpu:g} GPUs); lower the node's settings or add a node that has them")

    def submit(self, task: TaskSpec, report: Report) -> _RayTask:
        self.start()
        handle = _RayTask(task, report)
        reason = self.infeasible(task)
        if reason is not None:
            report(TaskEvent(task.job_id, TaskEventKind.FAILED,
                             {"error": reason, "traceback": ""}))
            return handle
        settings = task.job.settings
        remote = self._remote[settings.num_gpus > 0]
        handle.generator = remote.options(
            num_cpus=settings.num_cpus, num_gpus=settings.num_gpus,
            max_retries=task.max_retries, retry_exceptions=False,
            name=f"forge:{task.job.name}",
        ).remote(task)
        threading.Thread(target=handle.consume, daemon=True,
                         name=f"forge-ray-{task.job_id}").start()
        return handle

    def shutdown(self) -> None:
        import ray

        if self._owns_runtime and ray.is_initialized():
            ray.shutdown()
            self._owns_runtime = False
