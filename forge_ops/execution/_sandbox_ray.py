"""A Ray worker's jobs in a sandbox: each worker keeps a job runner inside one, started by its
first confined job, and hands it each job in turn.

The runner runs jobs in its main thread, one after another, as an unconfined Ray worker does
(so a job costs a message each way, not a process start), and sends the job's feedback every
``FLUSH_SECONDS`` to the worker, whose monitor passes it on (``_ray_monitor``). A cancel
(``ray.cancel`` interrupts the worker's main thread) is passed on to the runner as SIGINT
through a pidfd; a job that does not stop still ends its worker, and so the sandbox, as
``_ray_monitor`` says. A runner that dies during a job ends its worker too, so that Ray reports
a crashed worker and the executor retries the job as it would an unconfined one.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import OrderedDict
from typing import Any

from ._sandbox import (
    Confinement,
    SandboxKey,
    SandboxPolicy,
    SandboxUnavailable,
    network_refusal,
    preload,
    require,
    start_sandbox,
)
from ._sandbox_channel import Channel
from ._task import TaskEvent, TaskEventKind, TaskSpec
from ._worker import FLUSH_SECONDS, FeedbackBuffer, failed, task_outcome
from ._worker_tuning import (
    half_imported_modules,
    hold_freed_memory,
    limit_threads,
    release_freed_memory,
)

_log = logging.getLogger(__name__)
#: How long a runner may take to start (imports torch on a cold disk).
START_SECONDS = 300.0
#: How often a worker waiting for its job looks for a cancel (``ray.cancel`` cannot wake it).
CANCEL_POLL_SECONDS = 0.05
#: Runners kept per worker (one per store, network setting and GPU set in use).
MAX_RUNNERS = 2

_runners: OrderedDict[tuple[SandboxPolicy, SandboxKey], SandboxRunner] = OrderedDict()
#: How this worker's machine confines jobs, by policy (it does not change while it runs).
_methods: dict[SandboxPolicy, Confinement] = {}


class SandboxRunner:
    """The worker's side of a job runner in a sandbox."""

    def __init__(self, policy: SandboxPolicy, key: SandboxKey, method: Confinement) -> None:
        ours, theirs = socket.socketpair()
        try:
            self.process: subprocess.Popen[bytes] = start_sandbox(
                policy, key, method, f"{__name__}:serve", theirs.fileno())
        finally:
            theirs.close()
        self.channel = Channel(ours)
        self.exiting = False
        ours.settimeout(START_SECONDS)
        try:
            _, fds = self.channel.recv()  # ready, with a pidfd of the runner (for signals)
        except (EOFError, OSError) as exc:
            self.stop()
            raise SandboxUnavailable(f"the job sandbox did not start on this Ray worker "
                                     f"({exc}); see the worker's log for its error") from exc
        ours.settimeout(None)
        self.pidfd = fds[0]

    def alive(self) -> bool:
        return not self.exiting and self.process.poll() is None

    def run(self, task: TaskSpec, sink: FeedbackBuffer, known: dict[str, str]) -> TaskEvent:
        """Run ``task`` in the sandbox: its feedback goes to ``sink``, small JSON outputs to
        ``known``."""
        interrupted = threading.Event()
        previous: Any = None
        if threading.current_thread() is threading.main_thread():
            previous = signal.signal(signal.SIGINT, lambda signum, frame: interrupted.set())
        try:
            self.channel.send(("run", task, known))
            passed_on = False
            while True:
                if interrupted.is_set() and not passed_on:
                    with contextlib.suppress(OSError):
                        signal.pidfd_send_signal(self.pidfd, signal.SIGINT)
                    passed_on = True
                readable, _, _ = select.select([self.channel.sock], [], [], CANCEL_POLL_SECONDS)
                if not readable:
                    continue
                message, _ = self.channel.recv()
                if message[0] == "feedback":
                    sink.extend(message[1])
                    continue
                _, kind, data, items, small, self.exiting = message
                sink.extend(items)
                known.update(small)
                return TaskEvent(task.job_id, TaskEventKind(kind), data)
        except (EOFError, OSError):
            # The job took its sandbox down (a crash, or killed): end the worker, so that Ray
            # reports it crashed and the executor retries, as for an unconfined job.
            sys.stdout, sys.stderr = sys.__stdout__, sys.__stderr__
            _log.warning("the sandbox of job %s died; exiting its worker", task.job_id)
            os._exit(1)
        finally:
            if previous is not None:
                signal.signal(signal.SIGINT, previous)

    def stop(self) -> None:
        self.channel.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=5)
        if self.process.poll() is None:
            self.process.kill()


