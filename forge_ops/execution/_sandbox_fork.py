"""The local executor's fork server inside a sandbox: jobs are forked there, so they inherit
its confinement and its preloaded imports (torch), and start as fast as unconfined ones.

The executor's side (``SandboxForkServer``, one per kind of sandbox in a ``SandboxPool``) asks
the server for each job over a channel, handing it the write end of the job's event pipe; the
server forks the job (``child_main``, as an unconfined job runs), answers with a pidfd of the
job (its host pid and a race-free handle for signals), and reports the job's exit code when
it reaps it. The server ends when the channel closes, and its jobs with it.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import select
import signal
import socket
import subprocess
import threading
from collections import OrderedDict
from multiprocessing.connection import Connection
from typing import Any

from ._sandbox import (
    Confinement,
    SandboxKey,
    SandboxPolicy,
    SandboxUnavailable,
    preload,
    start_sandbox,
)
from ._sandbox_channel import Channel, close_quietly, host_pid
from ._task import TaskSpec

_log = logging.getLogger(__name__)
#: How long a sandbox may take to start (a cold disk's torch import included).
START_SECONDS = 300.0
#: Sandboxes kept per executor (one per artifact store and network setting in use).
MAX_SANDBOXES = 4


class SandboxedJob:
    """A job process forked in a sandbox, as the local executor sees a ``Process``."""

    def __init__(self, receiver: Connection) -> None:
        self.receiver = receiver
        self.pid: int | None = None
        self.exitcode: int | None = None
        self._pidfd: int | None = None
        self._started = threading.Event()
        self._exited = threading.Event()

    def started(self, pidfd: int | None) -> None:
        self._pidfd = pidfd
        self.pid = host_pid(pidfd) if pidfd is not None else None
        self._started.set()

    def exited(self, code: int | None) -> None:
        self.exitcode = code
        self._started.set()
        self._exited.set()

    def wait_started(self) -> None:
        self._started.wait()

    def is_alive(self) -> bool:
        return self._started.is_set() and not self._exited.is_set()

    def send_signal(self, signum: int) -> None:
        if self._pidfd is not None and not self._exited.is_set():
            with contextlib.suppress(ProcessLookupError, OSError):
                signal.pidfd_send_signal(self._pidfd, signum)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def join(self, timeout: float | None = None) -> None:
        self._exited.wait(timeout)
        if self._exited.is_set() and self._pidfd is not None:
            close_quietly(self._pidfd)
            self._pidfd = None


class SandboxForkServer:
    """The executor's side of one sandboxed fork server (started on first use)."""

    def __init__(self, policy: SandboxPolicy, key: SandboxKey, method: Confinement) -> None:
        self.policy, self.key, self.method = policy, key, method
        self._lock = threading.Lock()
        self._channel: Channel | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._jobs: dict[int, SandboxedJob] = {}
        self._numbers = itertools.count()

    @property
    def busy(self) -> bool:
        return bool(self._jobs)

    def _ensure_running(self) -> Channel:
        if self._channel is not None and self._process is not None \
                and self._process.poll() is None:
            return self._channel
        self.stop()
        ours, theirs = socket.socketpair()
        try:
            self._process = start_sandbox(self.policy, self.key, self.method,
                                          f"{__name__}:serve", theirs.fileno())
        finally:
            theirs.close()
        channel = Channel(ours)
        ours.settimeout(START_SECONDS)
        try:
            message, _ = channel.recv()  # "ready", once the imports are done
        except (EOFError, OSError) as exc:
            self.stop()
            raise SandboxUnavailable(f"the job sandbox did not start ({exc}); see the server's "
                                     "log for its error") from exc
        ours.settimeout(None)
        assert message == ("ready",)  # our own server's first word
        self._channel = channel
        threading.Thread(target=self._read, args=(channel,), daemon=True,
                         name="forge-sandbox-reader").start()
        return channel

    def spawn(self, task: TaskSpec, attempt: int) -> SandboxedJob:
        """Fork a job for ``task``; returns once it runs (its events come on ``receiver``)."""
        read, write = os.pipe()
        job = SandboxedJob(Connection(read, writable=False))
        try:
            with self._lock:
                channel = self._ensure_running()
                number = next(self._numbers)
                self._jobs[number] = job
                try:
                    channel.send(("spawn", number, task, attempt), [write])
                except OSError:
                    self._jobs.pop(number, None)
                    raise
        finally:
            os.close(write)
        job.wait_started()
        return job

    def _read(self, channel: Channel) -> None:
        """Hand the server's reports to the jobs they are about (reader thread)."""
        try:
            while True:
                message, fds = channel.recv()
                kind, number, value = message
                job = self._jobs.get(number)
                if job is None:
                    close_quietly(*fds)
                elif kind == "started":
                    job.started(fds[0] if fds else None)
                else:  # "exited"
                    with self._lock:
                        self._jobs.pop(number, None)
                    job.exited(value)
        except (EOFError, OSError):
            pass
        with self._lock:  # the server is gone, and its jobs with it
            jobs = list(self._jobs.values()) if self._channel is channel else []
            if self._channel is channel:
                self._jobs.clear()
                self._channel = None
        for job in jobs:
            job.exited(-signal.SIGKILL)

    def stop(self) -> None:
        """End the server and every job it runs."""
        channel, self._channel = self._channel, None
        process, self._process = self._process, None
        jobs, self._jobs = self._jobs, {}
        if channel is not None:
            with contextlib.suppress(OSError):
                channel.sock.shutdown(socket.SHUT_RDWR)
            channel.close()
        if process is not None:
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for job in jobs.values():  # gone with their server
            job.exited(-signal.SIGKILL)


