"""RayExecutor: each job a plain Ray task; feedback goes over a direct link or a relay actor.

The operation runs in the Ray task's main thread (``_ray_worker``) while a monitor thread of the
worker (``_ray_monitor``) sends batched feedback every ~0.1 s (a job that ends sooner sends
nothing: its last feedback comes back with its outcome) over a TCP link to the executor's
feedback thread (``_ray_feedback``), or, if the worker cannot reach it, to the executor's
FeedbackRelay actor, which the feedback thread collects every second; one completion thread
watches every attempt in flight with ``ray.wait`` and hands each ended one to its task handle
(``_ray_attempts``). Cancel (``ray.cancel``) raises KeyboardInterrupt in the operation; a job
that has not stopped 2 s later ends its worker, and a forced cancel kills the worker. Worker
crashes are retried (``task.max_retries``) by resubmitting; user errors are reported, never
retried. GPU tasks set ``max_calls=0`` so Ray does not restart their worker after every call
(its GPU default is 1).
"""

from __future__ import annotations

import logging
import math
import os
import socket
import threading
import time
from dataclasses import replace
from typing import Any

from ._ray_attempts import HandleContext, RayTaskHandle, results
from ._ray_feedback import FeedbackHub
from ._ray_worker import run_job
from ._sandbox import SandboxPolicy, network_refusal
from ._task import Report, TaskHandle, TaskSpec
from ._worker import failed, skipped

_log = logging.getLogger(__name__)
#: How long the cluster's node list is trusted for feasibility checks.
NODES_TTL_SECONDS = 5.0
#: How many ``.options()`` variants of the task function are kept.
MAX_VARIANTS = 4096
#: The completion thread's wait for attempts to end: from (while they do) to (while none does).
WATCH_SECONDS = (0.005, 0.05)


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


def _check_client_installed(address: str) -> None:
    """``ray://`` needs Ray Client's gRPC package; say how to get it instead of Ray's own
    ImportError from deep inside ``ray.init``."""
    import importlib.util

    if address.startswith("ray://") and importlib.util.find_spec("grpc") is None:
        raise ConnectionError(
            f"{address} is a Ray Client address, which needs Ray Client's packages; install "
            "them with `pip install 'ray[client]'` (Forge's own install brings them), or give "
            "the address of a node of the cluster (HOST:6379) on a machine that is one")


