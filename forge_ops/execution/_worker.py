"""The inside of a task, shared by every executor: load inputs, run the operation, store outputs.

Feedback is gathered in a FeedbackBuffer (the job's FeedbackSink) and drained by the executor's
transport every ~0.1 s, so a tight loop that prints or plots costs the engine one message per
interval, not one per call.
"""

from __future__ import annotations

import ctypes
import json
import os
import sys
import threading
import traceback
from collections.abc import Sequence
from dataclasses import replace
from functools import lru_cache
from typing import Any

from forge_ops.runtime._sink import storable_text

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

    def drain(self) -> list[tuple[Any, ...]]:
        with self._lock:
            items, self._items = self._items, []
        return items


@lru_cache(maxsize=8)
def open_store(location: str) -> Any:
    """The artifact store at ``location``, opened once per worker process."""
    from forge_ops.artifacts import ArtifactStore

    return ArtifactStore(location)


def _provenance(task: TaskSpec) -> Any:
    from forge_ops.artifacts import Provenance

    return Provenance(commit=task.commit, execution=task.execution, job=task.job_id)


#: glibc ``mallopt`` parameters (malloc.h) and both thresholds' initial value.
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_GLIBC_INITIAL_THRESHOLD = 128 * 1024


@lru_cache(maxsize=1)
def _libc() -> Any:
    """glibc, or None elsewhere (musl, macOS): it alone has these malloc controls."""
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return None
    return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None


def keep_freed_memory() -> None:
    """Let a fresh job process reuse the memory it frees (glibc only; elsewhere nothing).

    A new process starts with glibc's thresholds cold: blocks of a few MB freed by one training
    iteration go back to the OS at once and the next iteration faults them in again (a local
    job trained ~15% slower than the same loop in a long-lived process). A job process is
    short-lived, so keeping its freed memory until it exits costs nothing lasting.
    """
    libc = _libc()
    if libc is not None:
        libc.mallopt(_M_TRIM_THRESHOLD, 1 << 30)
        libc.mallopt(_M_MMAP_THRESHOLD, 32 << 20)  # glibc's largest; bigger blocks still mapped


#: Whether this long-lived worker keeps freed memory for its jobs (``hold_freed_memory``).
_keeping = False


def hold_freed_memory(keep: bool) -> None:
    """Before a job: keep freed memory while CPU jobs run (a local job's own process, or a
    long-lived Ray worker, which ``release_freed_memory`` empties after each job).

    glibc's own thresholds grow with use, yet a Ray worker training on the CPU still went
    through phases of giving back and faulting in the blocks each iteration frees (ad-hoc
    probe, the same loop in a Ray task: 4.3–5.1 s in most runs, 6.5 s in a run with 1.4 M page
    faults instead of 0.2 M; with this, 4.25–4.46 s over eight). GPU jobs get glibc's initial
    thresholds back (see ``_local._child_main`` for why they go without).
    """
    global _keeping
    if keep == _keeping:
        return
    if keep:
        keep_freed_memory()
    else:
        libc = _libc()
        if libc is not None:
            libc.mallopt(_M_TRIM_THRESHOLD, _GLIBC_INITIAL_THRESHOLD)
            libc.mallopt(_M_MMAP_THRESHOLD, _GLIBC_INITIAL_THRESHOLD)
            libc.malloc_trim(0)
    _keeping = keep


def release_freed_memory() -> None:
    """After a job that kept freed memory: give it back, so an idle worker does not hold it
    (about 10 ms after a training job, 20 µs when there is nothing to give)."""
    if _keeping:
        libc = _libc()
        if libc is not None:
            libc.malloc_trim(0)


def limit_threads(num_cpus: float) -> None:
    """Use as many intra-op threads as CPUs the job asked for (what Ray does for its tasks)."""
    threads = str(max(1, int(num_cpus)))
    for variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        if os.environ.get(variable) != threads:
            os.environ[variable] = threads
    torch = sys.modules.get("torch")
    if torch is not None and torch.get_num_threads() != int(threads):
        torch.set_num_threads(int(threads))


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
    from forge_ops.runtime import (
        ReferenceContext,
        execute_operation,
        resolve_references,
    )

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
    outputs = execute_operation(task.job.code, task.job.attributes, references, inputs, sink,
                                name=task.job.name, load_artifact=store.get)
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
    # The engine records who produced the outputs and the cache entry, many jobs' at once.
    return stored


class _StoreFailed(Exception):
    pass


def missing_output(port: str, src_port: str, upstream: str, produced: Any) -> str:
    """Why an input cannot be read: its upstream job has no such output."""
    return (f"input {port!r} reads output {src_port!r} of {upstream}, which produced only "
            f"{sorted(produced)}; reconnect the edge")


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
            return task, TaskEvent(job, TaskEventKind.FAILED, {
                "error": missing_output(port, chained.port, chained.name, produced),
                "traceback": "", "inputs": inputs})
        inputs[port] = produced[chained.port]
    from ._cache import CacheIndex, cache_key

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
    from forge_ops.runtime import OperationFailed, OperationInterrupted, UnresolvedReference

    job = task.job_id
    try:
        outputs = run_task(task, sink, known)
    except OperationInterrupted as exc:
        if sink.cancel_requested(wait=CANCEL_NOTICE_SECONDS):
            return TaskEvent(job, TaskEventKind.CANCELLED)
        # Nobody asked: the operation raised KeyboardInterrupt itself.
        return TaskEvent(job, TaskEventKind.FAILED,
                         {"error": exc.message, "traceback": exc.traceback})
    except (JobCancelled, KeyboardInterrupt):
        return TaskEvent(job, TaskEventKind.CANCELLED)
    except OperationFailed as exc:
        return TaskEvent(job, TaskEventKind.FAILED,
                         {"error": exc.message, "traceback": exc.traceback})
    except (UnresolvedReference, _StoreFailed) as exc:
        return TaskEvent(job, TaskEventKind.FAILED, {"error": str(exc), "traceback": ""})
    except Exception as exc:
        # Not the user's code (it is wrapped in OperationFailed): the full trace helps us.
        return TaskEvent(job, TaskEventKind.FAILED, {
            "error": f"{type(exc).__name__}: {exc}",
            "traceback": traceback.format_exc().rstrip("\n"),
        })
    return TaskEvent(job, TaskEventKind.SUCCEEDED, {"outputs": outputs})
