"""An execution's record for the API (what ``forge run --json`` prints), read from its document,
and the engine's view of a finished execution (for restarts)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable
from typing import NotRequired, TypedDict

from forge_ops.execution import ExecutionResult, JobRecord
from forge_ops.schema import Execution, Job, JobStatus

from ._publishing import published_artifacts


class JobRecordJson(Job):
    """A job in the HTTP execution record: the document's job entry plus its display name,
    duration and console length."""

    name: str
    duration: float | None
    console_lines: int
    #: Earlier attempts (restarts, retries), oldest first: status, times, error, outputs and
    #: why each ended; their console and plots are in the execution document.
    attempts: list[dict[str, object]]


class ExecutionRecordJson(TypedDict):
    """The HTTP execution record (``GET /api/executions/{id}``)."""

    execution: str
    project: str
    branch: str | None
    pipeline: str | None
    pipeline_name: str | None
    rerun_of: str | None
    by: str | None
    commit: str | None
    status: str
    executor: str | None
    started: str | None
    finished: str | None
    duration: float | None
    jobs: dict[str, JobRecordJson]
    artifacts: dict[str, str]
    #: Added by the coordinator: tasks the engine launched (None once forgotten), whether
    #: the execution runs now.
    tasks_launched: NotRequired[int | None]
    running: NotRequired[bool]
    note: NotRequired[str | None]


def _duration(started: str | None, finished: str | None) -> float | None:
    if not (started and finished):
        return None
    try:
        start = dt.datetime.fromisoformat(started)
        return round((dt.datetime.fromisoformat(finished) - start).total_seconds(), 3)
    except ValueError:
        return None


def execution_record(project: str, execution_id: str, plain: Execution) -> ExecutionRecordJson:
    """``{execution, project, pipeline, status, jobs: {id: {name, status, duration, …}}, …}``
    of an execution document's plain content."""
    meta = plain["meta"]
    snapshot = meta["pipeline"]
    # The snapshot is read as plain JSON (the reader does not check its inside): ask with .get.
    names = {job_id: spec.get("name") for job_id, spec in (snapshot.get("jobs") or {}).items()}
    order = list(snapshot.get("order") or names)
    jobs: dict[str, JobRecordJson] = {}
    for job_id in sorted(plain["jobs"], key=lambda j: order.index(j) if j in order else len(order)):
        job = plain["jobs"][job_id]
        jobs[job_id] = JobRecordJson(
            name=names.get(job_id) or job["node"],
            node=job["node"],
            operation=job["operation"],
            status=job["status"],
            started=job["started"],
            finished=job["finished"],
            duration=_duration(job["started"], job["finished"]),
            cached_from=job["cached_from"],
            cache_key=job["cache_key"],
            outputs=dict(job["outputs"]),
            error=job["error"],
            console_lines=len(plain["console"].get(job_id, [])),
            attempts=[_attempt_summary(a) for a in plain.get("attempts", {}).get(job_id, [])],
            kept_from_attempt=job.get("kept_from_attempt"),
        )
    return ExecutionRecordJson(
        execution=execution_id,
        project=project,
        branch=snapshot.get("branch"),
        pipeline=snapshot.get("pipeline"),
        pipeline_name=snapshot.get("name"),
        rerun_of=snapshot.get("rerun_of"),
        by=snapshot.get("by"),
        commit=meta["commit"],
        status=meta["status"],
        executor=meta["executor"],
        started=meta["started"],
        finished=meta["finished"],
        duration=_duration(meta["started"], meta["finished"]),
        jobs=jobs,
        artifacts=published_artifacts(snapshot, plain["jobs"]),
        note=meta.get("note"),
    )


def _attempt_summary(attempt: dict[str, object]) -> dict[str, object]:
    keys = ("status", "started", "finished", "error", "cached_from", "outputs", "ended_by")
    summary = {key: attempt.get(key) for key in keys}
    started, finished = attempt.get("started"), attempt.get("finished")
    summary["duration"] = _duration(started if isinstance(started, str) else None,
                                    finished if isinstance(finished, str) else None)
    return summary


def previous_result(execution_id: str, plain: Execution,
                    readable: Callable[[str], bool] = lambda _: True) -> ExecutionResult:
    """The engine's view of a finished execution, rebuilt from its document (for restarts).

    A job with an output the project may not read (``readable(hash)`` is false: the document
    was edited to point at another project's artifact) counts as not succeeded, so a restart
    runs it again instead of handing that artifact to the jobs downstream."""
    specs = plain["meta"]["pipeline"].get("jobs") or {}
    records = {}
    for job_id, job in plain["jobs"].items():
        spec = specs.get(job_id)
        record = JobRecord.from_job(job_id, str(spec.get("name", job_id)) if spec else job_id,
                                    job)
        if not all(readable(digest) for digest in record.outputs.values()):
            record = dataclasses.replace(record, status=JobStatus.FAILED, outputs={},
                                         cached_from=None)
        records[job_id] = record
    meta = plain["meta"]
    return ExecutionResult(
        execution=execution_id,
        status=JobStatus(meta["status"]),
        jobs=records,
        started=meta["started"] or "",
        finished=meta["finished"] or "",
        tasks_launched=0,
        executor=meta["executor"] or "",
    )