class RayExecutor:
    """Runs tasks on Ray: a local runtime, or the cluster at ``address`` / ``RAY_ADDRESS``.

    If Ray is already initialised in this process (e.g. by a test fixture) it is used as is and
    left running on shutdown. ``direct_feedback=False`` sends all feedback through the relay
    actor, as a worker that cannot reach the executor's link does.
    """

    name = "ray"

    def __init__(self, address: str | None = None, *, num_cpus: int | None = None,
                 num_gpus: int | None = None, init_options: dict[str, Any] | None = None,
                 direct_feedback: bool = True, sandbox: SandboxPolicy | None = None) -> None:
        self.address = address or os.environ.get("RAY_ADDRESS") or None
        #: How workers confine jobs (None: unconfined, as the workers' user; see _sandbox_ray).
        self.sandbox = sandbox
        self.num_cpus = num_cpus
        self.num_gpus = num_gpus
        self.init_options = dict(init_options or {})
        self._owns_runtime = False
        self._remote: dict[bool, Any] = {}
        #: ``.options(...)`` wrappers by (gpu, num_cpus, num_gpus, job name): building one costs
        #: about a tenth of a trivial job's submission.
        self._variants: dict[tuple[bool, float, float, str], Any] = {}
        self._lock = threading.Lock()
        self._nodes: list[dict[str, float]] = []
        self._nodes_read = -math.inf
        # Attempts in flight, watched by one completion thread (``_complete_tasks``): new ones
        # wait in ``_submitted`` until it next looks.
        self._submitted: list[tuple[Any, RayTaskHandle]] = []
        self._submitted_lock = threading.Lock()
        self._have_submitted = threading.Event()
        self._completer: threading.Thread | None = None
        self._completer_stop = False
        # Feedback: tasks send it over the listener's link or push it to the relay actor; one
        # thread serves the link and collects the relay (see the module docstring).
        self.direct_feedback = direct_feedback
        self._feedback = FeedbackHub()
        self._handles = HandleContext(self._feedback, self._watch)

    def start(self) -> None:
        import ray

        with self._lock:
            if not ray.is_initialized():
                options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                                           "logging_level": logging.WARNING}
                if self.address:
                    _check_client_installed(self.address)
                    _check_reachable(self.address)
                    options["address"] = self.address
                else:
                    options.update(num_cpus=self.num_cpus, num_gpus=self.num_gpus)
                options.update(self.init_options)
                ray.init(**options)
                self._owns_runtime = True
            if not self._remote:
                # max_calls cannot be set through .options(): one remote function per kind.
                self._remote[False] = ray.remote(run_job)
                self._remote[True] = ray.remote(max_calls=0)(run_job)
            if self._completer is None:
                self._completer = threading.Thread(target=self._complete_tasks, daemon=True,
                                                   name="forge-ray-completion")
                self._completer.start()
            if not self._feedback.started:
                local = self._owns_runtime and not self.address
                self._feedback.start(direct=self.direct_feedback,
                                     cluster=None if local else self.address or "")

    def _watch(self, ref: Any, handle: RayTaskHandle) -> None:
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

        in_flight: dict[Any, RayTaskHandle] = {}
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
                    handle.settle(failed(handle.task.job_id, f"the executor lost Ray while this "
                                         f"job ran ({type(exc).__name__}: {exc})"))
                in_flight.clear()
                continue
            timeout = WATCH_SECONDS[0] if ready else min(2 * timeout, WATCH_SECONDS[1])
            for ref, result in zip(ready, results(ready), strict=True):
                handle = in_flight.pop(ref)
                try:
                    handle.complete(ref, result)
                except Exception:  # never lose the thread: the job would wait forever
                    _log.exception("completing Ray job %s failed", handle.task.job_id)
                    handle.settle(failed(handle.task.job_id, "the Ray executor failed while "
                                         "collecting this job's result; see the server log"))

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

    def submit(self, task: TaskSpec, report: Report) -> RayTaskHandle:
        return self.submit_chained(task, {}, report)

    def submit_chained(self, task: TaskSpec, upstream: dict[str, TaskHandle],
                       report: Report) -> RayTaskHandle:
        """Submit ``task`` now; Ray runs it once its upstream tasks' results exist."""
        self.start()
        if self.sandbox is not None:
            task = replace(task, sandbox=self.sandbox)
        handles = []
        for job in task.chained_upstream:
            handle = upstream[job]
            if not isinstance(handle, RayTaskHandle):
                raise TypeError(f"upstream job {job} was not submitted by this executor")
            handles.append(handle)
        handle = RayTaskHandle(self._handles, task, report, self._remote_for(task), handles)
        reason = self.infeasible(task)
        if reason is None and self.sandbox is None and not task.job.settings.network:
            reason = network_refusal(task.job.name)
        if reason is not None:
            handle.settle(failed(task.job_id, reason))
            return handle
        never_started = [h for h in handles if h.ref is None]
        if never_started:  # an upstream task was refused (infeasible): this one cannot run
            handle.settle(skipped(task.job_id, never_started[0].task.job.name))
            return handle
        handle.start()
        return handle

    def shutdown(self) -> None:
        import ray

        self._feedback.stop()
        if self._completer is not None:
            self._completer_stop = True
            self._have_submitted.set()
            self._completer.join()
            self._completer = None
            self._completer_stop = False
        self._feedback.close()
        if self._owns_runtime and ray.is_initialized():
            ray.shutdown()
            self._owns_runtime = False
