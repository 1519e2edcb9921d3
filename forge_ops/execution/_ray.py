"""RayExecutor: each job a plain Ray task; feedback goes over a direct link or a relay actor.

The operation runs in the Ray task's main thread while a monitor thread of the worker sends
batched feedback every ~0.1 s (a job that ends sooner sends nothing: its last feedback comes
back with its outcome) over a TCP link to the executor's feedback thread (``_feedback_link``),
or, if the worker cannot reach it, to the executor's FeedbackRelay actor, which the feedback
thread collects every second; one completion thread watches every attempt in flight with
``ray.wait``. Cancel (``ray.cancel``) raises KeyboardInterrupt in the operation; a job that has
not stopped 2 s later ends its worker, and a forced cancel kills the worker. Worker crashes
are retried (``task.max_retries``) by resubmitting; user errors are reported, never retried.
GPU tasks set ``max_calls=0`` so Ray does not restart their worker after every call (its GPU
default is 1).
"""

from __future__ import annotations

import itertools
import logging
import math
import os
import pickle
import select
import signal
import socket
import sys
import threading
import time
import uuid
from contextlib import nullcontext
from typing import Any

from ._cache import now_iso
from ._feedback_link import FeedbackListener, FeedbackSender, make_route, parse_route
from ._task import Report, TaskEvent, TaskEventKind, TaskHandle, TaskSpec
from ._worker import (
    FLUSH_SECONDS,
    FeedbackBuffer,
    hold_freed_memory,
    limit_threads,
    release_freed_memory,
    resolve_chained,
    skipped,
    task_outcome,
)

_log = logging.getLogger(__name__)
CANCEL_UNWIND_SECONDS = 2.0
#: How long the cluster's node list is trusted for feasibility checks.
NODES_TTL_SECONDS = 5.0
#: How many ``.options()`` variants of the task function are kept.
MAX_VARIANTS = 4096
#: The completion thread's wait for attempts to end: from (while they do) to (while none does).
WATCH_SECONDS = (0.005, 0.05)
#: How often the executor collects the relay actor while workers can send over the direct link
#: (only a worker that cannot reach the link pushes there).
RELAY_POLL_SECONDS = 1.0
#: How long an ended attempt's last frames may take to arrive before its outcome is reported
#: without them (they were sent before the attempt returned, so normally they are in).
LAST_FRAMES_SECONDS = 10.0


class FeedbackRelay:
    """A Ray actor holding feedback that running tasks push until the executor collects it.

    Tasks are plain Ray tasks (a streaming generator task costs about a millisecond more per
    job); only jobs that run longer than a feedback interval and print, plot or show images,
    from a worker that cannot reach the executor's direct link (or when the executor was made
    without it), send anything here. Events are kept per attempt key, in push order.
    """

    def __init__(self) -> None:
        self._events: dict[str, list[TaskEvent]] = {}

    def push(self, key: str, events: list[TaskEvent]) -> None:
        self._events.setdefault(key, []).extend(events)

    def take(self, keys: list[str] | None = None) -> dict[str, list[TaskEvent]]:
        """Remove and return the events of ``keys`` (all of them with None)."""
        if keys is None:
            taken, self._events = self._events, {}
            return taken
        return {key: self._events.pop(key) for key in keys if key in self._events}


#: The relay actor of each executor, looked up by name once per worker process.
_relays: dict[str, Any] = {}
#: This worker's direct link to each executor (by route), None where there is none, and why
#: not (told to the executor with a result: a log line here would land in the job's console).
_senders: dict[str, FeedbackSender | None] = {}
_no_link: dict[str, str] = {}


def _relay(name: str) -> Any:
    import ray

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


def _half_imported_modules() -> list[str]:
    """Submodules left behind by an interrupted import: their package is gone from
    ``sys.modules`` (Python drops a module whose import failed, not the submodules it had
    already loaded), so a later import of the package would run against stale parts."""
    loaded = set(sys.modules)
    return [name for name in loaded if "." in name and name.split(".", 1)[0] not in loaded]


class _RunningJob:
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


