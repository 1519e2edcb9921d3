"""The Ray task body, which Ray runs in its workers: run one job, return its outcome.

Ray pickles ``run_job`` by reference (this module's path and the function's name), so a worker
imports this module to run it. The job's feedback goes out through the worker's monitor
(``_ray_monitor``); the result goes back as plain data (see ``run_job``).
"""

from __future__ import annotations

import logging
import os
import pickle
import sys
import time
from typing import Any

from forge_ops.schema import now_iso

from ._ray_monitor import RunningJob, job_monitor, no_link_reason, wait_for_relay
from ._sandbox_ray import confined_outcome
from ._task import TaskEvent, TaskEventKind, TaskSpec
from ._worker import resolve_chained, task_outcome
from ._worker_tuning import (
    half_imported_modules,
    hold_freed_memory,
    limit_threads,
    release_freed_memory,
)

_log = logging.getLogger(__name__)


def run_job(payload: bytes, route: str, key: str, *upstream: dict[str, Any]
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
    task: TaskSpec = pickle.loads(payload)  # noqa: S301 - written by RayExecutor.submit
    task, settled = resolve_chained(task, [outcome_of(task.job_id, result) for result in upstream])
    if settled is not None:  # skipped, failed before running, or found in the cache
        return {"kind": settled.kind.value, "data": settled.data, "items": [], "sent": 0,
                "pushed": False}
    known: dict[str, str] = {}
    for returned in upstream:
        known.update(returned.get("small", {}))
    # Every event names the worker process and when the job started there. A job that ends
    # within one feedback interval sends nothing but its return value, like a plain Ray task.
    stamp: dict[str, Any] = {"pid": os.getpid(), "started": now_iso("milliseconds")}
    monitor = job_monitor()
    job = RunningJob(task, route, key, stamp)
    try:
        monitor.begin(job)  # inside: an interrupt right after it still ends the job below
        if task.sandbox is not None:  # the operation runs in this worker's sandbox
            outcome = confined_outcome(task, job.sink, known)
        else:
            hold_freed_memory(not task.job.settings.num_gpus)
            limit_threads(task.job.settings.num_cpus)
            outcome = task_outcome(task, job.sink, known)  # a cancel included
    finally:
        monitor.end(job)
        torch = sys.modules.get("torch")
        if torch is not None and not torch.is_grad_enabled():
            torch.set_grad_enabled(True)  # thread state: do not pass it to the next job
        if time.monotonic() >= job.first_push:  # a job this short has little to give back
            release_freed_memory()
    if outcome.kind is TaskEventKind.CANCELLED and half_imported_modules():
        # The interrupt landed inside an import (e.g. of torch): the half-initialised module
        # would break every later job on this worker, so Ray must start a new one.
        _log.warning("job %s was cancelled during an import; exiting its worker", task.job_id)
        os._exit(1)
    if job.last_push is not None:
        wait_for_relay(job.last_push, task.job_id)
    if task.chained:
        stamp.update(inputs=task.inputs, cache_key=task.cache_key)
    outputs = outcome.data.get("outputs", {}).values()
    result: dict[str, Any] = {
        "kind": outcome.kind.value, "data": {**outcome.data, **stamp},
        "items": job.sink.drain(), "sent": job.sent, "pushed": job.last_push is not None,
        # Small JSON outputs, so that the jobs reading them need not open the store.
        "small": {artifact: known[artifact] for artifact in outputs if artifact in known}}
    if job.last_push is not None:
        result["no_link"] = no_link_reason(route)
    return result


def outcome_of(job: str, returned: dict[str, Any]) -> TaskEvent:
    """The terminal event in a result of ``run_job``."""
    return TaskEvent(job, TaskEventKind(returned["kind"]), returned["data"])
