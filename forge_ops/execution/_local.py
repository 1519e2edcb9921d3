"""LocalExecutor: each task in a fresh child process on this machine.

Children come from a ``forkserver`` that has already imported torch and the worker (so a job
starts in milliseconds, not seconds) where the platform has one, else from ``spawn``. At most
``max_workers`` run at once; the rest wait in submission order. Cancel sends SIGINT (the job sees
KeyboardInterrupt and unwinds); a forced cancel kills the process. A child that dies without
reporting an outcome is a crash, retried up to ``task.max_retries`` times.

With a ``sandbox`` policy, jobs are forked by a fork server inside the job sandbox instead
(``_sandbox_fork``): they inherit its confinement and its preloaded imports alike.
"""

from __future__ import annotations

import importlib.util
import logging
import multiprocessing
import os
import signal
import threading
from collections import deque
from typing import Any

from ._devices import local_infeasible
from ._local_child import child_main
from ._sandbox import (
    FORK_SERVER_PRELOAD,
    Confinement,
    SandboxPolicy,
    SandboxUnavailable,
    network_refusal,
    require,
)
from ._sandbox_fork import SandboxPool
from ._task import TERMINAL_KINDS, Report, TaskEvent, TaskEventKind, TaskSpec
from ._worker import failed

_log = logging.getLogger(__name__)

class _LocalTask:
    """A submitted task: waiting, then one child process per attempt."""

    def __init__(self, executor: LocalExecutor, task: TaskSpec, report: Report) -> None:
        self.executor = executor
        self.task = task
        self.report = report
        self.process: Any = None
        self.cancel_requested = False
        self.finished = False
        self.lock = threading.Lock()

    def cancel(self, force: bool = False) -> None:
        with self.lock:
            self.cancel_requested = True
            process = self.process
            if process is None:
                if self.executor.forget(self) and not self.finished:
                    self.finished = True
                    self.report(TaskEvent(self.task.job_id, TaskEventKind.CANCELLED))
                return
        if process.is_alive() and process.pid is not None:
            if force:
                process.kill()
            elif hasattr(process, "send_signal"):  # a sandboxed job (see _sandbox_fork)
                process.send_signal(signal.SIGINT)
            else:
                try:
                    os.kill(process.pid, signal.SIGINT)
                except ProcessLookupError:
                    pass

    def run(self) -> None:
        """Run attempts in child processes until one reports an outcome (monitor thread)."""
        attempt = 0
        while True:
            outcome = self._attempt(attempt)
            with self.lock:
                if outcome is None and self.cancel_requested:
                    outcome = TaskEvent(self.task.job_id, TaskEventKind.CANCELLED)
                if outcome is None and attempt < self.task.max_retries:
                    attempt += 1
                    continue
                if outcome is None:
                    code = self.process.exitcode
                    outcome = failed(self.task.job_id,
                                     f"the worker process died (exit code {code}); retried "
                                     f"{attempt} of {self.task.max_retries} time(s) allowed")
                self.finished = True
            self.report(outcome)
            return

    def _attempt(self, attempt: int) -> TaskEvent | None:
        with self.lock:
            if self.cancel_requested:
                return TaskEvent(self.task.job_id, TaskEventKind.CANCELLED)
            self.process, receiver = self.executor.start_process(self.task, attempt)
        outcome: TaskEvent | None = None
        try:
            while True:
                try:
                    event = receiver.recv()
                except (EOFError, OSError):
                    break
                if event.kind in TERMINAL_KINDS:
                    outcome = event
                elif event.kind is TaskEventKind.STARTED and self.executor.sandbox:
                    # The job's own pid is its sandbox's; the server's log and ps show this.
                    self.report(TaskEvent(event.job_id, event.kind,
                                          {**event.data, "pid": self.process.pid}))
                else:
                    self.report(event)
        finally:
            receiver.close()
            self.process.join()
        return outcome


class LocalExecutor:
    """Runs each task in a child process of this machine (fast tests, single-box use)."""

    name = "local"

    def __init__(self, max_workers: int | None = None, *, start_method: str | None = None,
                 sandbox: SandboxPolicy | None = None) -> None:
        self.max_workers = max_workers or os.cpu_count() or 1
        #: How jobs are confined (None: they run as this process's user, unconfined).
        self.sandbox = sandbox
        self._pool: SandboxPool | None = None
        methods = multiprocessing.get_all_start_methods()
        self.start_method = start_method or ("forkserver" if "forkserver" in methods else "spawn")
        self.context: Any = multiprocessing.get_context(self.start_method)
        self._lock = threading.Lock()
        self._waiting: deque[_LocalTask] = deque()
        self._running = 0
        self._started = False

    def start(self) -> None:
        """Get ready to run jobs; raises SandboxUnavailable where the sandbox policy requires
        confinement that this machine lacks."""
        if self._started:
            return
        if self.sandbox is not None:
            method = require(self.sandbox)
            if method is Confinement.NONE:
                _log.warning("local executor: jobs run unconfined (no bubblewrap here)")
            else:
                self._pool = SandboxPool(self.sandbox, method)
        if self.start_method == "forkserver":
            # Imported once in the fork server, so no job pays for them (absent ones skipped).
            preload = [name for name in FORK_SERVER_PRELOAD
                       if importlib.util.find_spec(name.split(".")[0]) is not None]
            self.context.set_forkserver_preload(preload)
        self._started = True

    def start_process(self, task: TaskSpec, attempt: int) -> tuple[Any, Any]:
        """Start a job's process: returns it and the receiving end of its events."""
        if self._pool is not None:
            job = self._pool.spawn(task, attempt)
            return job, job.receiver
        receiver, sender = self.context.Pipe(duplex=False)
        process = self.context.Process(target=child_main, args=(task, sender, attempt),
                                       name=f"forge-job-{task.job.name}", daemon=True)
        process.start()
        sender.close()
        return process, receiver

    def submit(self, task: TaskSpec, report: Report) -> _LocalTask:
        self.start()
        handle = _LocalTask(self, task, report)
        if self._pool is None and not task.job.settings.network:
            handle.finished = True
            report(failed(task.job_id, network_refusal(task.job.name)))
        reason = local_infeasible(task.job)
        if reason is not None:  # a GPU job where there is none: never run it on the CPU
            handle.finished = True
            report(failed(task.job_id, reason))
            return handle
        with self._lock:
            self._waiting.append(handle)
        self._dispatch()
        return handle

    def forget(self, handle: _LocalTask) -> bool:
        """Drop a task that has not started; False if it already has."""
        with self._lock:
            if handle in self._waiting:
                self._waiting.remove(handle)
                return True
        return False

    def _dispatch(self) -> None:
        with self._lock:
            while self._waiting and self._running < self.max_workers:
                handle = self._waiting.popleft()
                self._running += 1
                threading.Thread(target=self._monitor, args=(handle,), daemon=True,
                                 name=f"forge-local-{handle.task.job_id}").start()

    def _monitor(self, handle: _LocalTask) -> None:
        try:
            handle.run()
        except SandboxUnavailable as exc:
            handle.report(failed(handle.task.job_id, str(exc)))
        except Exception:
            _log.exception("local executor: monitoring job %s failed", handle.task.job_id)
            handle.report(failed(handle.task.job_id,
                                 "the local executor lost track of this job (see the server log)"))
        finally:
            with self._lock:
                self._running -= 1
            self._dispatch()

    def shutdown(self) -> None:
        with self._lock:
            waiting, self._waiting = list(self._waiting), deque()
        for handle in waiting:
            handle.cancel(force=True)
        if self._pool is not None:
            self._pool.stop()
