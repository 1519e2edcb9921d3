"""The inside of a task, shared by every executor: load inputs, run the operation, store outputs.

Feedback is gathered in a FeedbackBuffer (the job's FeedbackSink) and drained by the executor's
transport every ~0.1 s, so a tight loop that prints or plots costs the engine one message per
interval, not one per call.
"""

from __future__ import annotations

import json
import threading
import traceback
from collections.abc import Sequence
from dataclasses import replace
from functools import lru_cache
from typing import Any

from forge_ops.artifacts import ArtifactStore, Provenance
from forge_ops.runtime import (
    OperationFailed,
    OperationInterrupted,
    ReferenceContext,
    UnresolvedReference,
    execute_operation,
    resolve_references,
    storable_text,
)

from ._cache import CacheIndex, cache_key
from ._checkpoints import StoreCheckpoints
from ._store_access import store_failure
from ._task import TaskEvent, TaskEventKind, TaskSpec

FLUSH_SECONDS = 0.1


class JobCancelled(BaseException):
    """Raised inside a job that is being cancelled (a BaseException: ``except Exception`` in
    user code does not swallow it)."""

    #: How forge_ops.runtime, which cannot import this module, tells it from the user's own
    #: BaseExceptions.
    cancels_job = True


@lru_cache(maxsize=1024)
def _storable_name(name: str) -> str:
    """A graph, line or image name as storable text (names repeat with every point)."""
    return storable_text(name)


#: How long a job's KeyboardInterrupt waits for word of a cancel before it counts as the
#: user's own (a cancel's word comes within milliseconds; see FeedbackBuffer.cancel_requested).
CANCEL_NOTICE_SECONDS = 0.5


class FeedbackBuffer:
    """The job's FeedbackSink: thread-safe, images stored as artifacts right away."""

    def __init__(self, task: TaskSpec, cancelled: threading.Event) -> None:
        self._task = task
        self._cancelled = cancelled
        self._lock = threading.Lock()
        self._items: list[tuple[Any, ...]] = []

    def _check(self) -> None:
        if self._cancelled.is_set():
            raise JobCancelled

    # Names come from user code and go into a document: they are made storable here. Console
    # lines already are (LineWriter, which every captured line passes).
    def console(self, stream: str, text: str) -> None:
        self._check()
        with self._lock:
            self._items.append(("console", stream, text))

    def graph_point(self, graph: str, line: str, x: float, y: float) -> None:
        self._check()
        graph, line = _storable_name(graph), _storable_name(line)
        with self._lock:
            self._items.append(("graph", graph, line, float(x), float(y)))

    def image(self, name: str, array: Any) -> None:
        self._check()
        stored = open_store(self._task.store).put(array, _provenance(self._task))
        with self._lock:
            self._items.append(("image", _storable_name(name), stored.hash))

    def cancel_requested(self, wait: float = 0.0) -> bool:
        """Whether the executor asked this job to stop (waiting up to ``wait`` s for word of
        it: on Ray the cancel's KeyboardInterrupt can land before the monitor has seen it)."""
        return self._cancelled.wait(wait) if wait > 0 else self._cancelled.is_set()

    def extend(self, items: list[tuple[Any, ...]]) -> None:
        """Add what the job reported in another process (its sandbox) to the next drain."""
        if items:
            with self._lock:
                self._items.extend(items)

    def drain(self) -> list[tuple[Any, ...]]:
        with self._lock:
            items, self._items = self._items, []
        return items


@lru_cache(maxsize=8)
def open_store(location: str) -> ArtifactStore:
    """The artifact store at ``location``, opened once per worker process."""
    return ArtifactStore(location)


def _provenance(task: TaskSpec) -> Provenance:
    return Provenance(commit=task.commit, execution=task.execution, job=task.job_id)


#: Small JSON results travel with a Ray task's result as text (see ``run_task``'s ``known``).
SMALL_JSON_CHARS = 1024