class _JobMonitor:
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
        self.job: _RunningJob | None = None
        self._signals, writer = socket.socketpair()
        writer.setblocking(False)
        self._writer = writer  # kept open: the interpreter writes signal numbers to it
        try:
            signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False)
        except ValueError:  # not the main thread: cancels then rely on the engine's kill
            _log.warning("cannot watch for cancels outside the main thread")
        threading.Thread(target=self._loop, name="forge-job-monitor", daemon=True).start()

    def begin(self, job: _RunningJob) -> None:
        with self.lock:
            self.job = job

    def end(self, job: _RunningJob) -> None:
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

    def _push(self, job: _RunningJob) -> None:
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
            job.last_push = _relay(parse_route(job.route)[0]).push.remote(job.key, events)
        except Exception:  # the relay is gone (executor shut down): feedback is best effort
            _log.debug("feedback relay unreachable for %s", job.task.job_id, exc_info=True)


_monitor: _JobMonitor | None = None


def _job_monitor() -> _JobMonitor:
    """This worker's monitor, started by the first job (in the main thread, as it must)."""
    global _monitor
    if _monitor is None:
        _monitor = _JobMonitor()
    return _monitor


def _ray_task(payload: bytes, route: str, key: str, *upstream: dict[str, Any]
              ) -> dict[str, Any]:
    """Body of the Ray task: runs the job, sends its feedback, returns the outcome.

    ``payload`` is the pickled TaskSpec (Ray submits bytes several times faster than an object
    it must serialize itself); ``upstream`` are the results of the jobs a chained task reads
    from (Ray passes them once they exist). Returns plain data, which Ray serializes faster
    than objects: ``{"kind": the terminal event's kind, "data": its data, "items": feedback not
    yet sent, "sent": frames sent over the direct link, "pushed": whether it pushed to the
    relay, "small": small JSON outputs' text by hash}``. ``route`` says where feedback goes
    (see ``make_route``).
    """
    import ray

    task: TaskSpec = pickle.loads(payload)  # noqa: S301 - written by RayExecutor.submit
    task, settled = resolve_chained(task, [_outcome(task.job_id, result) for result in upstream])
    if settled is not None:  # skipped, failed before running, or found in the cache
        return {"kind": settled.kind.value, "data": settled.data, "items": [], "sent": 0,
                "pushed": False}
    known: dict[str, str] = {}
    for returned in upstream:
        known.update(returned.get("small", {}))
    # Every event names the worker process and when the job started there. A job that ends
    # within one feedback interval sends nothing but its return value, like a plain Ray task.
    stamp: dict[str, Any] = {"pid": os.getpid(), "started": now_iso()}
    monitor = _job_monitor()
    job = _RunningJob(task, route, key, stamp)
    try:
        monitor.begin(job)  # inside: an interrupt right after it still ends the job below
        hold_freed_memory(not task.job.settings.num_gpus)
        limit_threads(task.job.settings.num_cpus)
        outcome = task_outcome(task, job.sink, known)  # a cancel (KeyboardInterrupt) included
    finally:
        monitor.end(job)
        torch = sys.modules.get("torch")
        if torch is not None and not torch.is_grad_enabled():
            torch.set_grad_enabled(True)  # thread state: do not pass it to the next job
        if time.monotonic() >= job.first_push:  # a job this short has little to give back
            release_freed_memory()
    if outcome.kind is TaskEventKind.CANCELLED and _half_imported_modules():
        # The interrupt landed inside an import (e.g. of torch): the half-initialised module
        # would break every later job on this worker, so Ray must start a new one.
        _log.warning("job %s was cancelled during an import; exiting its worker", task.job_id)
        os._exit(1)
    if job.last_push is not None:
        try:
            # Pushes from one caller run in order: once the last is in, all are.
            ray.get(job.last_push)
        except Exception:  # the relay is gone (executor shut down): feedback is best effort
            _log.debug("feedback relay unreachable for %s", task.job_id, exc_info=True)
    if task.chained:
        stamp.update(inputs=task.inputs, cache_key=task.cache_key)
    outputs = outcome.data.get("outputs", {}).values()
    result: dict[str, Any] = {
        "kind": outcome.kind.value, "data": {**outcome.data, **stamp},
        "items": job.sink.drain(), "sent": job.sent, "pushed": job.last_push is not None,
        # Small JSON outputs, so that the jobs reading them need not open the store.
        "small": {artifact: known[artifact] for artifact in outputs if artifact in known}}
    if job.last_push is not None:
        result["no_link"] = _no_link.get(route, "")
    return result


