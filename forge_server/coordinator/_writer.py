"""Engine events → execution document writes, batched on the event loop.

The engine reports from its own thread; :meth:`ExecutionWriter.on_event` hands each event to the
event loop, where one task applies everything gathered since its last write in a single
transaction of the execution room (persisted and broadcast like a client's edit), then pauses for
the write interval. However fast a training loop prints or plots, the room gets at most about
``1 / interval`` writes per second. Before a batch is written, the artifacts it shows are
recorded as the project's (``sources``, see ``_sources``), so whoever sees an output in the
document can read it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import replace

from pycrdt import Map

from forge_ops.execution import Event, ExecutionStatusChanged, JobFeedback, JobStatusChanged
from forge_ops.schema import FINISHED_STATUSES, ExecutionDoc, JobStatus, ProjectDoc, SchemaError
from forge_server.relay.rooms import Room, RoomManager

from ._sources import ExecutionSources

_log = logging.getLogger(__name__)


class ExecutionWriter:
    """Writes one execution's events into its document and its summary in the project."""

    def __init__(
        self,
        rooms: RoomManager,
        execution_room: str,
        project_room: str,
        execution_id: str,
        *,
        author: str | None,
        interval: float,
        log: logging.Logger | None = None,
        sources: ExecutionSources | None = None,
    ) -> None:
        self.rooms = rooms
        self.sources = sources
        self.execution_room = execution_room
        self.project_room = project_room
        self.execution_id = execution_id
        self.author = author
        self.interval = interval
        self.log = log or _log
        self.writes = 0
        self._loop = asyncio.get_running_loop()
        self._queue: asyncio.Queue[Event | None] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        # The execution's final status is written last, by close(): whoever reads "finished"
        # then also finds what the coordinator records after the run (published artifacts).
        self._final: ExecutionStatusChanged | None = None

    def start(self) -> None:
        self._task = self._loop.create_task(self._run(), name=f"writer-{self.execution_id}")

    def on_event(self, event: Event) -> None:
        """The engine's callback (any thread): queue the event for the next write."""
        self._loop.call_soon_threadsafe(self._queue.put_nowait, event)

    def finish_as(self, status: JobStatus, time: str) -> None:
        """The final status to write if the engine never reported one (it failed itself)."""
        if self._final is None:
            self._final = ExecutionStatusChanged(self.execution_id, status, time)

    async def close(self) -> None:
        """Write whatever is queued and the final status, then stop."""
        if self._task is None:
            return
        self._queue.put_nowait(None)
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None

    async def _run(self) -> None:
        async with self.rooms.hold(self.execution_room) as room, self.rooms.hold(
            self.project_room
        ) as project:
            stop = False
            while not stop:
                batch = [await self._queue.get()]
                while not self._queue.empty():
                    batch.append(self._queue.get_nowait())
                stop = None in batch
                events: list[Event] = [e for e in batch if e is not None]
                if events and self.sources is not None:
                    events = await self._record_sources(events)
                if events or stop:
                    try:
                        self._apply(room, project, events, final=stop)
                    except (asyncio.CancelledError, KeyboardInterrupt, SystemExit):
                        raise
                    except BaseException:  # never lose the loop over one bad event (pycrdt's
                        # panics are BaseExceptions)
                        self.log.exception("execution %s: writing events failed",
                                           self.execution_id)
                    await room.written()
                if not stop:
                    await asyncio.sleep(self.interval)

    async def _record_sources(self, events: list[Event]) -> list[Event]:
        assert self.sources is not None
        try:
            return await self.sources.note(events)
        except Exception:  # the server's own database failed: write the run all the same
            self.log.exception("execution %s: recording its artifacts for the project failed; "
                               "they cannot be read until it runs again", self.execution_id)
            return [replace(e, cached_from=None) if isinstance(e, JobStatusChanged) else e
                    for e in events]

    def _apply(self, room: Room, project: Room, events: list[Event], *, final: bool) -> None:
        self.writes += 1
        summary: JobStatus | None = None
        with room.edit(self.author) as doc:
            execution = ExecutionDoc(doc)
            for event in events:
                if isinstance(event, JobStatusChanged):
                    _job_status(execution, event)
                elif isinstance(event, JobFeedback):
                    _feedback(execution, event)
                elif isinstance(event, ExecutionStatusChanged):
                    if event.status in FINISHED_STATUSES:
                        self._final = event  # written by close()
                    else:
                        execution.set_status(event.status)
                        execution.meta["finished"] = None
                        summary = event.status
            if final and self._final is not None:
                status = _settled_status(execution, self._final.status)
                execution.set_status(status)
                execution.meta["finished"] = self._final.time
                summary = status
        if summary is not None:
            with project.edit(self.author) as doc, contextlib.suppress(SchemaError):
                ProjectDoc(doc).set_execution_status(self.execution_id, summary)