def confined_outcome(task: TaskSpec, sink: FeedbackBuffer, known: dict[str, str]) -> TaskEvent:
    """Run ``task`` as its sandbox policy says (in this worker where it allows no sandbox)."""
    assert task.sandbox is not None  # the caller checks
    policy = task.sandbox
    try:
        method = _methods.get(policy) or _methods.setdefault(policy, require(policy))
        if method is Confinement.NONE:
            if not task.job.settings.network:
                return failed(task.job_id, network_refusal(task.job.name))
            hold_freed_memory(not task.job.settings.num_gpus)
            limit_threads(task.job.settings.num_cpus)
            return task_outcome(task, sink, known)
        key = (policy, SandboxKey(task.store, task.job.settings.network,
                                  os.environ.get("CUDA_VISIBLE_DEVICES")))
        runner = _runners.get(key)
        if runner is None or not runner.alive():
            if runner is not None:
                _runners.pop(key).stop()
            while len(_runners) >= MAX_RUNNERS:
                _runners.popitem(last=False)[1].stop()
            runner = _runners[key] = SandboxRunner(policy, key[1], method)
        _runners.move_to_end(key)
    except SandboxUnavailable as exc:
        return failed(task.job_id, str(exc))
    return runner.run(task, sink, known)


# -- inside the sandbox -----------------------------------------------------------------------
class _Running:
    """The runner's current job, as its SIGINT handler and feedback thread see it."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.sink: FeedbackBuffer | None = None
        self.cancelled: threading.Event | None = None
        self.interruptible = False

    def interrupt(self, signum: int, frame: Any) -> None:
        """SIGINT: a cancel of the running job (and nothing between jobs)."""
        if self.interruptible and self.cancelled is not None:
            self.cancelled.set()
            signal.default_int_handler(signum, frame)

    def pump(self, channel: Channel) -> None:
        """Send the running job's feedback every FLUSH_SECONDS (a thread). It sends under
        the lock, so none of a job's feedback can follow the job's end."""
        while True:
            time.sleep(FLUSH_SECONDS)
            with self.lock:
                items = self.sink.drain() if self.sink is not None else []
                if items:
                    try:
                        channel.send(("feedback", items))
                    except OSError:
                        return


def serve(fd: int) -> None:
    """The job runner: preload, then run each job the worker sends until it closes."""
    running = _Running()
    signal.signal(signal.SIGINT, running.interrupt)
    preload()
    channel = Channel(socket.socket(fileno=fd))
    threading.Thread(target=running.pump, args=(channel,), daemon=True,
                     name="forge-feedback").start()
    channel.send(("ready",), [os.pidfd_open(os.getpid())])
    while True:
        try:
            (_, task, known), _ = channel.recv()
        except EOFError:
            return
        reply = _run(task, known, running)
        channel.send(reply)
        if reply[-1]:
            os._exit(1)


def _run(task: TaskSpec, known: dict[str, str], running: _Running) -> tuple[Any, ...]:
    cancelled = threading.Event()
    sink = FeedbackBuffer(task, cancelled)
    before = set(known)
    begun = time.monotonic()
    hold_freed_memory(not task.job.settings.num_gpus)
    limit_threads(task.job.settings.num_cpus)
    with running.lock:
        running.sink, running.cancelled = sink, cancelled
    outcome: TaskEvent | None = None
    try:
        running.interruptible = True
        outcome = task_outcome(task, sink, known)  # a cancel (KeyboardInterrupt) included
        running.interruptible = False
    except KeyboardInterrupt:  # landed just outside the operation
        running.interruptible = False
        outcome = outcome or TaskEvent(task.job_id, TaskEventKind.CANCELLED)
    with running.lock:
        running.sink = running.cancelled = None
    torch = sys.modules.get("torch")
    if torch is not None and not torch.is_grad_enabled():
        torch.set_grad_enabled(True)  # thread state: do not pass it to the next job
    if time.monotonic() - begun >= FLUSH_SECONDS:  # a job this short has little to give back
        release_freed_memory()
    small = {artifact: text for artifact, text in known.items() if artifact not in before}
    # An interrupt inside an import leaves half a module behind: a new runner must take over.
    exiting = outcome.kind is TaskEventKind.CANCELLED and bool(half_imported_modules())
    return ("done", outcome.kind.value, outcome.data, sink.drain(), small, exiting)
