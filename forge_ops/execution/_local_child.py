"""The inside of a local job's process: tied to its parent's life, it runs the task and streams
its events to the executor through a pipe (see ``_local`` for the executor's side)."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
import threading
from typing import Any

from ._descriptors import capture_descriptors
from ._task import TaskEvent, TaskEventKind, TaskSpec
from ._worker import FLUSH_SECONDS, FeedbackBuffer, task_outcome
from ._worker_tuning import hold_freed_memory, limit_threads

_PR_SET_PDEATHSIG = 1


def _end_with_parent() -> None:
    """Have the kernel kill this job when its parent goes (Linux; elsewhere nothing).

    Its parent is the fork server, which exits when the executor's process does, even by
    SIGKILL: a server that crashed or was killed then leaves no job training for nobody on a
    CPU or holding a GPU's memory. The fork server exits when the last holder of its "alive"
    pipe closes it, and it hands every child a copy; a job lets go of its copy, or the fork
    server would wait for the job and the job for the fork server.
    """
    from multiprocessing import forkserver

    server = getattr(forkserver, "_forkserver", None)
    alive = getattr(server, "_forkserver_alive_fd", None)
    if server is not None and alive is not None and server._forkserver_pid is None:
        # (A job that starts a fork server of its own gets a new one: its pid is unknown here.)
        with contextlib.suppress(OSError):
            os.close(alive)
        server._forkserver_alive_fd = None
    if not sys.platform.startswith("linux"):
        return
    parent = os.getppid()
    try:
        libc = ctypes.CDLL(None)
        if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL) != 0:
            return
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the parent went before the request took effect
        os._exit(1)


def child_main(task: TaskSpec, conn: Any, attempt: int) -> None:
    """Entry point of a child process: run the task, stream its events through ``conn``."""
    _end_with_parent()
    cancelled = threading.Event()

    def interrupt(signum: int, frame: Any) -> None:
        cancelled.set()  # a cancel, not the operation raising KeyboardInterrupt itself
        signal.default_int_handler(signum, frame)

    signal.signal(signal.SIGINT, interrupt)
    # Only CPU training gains from keeping freed memory. On an H100 a CUDA loop in a fresh job
    # process ran at 0.82x the parent's speed with it and limit_threads, 1.05x with neither;
    # Ray jobs, which then called only limit_threads, kept pace (0.95x). Not re-measured since.
    hold_freed_memory(not task.job.settings.num_gpus)
    limit_threads(task.job.settings.num_cpus)
    send_lock = threading.Lock()
    sink = FeedbackBuffer(task, cancelled)
    done = threading.Event()

    def send(event: TaskEvent) -> None:
        with send_lock:
            conn.send(event)

    def pump() -> None:
        while not done.wait(FLUSH_SECONDS):
            items = sink.drain()
            if items:
                send(TaskEvent(task.job_id, TaskEventKind.FEEDBACK, {"items": items}))

    send(TaskEvent(task.job_id, TaskEventKind.STARTED, {"pid": os.getpid(), "attempt": attempt}))
    pumper = threading.Thread(target=pump, name="forge-feedback", daemon=True)
    pumper.start()
    try:
        with capture_descriptors(sink):
            outcome = task_outcome(task, sink)
    except KeyboardInterrupt:
        outcome = TaskEvent(task.job_id, TaskEventKind.CANCELLED)
    done.set()
    pumper.join()
    items = sink.drain()
    if items:
        send(TaskEvent(task.job_id, TaskEventKind.FEEDBACK, {"items": items}))
    send(outcome)
    conn.close()
    # Done: threads the operation started and left running (not daemons) would keep the
    # process, and so the job, alive; nothing of theirs can reach the job any more.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
