"""RayExecutor: each task a Ray generator task that streams its feedback back.

The operation runs in a thread of the Ray worker while the task's generator yields batched
feedback every ~0.1 s. Cancel (``ray.cancel``) raises KeyboardInterrupt in the generator, which
raises JobCancelled in the operation's thread; a forced cancel kills the worker. Worker crashes
are retried (``task.max_retries``) by resubmitting; user errors are reported, never retried.
GPU tasks set ``max_calls=0`` so Ray does not restart their worker after every call (its GPU
default is 1).
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ._cache import now_iso
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
#: How long the cluster's node list is trusted for feasibility checks.
NODES_TTL_SECONDS = 5.0
#: Task streams followed at once (tasks beyond it are followed as earlier ones end).
MAX_STREAMS = 1024


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
    # Every event names the worker process and when the job started there; the engine learns
    # that the job runs from the first one. A job that ends within one feedback interval thus
    # costs a single yield, nearly what a plain Ray task costs.
    stamp = {"pid": os.getpid(), "started": now_iso()}
    runner.start()
    announced = False
    try:
        while runner.is_alive():
            runner.join(FLUSH_SECONDS)
            items = sink.drain()
            if not announced and runner.is_alive():
                yield TaskEvent(task.job_id, TaskEventKind.STARTED, dict(stamp))
                announced = True
            if items:
                yield TaskEvent(task.job_id, TaskEventKind.FEEDBACK, {"items": items, **stamp})
    except (KeyboardInterrupt, GeneratorExit):
        cancelled.set()
        interrupt_thread(runner)
        runner.join(CANCEL_UNWIND_SECONDS)
        if runner.is_alive():
            # The operation ignores the interrupt (e.g. blocked in C code): end this worker
            # so the job cannot keep its CPU, GPU memory or files busy. Ray starts a new one.
            _log.warning("job %s did not stop when cancelled; exiting its worker", task.job_id)
            os._exit(1)
        raise
    items = sink.drain()
    if items:
        yield TaskEvent(task.job_id, TaskEventKind.FEEDBACK, {"items": items, **stamp})
    outcome = result[0] if result else TaskEvent(task.job_id, TaskEventKind.CANCELLED)
    yield TaskEvent(outcome.job_id, outcome.kind, {**outcome.data, **stamp})


class _RayTask:
    """A submitted Ray task and the thread that follows its stream (and retries it).

    Retries after a worker crash are ours, not Ray's: Ray replays a retried generator but skips
    the items already consumed, which suits deterministic generators, not a job whose feedback
    and event count differ from one attempt to the next.
    """

    def __init__(self, task: TaskSpec, report: Report, launch: Callable[[], Any]) -> None:
        self.task = task
        self.report = report
        self.launch = launch
        self.lock = threading.Lock()
        self.generator: Any = None
        self.cancel_requested = False
        self.attempt = 0

    def start(self) -> None:
        self.generator = self.launch()

    def cancel(self, force: bool = False) -> None:
        import ray

        with self.lock:
            self.cancel_requested = True
            generator = self.generator
        if generator is not None:
            try:
                ray.cancel(generator, force=force)
            except Exception:  # already finished, or the worker is gone
                _log.debug("ray.cancel of %s failed", self.task.job_id, exc_info=True)

    def consume(self) -> None:
        while True:
            outcome, crash = self._follow(self.generator)
            if outcome is None and self.cancel_requested:
                outcome = TaskEvent(self.task.job_id, TaskEventKind.CANCELLED)
            if outcome is None and crash is not None and self.attempt < self.task.max_retries:
                self.attempt += 1
                with self.lock:
                    if not self.cancel_requested:
                        self.generator = self.launch()
                        continue
                outcome = TaskEvent(self.task.job_id, TaskEventKind.CANCELLED)
            if outcome is None:
                why = (f"the Ray worker running this job died ({type(crash).__name__}); "
                       f"retried {self.attempt} of {self.task.max_retries} time(s) allowed; "
                       "see the Ray logs for why it died") if crash is not None else \
                    "the Ray task ended without reporting an outcome"
                outcome = self._failure(why)
            self.report(outcome)
            return

    def _follow(self, generator: Any) -> tuple[TaskEvent | None, Exception | None]:
        """Report one attempt's events; its terminal event, or the crash that ended it."""
        import ray
        from ray import exceptions

        announced = False
        outcome: TaskEvent | None = None
        try:
            for ref in generator:
                event: TaskEvent = ray.get(ref)
                if not announced:
                    announced = True
                    self.report(TaskEvent(event.job_id, TaskEventKind.STARTED, {
                        "pid": event.data.get("pid"), "attempt": self.attempt,
                        "started": event.data.get("started")}))
                if event.kind in TERMINAL_KINDS:
                    outcome = event
                elif event.kind is not TaskEventKind.STARTED:
                    self.report(event)
        except exceptions.TaskCancelledError:
            return None, None
        except exceptions.RayTaskError as exc:  # the task body itself broke (not user code)
            return self._failure(f"the Ray task failed: {exc}"), None
        except exceptions.RayError as exc:  # worker or node died
            return None, exc
        return outcome, None

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
        self._nodes: list[dict[str, float]] = []
        # One thread follows each task's stream; idle threads are reused (starting a thread
        # per job costs more than the rest of a trivial job's bookkeeping).
        self._consumers = ThreadPoolExecutor(max_workers=MAX_STREAMS,
                                             thread_name_prefix="forge-ray-stream")
        self._nodes_read = -math.inf

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
        now = time.monotonic()
        if now - self._nodes_read > NODES_TTL_SECONDS:
            self._nodes = [n.get("Resources", {}) for n in ray.nodes() if n.get("Alive")]
            self._nodes_read = now
        nodes = self._nodes
        if any(r.get("CPU", 0) >= cpus and r.get("GPU", 0) >= gpus for r in nodes):
            return None
        best_cpu = max((r.get("CPU", 0) for r in nodes), default=0)
        best_gpu = max((r.get("GPU", 0) for r in nodes), default=0)
        return (f"infeasible: {task.job.name} asks for num_cpus={cpus:g}, num_gpus={gpus:g} but "
                f"no node of the Ray cluster has that much (the largest have {best_cpu:g} CPUs, "
                f"{best_gpu:g} GPUs); lower the node's settings or add a node that has them")

    def submit(self, task: TaskSpec, report: Report) -> _RayTask:
        self.start()
        settings = task.job.settings
        remote = self._remote[settings.num_gpus > 0].options(
            num_cpus=settings.num_cpus, num_gpus=settings.num_gpus, max_retries=0,
            name=f"forge:{task.job.name}")
        handle = _RayTask(task, report, lambda: remote.remote(task))
        reason = self.infeasible(task)
        if reason is not None:
            report(TaskEvent(task.job_id, TaskEventKind.FAILED,
                             {"error": reason, "traceback": ""}))
            return handle
        handle.start()
        self._consumers.submit(handle.consume)
        return handle

    def shutdown(self) -> None:
        import ray

        if self._owns_runtime and ray.is_initialized():
            ray.shutdown()
            self._owns_runtime = False