def _job_status(execution: ExecutionDoc, event: JobStatusChanged) -> None:
    _new_attempt(execution, event)
    error = event.traceback or event.error
    execution.set_job_status(event.job, event.status, error=error)
    job = execution.jobs[event.job]
    assert isinstance(job, Map)
    # The engine's own times (milliseconds) rather than the moment of this write.
    if event.started is not None or event.status == JobStatus.QUEUED:
        job["started"] = event.started
    if event.finished is not None or event.status == JobStatus.QUEUED:
        job["finished"] = event.finished
    if event.status == JobStatus.QUEUED:
        job["outputs"] = Map()
    execution.set_job_fields(event.job, cache_key=event.cache_key, cached_from=event.cached_from)
    for port, artifact in event.outputs.items():
        execution.set_output(event.job, port, artifact)
    if event.status == JobStatus.RUNNING:
        job["attempt"] = event.attempt
    _keep_earlier_success(execution, event)


_KEPT = frozenset({JobStatus.SUCCEEDED, JobStatus.CACHED})


def _settled_status(execution: ExecutionDoc, status: JobStatus) -> JobStatus:
    """The execution's final status, said as what it now holds: a cancelled restart whose jobs
    all kept their earlier successful results is still a succeeded execution, with a note."""
    if status != JobStatus.CANCELLED:
        execution.meta["note"] = None
        return status
    jobs = {job_id: job for job_id, job in execution.jobs.items() if isinstance(job, Map)}
    kept = [job_id for job_id, job in jobs.items() if job.get("kept_from_attempt")]
    if not kept or any(job.get("status") not in _KEPT for job in jobs.values()):
        return status
    snapshot = execution.meta.get("pipeline")
    named = (snapshot.get("jobs") or {}) if isinstance(snapshot, dict) else {}
    names = ", ".join(sorted(str((named.get(j) or {}).get("name") or j) for j in kept))
    execution.meta["note"] = (f"the restart was cancelled; {names} kept the result of its "
                              "earlier attempt")
    return JobStatus.SUCCEEDED


def _new_attempt(execution: ExecutionDoc, event: JobStatusChanged) -> None:
    """Each attempt keeps what it showed: a restart (the job queued again after it ran) or a
    retry (the executor started the job again after its worker died) moves the previous
    attempt's state, outputs, console, plots and images to the job's earlier attempts, so the
    new one starts clean instead of drawing over the old curve."""
    job = execution.jobs.get(event.job)
    if not isinstance(job, Map):
        return
    if event.status == JobStatus.QUEUED and job.get("status") != JobStatus.QUEUED:
        execution.archive_attempt(event.job, "restart")
    elif event.status == JobStatus.RUNNING and event.attempt > int(job.get("attempt") or 0):
        execution.archive_attempt(event.job, "retry: the worker died")


def _keep_earlier_success(execution: ExecutionDoc, event: JobStatusChanged) -> None:
    """A restart that was cancelled leaves the job's earlier successful attempt as its result:
    cancelling a retraining must not throw away the model that was already there."""
    if event.status != JobStatus.CANCELLED:
        return
    earlier = execution.earlier_attempts(event.job)
    if earlier and earlier[-1].get("status") in (JobStatus.SUCCEEDED, JobStatus.CACHED):
        execution.restore_attempt(event.job, -1, "cancelled")


def _feedback(execution: ExecutionDoc, event: JobFeedback) -> None:
    execution.append_console(event.job, event.lines)
    if event.console_dropped:
        dropped = execution.console_dropped.get(event.job, 0)
        count = int(dropped) if isinstance(dropped, int | float) else 0
        execution.console_dropped[event.job] = count + event.console_dropped
    for graph, graph_lines in event.points.items():
        for line, points in graph_lines.items():
            execution.add_points(event.job, graph, line, points)
    for name, artifact in event.images.items():
        execution.set_image(event.job, name, artifact)


def both(first: Callable[[Event], None], second: Callable[[Event], None]
         ) -> Callable[[Event], None]:
    """One event callback that calls ``first`` (the writer), then ``second`` (an observer)."""
    def call(event: Event) -> None:
        first(event)
        second(event)

    return call
