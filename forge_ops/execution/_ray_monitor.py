"""Inside a Ray worker: the monitor thread beside the job, and the worker's feedback links.

The operation runs in the Ray task's main thread (``_ray_worker.run_job``); one monitor thread
per worker process sends the running job's feedback every ``FLUSH_SECONDS`` over the direct link
to the executor (``_feedback_link``), or to the executor's relay actor where the worker cannot
reach it, and watches for cancels.
"""

from __future__ import annotations

import logging
import os
import select
import signal
import socket
import sys
import threading
import time
from typing import Any

from ._feedback_link import FeedbackSender, parse_route
from ._task import TaskEvent, TaskEventKind, TaskSpec
from ._worker import FLUSH_SECONDS, FeedbackBuffer

_log = logging.getLogger(__name__)
#: How long a cancelled job may take to unwind before its worker exits.
CANCEL_UNWIND_SECONDS = 2.0

#: The relay actor of each executor, looked up by name once per worker process.
_relays: dict[str, Any] = {}
#: This worker's direct link to each executor (by route), None where there is none, and why
#: not (told to the executor with a result: a log line here would land in the job's console).
_senders: dict[str, FeedbackSender | None] = {}
_no_link: dict[str, str] = {}


def _relay(name: str, last_push: Any = None) -> Any:
    """The relay actor ``name``; looked up again if ``last_push`` to it failed (its node was
    lost and the executor made a new one under the same name)."""
    import ray

    if last_push is not None and name in _relays:
        ready, _ = ray.wait([last_push], timeout=0)
        try:
            if ready:
                ray.get(ready[0])
        except Exception:
            del _relays[name]
    relay = _relays.get(name)
    if relay is None:
        relay = _relays[name] = ray.get_actor(name)
    return relay


def _sender(route: str) -> FeedbackSender | None:
    """This worker's link to the executor named in ``route``, connected on first use."""
    if route in _senders:
        return _senders[route]
    _, address, token = parse_route(route)
    sender = None
    if address is not None and token is not None:
        try:
            sender = FeedbackSender(address, token)
        except OSError as exc:
            _no_link[route] = f"cannot connect: {exc}"
    else:
        _no_link[route] = "the executor offers none"
    _senders[route] = sender
    return sender


def no_link_reason(route: str) -> str:
    """Why this worker sends feedback for ``route``'s executor through the relay ("" if it
    does not, or nobody said)."""
    return _no_link.get(route, "")


def wait_for_relay(push: Any, job_id: str) -> None:
    """Wait until ``push`` (a relay push's ref) is in: pushes from one caller run in order,
    so once the last is in, all are."""
    import ray

    try:
        ray.get(push)
    except Exception:  # the relay is gone (executor shut down): feedback is best effort
        _log.debug("feedback relay unreachable for %s", job_id, exc_info=True)


class RunningJob:
    """The job a worker's main thread is running, as the worker's monitor sees it."""

    def __init__(self, task: TaskSpec, route: str, key: str, stamp: dict[str, Any]) -> None:
        self.task = task
        self.route = route
        self.key = key
        self.stamp = stamp
        #: Set on a cancel: the job's next feedback call raises JobCancelled.
        self.cancelled = threading.Event()
        self.sink = FeedbackBuffer(task, self.cancelled)
        #: Frames sent over the direct link; the ref of the last push to the relay actor.
        self.sent = 0
        self.last_push: Any = None
        #: When the job must have ended after a cancel, or the worker exits (monotonic).
        self.deadline: float | None = None
        #: Before this (monotonic), the monitor pushes nothing: a job that ends within one
        #: feedback interval sends everything with its result and costs the relay nothing.
        self.first_push = time.monotonic() + FLUSH_SECONDS


class JobMonitor:
    """One thread per worker process beside the jobs, which run in the task's main thread.

    Every ``FLUSH_SECONDS`` it sends the running job's feedback to the executor. It also watches
    for cancels: ``ray.cancel`` raises KeyboardInterrupt in the main thread, which lands only
    when the operation's current call returns, but it trips the signal wakeup fd at once
    (``signal.set_wakeup_fd``). A job still running ``CANCEL_UNWIND_SECONDS`` after that
    (blocked in C code, or ignoring the interrupt) ends its worker, so it cannot keep its CPU,
    GPU memory or files busy; Ray starts a new worker. Running the operation in the main thread
    instead of handing it to a thread saves a thread switch each way per job.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.job: RunningJob | None = None
        self._signals, writer = socket.socketpair()
        writer.setblocking(False)
        self._writer = writer  # kept open: the interpreter writes signal numbers to it
        try:
            signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False)
        except ValueError:  # not the main thread: cancels then rely on the engine's kill
            _log.warning("cannot watch for cancels outside the main thread")
        threading.Thread(target=self._loop, name="forge-job-monitor", daemon=True).start()

    def begin(self, job: RunningJob) -> None:
        with self.lock:
            self.job = job

    def end(self, job: RunningJob) -> None:
        """The job is over: nothing more is sent for it."""
        with self.lock:
            if self.job is job:
                self.job = None

    def _loop(self) -> None:
        while True:
            with self.lock:
                job = self.job
            wait = FLUSH_SECONDS
            if job is not None and job.deadline is not None:
                wait = max(0.0, min(wait, job.deadline - time.monotonic()))
            readable, _, _ = select.select([self._signals], [], [], wait)
            if readable and signal.SIGINT in self._signals.recv(64):
                with self.lock:
                    if self.job is not None and self.job.deadline is None:
                        self.job.cancelled.set()
                        self.job.deadline = time.monotonic() + CANCEL_UNWIND_SECONDS
            with self.lock:
                job = self.job
                if job is None:
                    continue
                if job.deadline is not None and time.monotonic() >= job.deadline:
                    # The job's console capture is still in place: log to the worker's own
                    # streams, then end the worker (see the class docstring).
                    sys.stdout, sys.stderr = sys.__stdout__, sys.__stderr__
                    _log.warning("job %s did not stop when cancelled; exiting its worker",
                                 job.task.job_id)
                    os._exit(1)
                self._push(job)

    def _push(self, job: RunningJob) -> None:
        """Send what the job reported since the last push (called under the lock)."""
        pushed = job.sent or job.last_push is not None
        if not pushed and time.monotonic() < job.first_push:
            return
        events = []
        if not pushed:
            events.append(TaskEvent(job.task.job_id, TaskEventKind.STARTED, dict(job.stamp)))
        items = job.sink.drain()
        if items:
            events.append(TaskEvent(job.task.job_id, TaskEventKind.FEEDBACK,
                                    {"items": items, **job.stamp}))
        if not events:
            return
        sender = _sender(job.route) if job.last_push is None else None
        if sender is not None:
            if sender.send(job.key, job.sent + 1, events):
                job.sent += 1
                return
            _senders[job.route] = None  # this worker's later feedback goes through the relay
            _no_link[job.route] = "the connection broke"
        try:
            relay = _relay(parse_route(job.route)[0], job.last_push)
            job.last_push = relay.push.remote(job.key, events)
        except Exception:  # the relay is gone (executor shut down): feedback is best effort
            _log.debug("feedback relay unreachable for %s", job.task.job_id, exc_info=True)


_monitor: JobMonitor | None = None


def job_monitor() -> JobMonitor:
    """This worker's monitor, started by the first job (in the main thread, as it must)."""
    global _monitor
    if _monitor is None:
        _monitor = JobMonitor()
    return _monitor