#: What ``ray.get`` gave for one finished ref: (its value, None) or (None, what it raised).
_Result = tuple[Any, Exception | None]


def _check_reachable(address: str, timeout: float = 5.0) -> None:
    """Fail in seconds when nothing listens at a cluster's address: ``ray.init`` would wait
    minutes for it (over five, in a probe with a closed port), and a run request with it."""
    host, colon, port = address.removeprefix("ray://").rpartition(":")
    if not colon or not port.isdigit():
        return  # "auto" and the like: Ray finds the cluster itself
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as exc:
        raise ConnectionError(
            f"no Ray cluster answers at {address} ({exc.strerror or exc}); check the address "
            "(ray://HOST:10001 for Ray Client, HOST:6379 on a node of the cluster), or leave it "
            "out to start a local Ray runtime") from None


def _listener_host(local_runtime: bool) -> str:
    """Where the feedback link listens: loopback for a runtime this executor started, else the
    address Ray's other nodes know this one by (a cluster may add nodes at any time)."""
    import ray

    return "127.0.0.1" if local_runtime else ray.util.get_node_ip_address()


def _results(refs: list[Any]) -> list[_Result]:
    """The results of finished refs."""
    import ray

    try:
        return [(value, None) for value in ray.get(refs)]
    except Exception:  # one of them failed: fetch each on its own
        results: list[_Result] = []
        for ref in refs:
            try:
                results.append((ray.get(ref), None))
            except Exception as exc:
                results.append((None, exc))
        return results


def _outcome(job: str, returned: dict[str, Any]) -> TaskEvent:
    """The terminal event in a result of ``_ray_task``."""
    return TaskEvent(job, TaskEventKind(returned["kind"]), returned["data"])