def run_task(task: TaskSpec, sink: FeedbackBuffer, known: dict[str, str] | None = None
             ) -> dict[str, str]:
    """Run the job's operation and store its outputs; returns ``{port: artifact hash}``.

    ``known`` maps artifact hashes to the JSON text of small JSON artifacts: inputs found there
    are not read from the store, and small JSON outputs are added (so an executor can hand them
    to the jobs that read them). Raises the runtime's OperationFailed / UnresolvedReference for
    user-facing failures.
    """
    store = open_store(task.store)
    inputs = {port: json.loads(known[artifact]) if known and artifact in known
              else store.get(artifact) for port, artifact in task.inputs.items()}
    context = ReferenceContext(
        architectures=task.architectures,
        layers=task.layers,
        artifacts=task.artifacts,
        load_artifact=store.get,
        seed=task.job.seed,
    )
    references = resolve_references(task.job.code, task.job.references, context)
    checkpoints = StoreCheckpoints(store, task)
    outputs = execute_operation(task.job.code, task.job.attributes, references, inputs, sink,
                                name=task.job.name, load_artifact=store.get,
                                checkpoints=checkpoints)
    stored: dict[str, str] = {}
    for port, value in outputs.items():
        try:
            result = store.put(value)
        except ValueError as exc:
            raise _StoreFailed(f"output {port!r} of {task.job.name} cannot be stored: {exc}"
                               ) from exc
        stored[port] = result.hash
        if known is not None and result.kind == "json":
            # A JSON artifact round-trips through this text unchanged (else it is an object).
            text = json.dumps(value, sort_keys=True)
            if len(text) <= SMALL_JSON_CHARS:
                known[result.hash] = text
    if checkpoints.used:
        checkpoints.clear()
    # The engine records who produced the outputs and the cache entry, many jobs' at once.
    return stored


class _StoreFailed(Exception):
    pass


def missing_output(port: str, src_port: str, upstream: str, produced: Any) -> str:
    """Why an input cannot be read: its upstream job has no such output."""
    return (f"input {port!r} reads output {src_port!r} of {upstream}, which produced only "
            f"{sorted(produced)}; reconnect the edge")


def failed(job: str, error: str, traceback: str = "", **data: Any) -> TaskEvent:
    """The end of a job that failed: ``error`` is one line, ``traceback`` the user's frames
    (empty where the failure is not the user's code's); ``data`` adds to the event's data."""
    return TaskEvent(job, TaskEventKind.FAILED, {"error": error, "traceback": traceback, **data})


def skipped(job: str, upstream: str) -> TaskEvent:
    """The end of a chained job that never ran because ``upstream`` (a name) did not succeed."""
    return TaskEvent(job, TaskEventKind.CANCELLED, {
        "skipped": f"not run: upstream job {upstream} did not succeed"})


def resolve_chained(task: TaskSpec, upstream: Sequence[TaskEvent]
                    ) -> tuple[TaskSpec, TaskEvent | None]:
    """Complete a chained task from its upstream jobs' outcomes (in ``chained_upstream``
    order): fill in the inputs and the cache key. Returns the task to run, or the event that
    ends it without running: skipped (an upstream job did not succeed), failed (a missing
    output) or a cache hit."""
    if not task.chained:
        return task, None
    job = task.job_id
    by_job = dict(zip(task.chained_upstream, upstream, strict=True))
    inputs = dict(task.inputs)
    for port, chained in sorted(task.chained.items()):
        outcome = by_job[chained.upstream]
        if outcome.kind is not TaskEventKind.SUCCEEDED:
            return task, skipped(job, chained.name)
        produced = outcome.data.get("outputs", {})
        if chained.port not in produced:
            return task, failed(job, missing_output(port, chained.port, chained.name, produced),
                                inputs=inputs)
        inputs[port] = produced[chained.port]
    key = cache_key(task.job, inputs, task.runtime or None)
    if task.cache_lookup:
        entry = CacheIndex(open_store(task.store)).lookup(key)
        if entry is not None:
            return task, TaskEvent(job, TaskEventKind.SUCCEEDED, {
                "outputs": dict(entry.outputs), "cached_from": entry.execution,
                "inputs": inputs, "cache_key": key})
    return replace(task, inputs=inputs, cache_key=key), None


def task_outcome(task: TaskSpec, sink: FeedbackBuffer, known: dict[str, str] | None = None
                 ) -> TaskEvent:
    """Run the task and turn whatever happens into its terminal event (``known``: see
    ``run_task``)."""
    job = task.job_id
    try:
        outputs = run_task(task, sink, known)
    except OperationInterrupted as exc:
        if sink.cancel_requested(wait=CANCEL_NOTICE_SECONDS):
            return TaskEvent(job, TaskEventKind.CANCELLED)
        # Nobody asked: the operation raised KeyboardInterrupt itself.
        return failed(job, exc.message, exc.traceback)
    except (JobCancelled, KeyboardInterrupt):
        return TaskEvent(job, TaskEventKind.CANCELLED)
    except OperationFailed as exc:
        return failed(job, exc.message, exc.traceback)
    except (UnresolvedReference, _StoreFailed) as exc:
        return failed(job, str(exc))
    except Exception as exc:
        reason = store_failure(exc, task.store)
        if reason is not None:  # one line, not botocore's traceback
            return failed(job, reason)
        # Not the user's code (it is wrapped in OperationFailed): the full trace helps us.
        return failed(job, f"{type(exc).__name__}: {exc}",
                      traceback.format_exc().rstrip("\n"))
    return TaskEvent(job, TaskEventKind.SUCCEEDED, {"outputs": outputs})