class SandboxPool:
    """One fork server per kind of sandbox a local executor's jobs need."""

    def __init__(self, policy: SandboxPolicy, method: Confinement) -> None:
        self.policy, self.method = policy, method
        self._lock = threading.Lock()
        self._servers: OrderedDict[SandboxKey, SandboxForkServer] = OrderedDict()

    def spawn(self, task: TaskSpec, attempt: int) -> SandboxedJob:
        key = SandboxKey(task.store, task.job.settings.network)
        with self._lock:
            server = self._servers.get(key)
            if server is None:
                server = self._servers[key] = SandboxForkServer(self.policy, key, self.method)
                idle = [k for k, s in self._servers.items() if not s.busy and k != key]
                for old in idle[:max(0, len(self._servers) - MAX_SANDBOXES)]:
                    self._servers.pop(old).stop()
            self._servers.move_to_end(key)
        return server.spawn(task, attempt)

    def stop(self) -> None:
        with self._lock:
            servers, self._servers = list(self._servers.values()), OrderedDict()
        for server in servers:
            server.stop()


# -- inside the sandbox -----------------------------------------------------------------------
def serve(fd: int) -> None:
    """The fork server: preload, then fork a job per request until the channel closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # jobs set their own; a cancel is theirs
    preload()
    channel = Channel(socket.socket(fileno=fd))
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_read, False)
    os.set_blocking(wake_write, False)
    signal.set_wakeup_fd(wake_write)
    signal.signal(signal.SIGCHLD, lambda signum, frame: None)
    jobs: dict[int, int] = {}  # pid → the executor's number for the job
    channel.send(("ready",))
    try:
        while True:
            readable, _, _ = select.select([channel.fileno(), wake_read], [], [])
            if wake_read in readable:
                with contextlib.suppress(BlockingIOError):
                    os.read(wake_read, 4096)
                _reap(channel, jobs)
            if channel.fileno() in readable:
                try:
                    message, fds = channel.recv()
                except EOFError:
                    return
                _, number, task, attempt = message
                pid = os.fork()
                if pid == 0:
                    _job(task, attempt, fds[0], (channel.sock.fileno(), wake_read, wake_write))
                os.close(fds[0])
                jobs[pid] = number
                pidfd = os.pidfd_open(pid)
                channel.send(("started", number, None), [pidfd])
                os.close(pidfd)
    finally:
        for pid in jobs:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def _reap(channel: Channel, jobs: dict[int, int]) -> None:
    while jobs:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        number = jobs.pop(pid, None)
        if number is not None:
            channel.send(("exited", number, os.waitstatus_to_exitcode(status)))


def _job(task: TaskSpec, attempt: int, events: int, server_fds: tuple[int, ...]) -> Any:
    """A forked job: drop the server's parts, then run as an unconfined job does."""
    try:
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        close_quietly(*server_fds)
        from ._local_child import child_main

        child_main(task, Connection(events, readable=False), attempt)
    finally:
        os._exit(1)