class _RayTask:
    """A submitted Ray task: its attempts, their feedback and outcome (and retries).

    ``complete`` runs on the executor's completion thread once an attempt's result is ready
    (one thread for every task in flight: a blocked thread per task costs more than a trivial
    job's own work).

    Retries after a worker crash are ours, not Ray's, so that each attempt is announced and its
    feedback told apart (by a key per attempt).

    A chained task passes its upstream tasks' result refs to Ray, which starts it once they
    exist. If an upstream attempt crashed, the chained attempt fails with that crash without
    running: it then waits for the upstream task to settle and is submitted again with the
    retry's ref (not counted as one of its own retries), or skipped if the upstream failed.
    """

    def __init__(self, executor: RayExecutor, task: TaskSpec, report: Report,
                 remote: Any, upstream: list[_RayTask] | None = None) -> None:
        self.executor = executor
        self.task = task
        self.report = report
        self.remote = remote
        self.payload = pickle.dumps(task, protocol=pickle.HIGHEST_PROTOCOL)
        self.lock = threading.Lock()
        self.ref: Any = None
        self.key = ""
        self.announced = False
        self.cancel_requested = False
        self.attempt = 0
        #: Chained tasks: the upstream tasks (``task.chained_upstream`` order), the refs the
        #: current attempt was given, and whether it waits for one of them to settle.
        self.upstream = upstream or []
        self.upstream_refs: list[Any] = []
        self.deferred = False
        #: The kind of the terminal event once reported; tasks deferred on this one.
        self.final: TaskEventKind | None = None
        self.waiters: list[_RayTask] = []

    def start(self) -> None:
        # Unique per executor (the relay is too): a restarted job's new attempts never pick up
        # an earlier run's leftovers.
        self.key = f"{self.task.job_id}:{self.attempt}:{next(self.executor._attempt_numbers)}"
        self.announced = False
        self.upstream_refs = [upstream.ref for upstream in self.upstream]
        self.executor._follow_feedback(self)
        ref = self.ref = self.remote.remote(self.payload, self.executor._route, self.key,
                                            *self.upstream_refs)
        self.executor._watch(ref, self)

    def cancel(self, force: bool = False) -> None:
        import ray

        with self.lock:
            self.cancel_requested = True
            ref = self.ref
        with self.executor._chain_lock:
            deferred, self.deferred = self.deferred, False
        if deferred:  # nothing in Ray to cancel: it waits for an upstream task's retry
            self._settle(TaskEvent(self.task.job_id, TaskEventKind.CANCELLED))
            return
        if ref is not None:
            try:
                ray.cancel(ref, force=force)
            except Exception:  # already finished, or the worker is gone
                _log.debug("ray.cancel of %s failed", self.task.job_id, exc_info=True)

    def deliver(self, events: list[TaskEvent]) -> None:
        """Report events the task pushed (called under the executor's feedback lock)."""
        for event in events:
            if not self.announced:
                self.announced = True
                self.report(TaskEvent(event.job_id, TaskEventKind.STARTED, {
                    "pid": event.data.get("pid"), "attempt": self.attempt,
                    "started": event.data.get("started")}))
            if event.kind is not TaskEventKind.STARTED:
                self.report(event)

    def complete(self, ref: Any, result: _Result) -> None:
        """An attempt ended: report its outcome, or start the next attempt after a crash."""
        if ref is not self.ref:
            return  # not the current attempt (cannot happen; be safe)
        if self.upstream and result[1] is not None and not self.cancel_requested \
                and self._upstream_broke():
            return
        outcome, crash = self._wait(result)
        if outcome is None and self.cancel_requested:
            outcome = TaskEvent(self.task.job_id, TaskEventKind.CANCELLED)
        if outcome is None and crash is not None and self.attempt < self.task.max_retries:
            self.attempt += 1
            with self.lock:
                if not self.cancel_requested:
                    self.start()
                    return
            outcome = TaskEvent(self.task.job_id, TaskEventKind.CANCELLED)
        if outcome is None:
            why = (f"the Ray worker running this job died ({type(crash).__name__}); "
                   f"retried {self.attempt} of {self.task.max_retries} time(s) allowed; "
                   "see the Ray logs for why it died") if crash is not None else \
                "the Ray task ended without reporting an outcome"
            outcome = self._failure(why)
        self._settle(outcome)

    def _settle(self, outcome: TaskEvent) -> None:
        """Report the terminal event, then let chained tasks waiting on this one go on."""
        with self.executor._chain_lock:
            # Reported under the lock: a chained task's skip never overtakes this event.
            self.final = outcome.kind
            self.report(outcome)
            waiters, self.waiters = self.waiters, []
        for waiter in waiters:
            waiter.upstream_settled()

    def _upstream_broke(self) -> bool:
        """After a failed attempt: whether the failure was an upstream attempt's (then this
        task waits for, or follows, its upstream tasks and True is returned)."""
        with self.executor._chain_lock:
            if all(upstream.final is TaskEventKind.SUCCEEDED and upstream.ref is ref
                   for upstream, ref in zip(self.upstream, self.upstream_refs, strict=True)):
                return False  # its own failure
            self.deferred = True
        self.executor._unfollow_feedback(self)
        self.upstream_settled()
        return True

    def upstream_settled(self) -> None:
        """A deferred task's upstream task settled: wait on, run again, or skip."""
        with self.executor._chain_lock:
            if not self.deferred:
                return  # cancelled meanwhile (and reported then)
            unsettled = [upstream for upstream in self.upstream if upstream.final is None]
            failed = [upstream for upstream in self.upstream
                      if upstream.final not in (None, TaskEventKind.SUCCEEDED)]
            if unsettled and not failed:
                unsettled[0].waiters.append(self)
                return
            self.deferred = False
            if failed:
                outcome = skipped(self.task.job_id, failed[0].task.job.name)
            else:
                with self.lock:
                    if not self.cancel_requested:
                        self.start()  # with the upstream tasks' final refs
                        return
                outcome = TaskEvent(self.task.job_id, TaskEventKind.CANCELLED)
        self._settle(outcome)

    def _wait(self, result: _Result) -> tuple[TaskEvent | None, Exception | None]:
        """Report one ended attempt's feedback; its terminal event, or its crash."""
        from ray import exceptions

        returned, error = result
        if error is not None:
            if not isinstance(error, exceptions.RayError):
                raise error
            self.executor._unfollow_feedback(self)
            if isinstance(error, exceptions.TaskCancelledError):
                return None, None
            if isinstance(error, exceptions.RayTaskError):  # the task body broke (not user code)
                return self._failure(f"the Ray task failed: {error}"), None
            return None, error  # worker or node died
        outcome = _outcome(self.task.job_id, returned)
        # Under the feedback lock if the attempt sent anything: its frames are all in (waited
        # for if need be) and what is still in the relay is reported now, before the outcome.
        # An attempt that sent nothing has nothing to order (and skips the lock).
        sent, pushed = returned["sent"], returned["pushed"]
        with self.executor._feedback_lock if sent or pushed else nullcontext():
            if sent:
                self.executor._await_frames(self.key, sent)
            if pushed:
                self.executor._collect([self.key])
                self.executor._note_relayed(outcome.data.get("pid"), returned.get("no_link"))
            self.executor._following.pop(self.key, None)
            self.executor._received.pop(self.key, None)
            if "pid" not in outcome.data:  # it ended without running (skipped, cached)
                return outcome, None
            if returned["items"]:
                self.deliver([
                    TaskEvent(outcome.job_id, TaskEventKind.STARTED, outcome.data),
                    TaskEvent(outcome.job_id, TaskEventKind.FEEDBACK,
                              {"items": returned["items"], **outcome.data})])
        # Not announced yet: the outcome implies the start (one message to the engine).
        return TaskEvent(outcome.job_id, outcome.kind,
                         {**outcome.data, "attempt": self.attempt}), None

    def _failure(self, message: str) -> TaskEvent:
        return TaskEvent(self.task.job_id, TaskEventKind.FAILED,
                         {"error": message, "traceback": ""})


class RayExecutor:
    """Runs tasks on Ray: a local runtime, or the cluster at ``address`` / ``RAY_ADDRESS``.

    If Ray is already initialised in this process (e.g. by a test fixture) it is used as is and
    left running on shutdown. ``direct_feedback=False`` sends all feedback through the relay
    actor, as a worker that cannot reach the executor's link does.
    """

    name = "ray"

    def __init__(self, address: str | None = None, *, num_cpus: int | None = None,
                 num_gpus: int | None = None, init_options: dict[str, Any] | None = None,
                 direct_feedback: bool = True) -> None:
        self.address = address or os.environ.get("RAY_ADDRESS") or None
        self.num_cpus = num_cpus
        self.num_gpus = num_gpus
        self.init_options = dict(init_options or {})
        self._owns_runtime = False
        self._remote: dict[bool, Any] = {}
        #: ``.options(...)`` wrappers by (gpu, num_cpus, num_gpus, job name): building one costs
        #: about a tenth of a trivial job's submission.
        self._variants: dict[tuple[bool, float, float, str], Any] = {}
        self._attempt_numbers = itertools.count()
        self._lock = threading.Lock()
        self._nodes: list[dict[str, float]] = []
        self._nodes_read = -math.inf
        # Attempts in flight, watched by one completion thread (``_complete_tasks``): new ones
        # wait in ``_submitted`` until it next looks.
        self._submitted: list[tuple[Any, _RayTask]] = []
        self._submitted_lock = threading.Lock()
        self._have_submitted = threading.Event()
        self._completer: threading.Thread | None = None
        self._completer_stop = False
        # Feedback: tasks send it over the listener's link or push it to the relay actor; one
        # thread serves the link and collects the relay (see the module docstring).
        self.direct_feedback = direct_feedback
        self._relay: Any = None
        self._listener: FeedbackListener | None = None
        #: What tasks are told about where their feedback goes (``make_route``).
        self._route = ""
        self._feedback_lock = threading.Lock()
        #: Frames received per attempt key (the last seq); signalled on each.
        self._received: dict[str, int] = {}
        self._frame_arrived = threading.Condition(self._feedback_lock)
        self._relayed_noted = False
        #: Guards chained tasks' ``final``/``waiters``/``deferred`` across threads.
        self._chain_lock = threading.RLock()
        self._following: dict[str, _RayTask] = {}
        self._feedback_thread: threading.Thread | None = None
        self._stopping = threading.Event()

    def start(self) -> None:
        import ray

        with self._lock:
            if not ray.is_initialized():
                options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                                           "logging_level": logging.WARNING}
                if self.address:
                    _check_reachable(self.address)
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
            if self._completer is None:
                self._completer = threading.Thread(target=self._complete_tasks, daemon=True,
                                                   name="forge-ray-completion")
                self._completer.start()
            if self._relay is None:
                relay_name = f"forge-feedback-{uuid.uuid4().hex}"
                self._relay = ray.remote(num_cpus=0)(FeedbackRelay).options(
                    name=relay_name).remote()
                if self.direct_feedback:
                    self._listener = FeedbackListener(
                        _listener_host(self._owns_runtime and not self.address),
                        self._deliver_frame)
                self._route = make_route(relay_name, self._listener)
                self._stopping.clear()
                self._feedback_thread = threading.Thread(
                    target=self._serve_feedback, daemon=True, name="forge-ray-feedback")
                self._feedback_thread.start()

    def _watch(self, ref: Any, handle: _RayTask) -> None:
        """Have the completion thread report ``ref``'s outcome to ``handle``."""
        with self._submitted_lock:
            self._submitted.append((ref, handle))
        self._have_submitted.set()

    def _complete_tasks(self) -> None:
        """Wait for the attempts in flight with ``ray.wait`` and complete each one that ends.

        A future per ref keeps Ray's event-loop thread busy with a callback each; one
        ``ray.wait`` over every ref in flight, collecting whatever ended within a few
        milliseconds, costs the driver less. The wait grows while nothing ends (a long job costs
        nothing to watch) and shrinks again when something does. Attempts submitted meanwhile
        join the next wait.
        """
        import ray

        in_flight: dict[Any, _RayTask] = {}
        timeout = WATCH_SECONDS[0]
        while not self._completer_stop:
            with self._submitted_lock:
                submitted, self._submitted = self._submitted, []
                self._have_submitted.clear()
            in_flight.update(submitted)
            if not in_flight:
                self._have_submitted.wait(WATCH_SECONDS[1])
                continue
            refs = list(in_flight)
            try:
                ready, _ = ray.wait(refs, num_returns=len(refs), timeout=timeout)
            except Exception as exc:  # Ray itself is gone: no attempt in flight can end well
                _log.exception("watching Ray jobs failed")
                for handle in in_flight.values():
                    handle._settle(handle._failure(f"the executor lost Ray while this job ran "
                                                   f"({type(exc).__name__}: {exc})"))
                in_flight.clear()
                continue
            timeout = WATCH_SECONDS[0] if ready else min(2 * timeout, WATCH_SECONDS[1])
            for ref, result in zip(ready, _results(ready), strict=True):
                handle = in_flight.pop(ref)
                try:
                    handle.complete(ref, result)
                except Exception:  # never lose the thread: the job would wait forever
                    _log.exception("completing Ray job %s failed", handle.task.job_id)
                    handle._settle(handle._failure("the Ray executor failed while collecting "
                                                   "this job's result; see the server log"))

    # -- feedback ----------------------------------------------------------------------------
    def _follow_feedback(self, handle: _RayTask) -> None:
        # No lock: the attempt is not submitted yet, so nothing can be delivered for its key
        # (and one dict store is atomic); the poller holds the lock across a relay round trip.
        self._following[handle.key] = handle

    def _unfollow_feedback(self, handle: _RayTask) -> None:
        with self._feedback_lock:
            self._following.pop(handle.key, None)
            self._received.pop(handle.key, None)

    def _deliver_frame(self, key: str, seq: int, events: list[TaskEvent]) -> None:
        """A frame from the direct link (on the feedback thread)."""
        with self._feedback_lock:
            handle = self._following.get(key)
            if handle is None:  # a finished or crashed attempt's leftovers
                return
            handle.deliver(events)
            self._received[key] = seq
            self._frame_arrived.notify_all()

    def _await_frames(self, key: str, seq: int) -> None:
        """Wait until frame ``seq`` of attempt ``key`` is delivered (caller holds the lock)."""
        if not self._frame_arrived.wait_for(lambda: self._received.get(key, 0) >= seq,
                                            LAST_FRAMES_SECONDS):
            _log.warning("feedback of attempt %s did not arrive within %.0f s; its outcome is "
                         "reported without it", key, LAST_FRAMES_SECONDS)

    def _note_relayed(self, pid: Any, why: Any) -> None:
        """Say once that a worker fell back to the relay although the link was offered."""
        if self._listener is None or self._relayed_noted:
            return
        self._relayed_noted = True
        _log.warning("a Ray worker (pid %s) could not use the feedback link at %s (%s), so its "
                     "jobs' live feedback goes through the relay actor, up to %g s late; a "
                     "firewall between the nodes, or a Ray Client connection, can cause this",
                     pid, self._listener.address, why or "no reason given",
                     RELAY_POLL_SECONDS)

    def _collect(self, keys: list[str] | None) -> None:
        """Take pushed events from the relay and deliver them (caller holds the lock)."""
        import ray

        try:
            taken = ray.get(self._relay.take.remote(keys))
        except Exception:  # the relay died: feedback is lost, outcomes still arrive
            _log.warning("the Ray feedback relay failed", exc_info=True)
            return
        for key, events in taken.items():
            handle = self._following.get(key)
            if handle is not None:  # else a finished or crashed attempt's leftovers
                handle.deliver(events)

    def _serve_feedback(self) -> None:
        """The feedback thread: serve the direct link; collect the relay now and then."""
        listener = self._listener
        interval = RELAY_POLL_SECONDS if listener is not None else FLUSH_SECONDS
        next_poll = time.monotonic() + interval
        while not self._stopping.is_set():
            wait = max(0.0, next_poll - time.monotonic())
            try:
                if listener is not None:
                    listener.serve(wait)
                else:
                    self._stopping.wait(wait)
            except Exception:  # never lose the thread: feedback would stop for good
                _log.exception("serving the feedback link failed")
                self._stopping.wait(FLUSH_SECONDS)
            if time.monotonic() >= next_poll:
                next_poll = time.monotonic() + interval
                if self._following:
                    with self._feedback_lock:
                        self._collect(None)

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

    def _remote_for(self, task: TaskSpec) -> Any:
        settings = task.job.settings
        variant = (settings.num_gpus > 0, settings.num_cpus, settings.num_gpus, task.job.name)
        remote = self._variants.get(variant)
        if remote is None:
            if len(self._variants) >= MAX_VARIANTS:
                self._variants.clear()
            remote = self._variants[variant] = self._remote[variant[0]].options(
                num_cpus=settings.num_cpus, num_gpus=settings.num_gpus, max_retries=0,
                name=f"forge:{task.job.name}")
        return remote

    def submit(self, task: TaskSpec, report: Report) -> _RayTask:
        return self.submit_chained(task, {}, report)

    def submit_chained(self, task: TaskSpec, upstream: dict[str, TaskHandle],
                       report: Report) -> _RayTask:
        """Submit ``task`` now; Ray runs it once its upstream tasks' results exist."""
        self.start()
        handles = []
        for job in task.chained_upstream:
            handle = upstream[job]
            if not isinstance(handle, _RayTask):
                raise TypeError(f"upstream job {job} was not submitted by this executor")
            handles.append(handle)
        handle = _RayTask(self, task, report, self._remote_for(task), handles)
        reason = self.infeasible(task)
        if reason is not None:
            handle._settle(handle._failure(reason))
            return handle
        never_started = [h for h in handles if h.ref is None]
        if never_started:  # an upstream task was refused (infeasible): this one cannot run
            handle._settle(skipped(task.job_id, never_started[0].task.job.name))
            return handle
        handle.start()
        return handle

    def shutdown(self) -> None:
        import ray

        self._stopping.set()
        if self._listener is not None:
            self._listener.wake()
        if self._completer is not None:
            self._completer_stop = True
            self._have_submitted.set()
            self._completer.join()
            self._completer = None
            self._completer_stop = False
        if self._feedback_thread is not None:
            self._feedback_thread.join()
            self._feedback_thread = None
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        if self._relay is not None:
            if ray.is_initialized():
                ray.kill(self._relay)
            self._relay = None
        if self._owns_runtime and ray.is_initialized():
            ray.shutdown()
            self._owns_runtime = False
