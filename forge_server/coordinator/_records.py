"""An execution's record for the API (what ``forge run --json`` prints), read from its document."""

from __future__ import annotations

import datetime as dt
from typing import Any

from forge_ops.execution import ExecutionResult, JobRecord
from forge_ops.schema import ExecutionDoc, JobStatus


def _duration(started: str | None, finished: str | None) -> float | None:
    if not (started and finished):
        return None
    try:
        start = dt.datetime.fromisoformat(started)
        return round((dt.datetime.fromisoformat(finished) - start).total_seconds(), 3)
    except ValueError:
        return None


def execution_record(project: str, execution_id: str, doc: ExecutionDoc) -> dict[str, Any]:
    """``{execution, project, pipeline, status, jobs: {id: {name, status, duration, …}}, …}``."""
    plain = doc.to_plain()
    meta = plain["meta"]
    snapshot = meta["pipeline"]
    names = {job_id: spec.get("name") for job_id, spec in (snapshot.get("jobs") or {}).items()}
    order = list(snapshot.get("order") or names)
    jobs: dict[str, Any] = {}
    for job_id in sorted(plain["jobs"], key=lambda j: order.index(j) if j in order else len(order)):
        job = plain["jobs"][job_id]
        jobs[job_id] = {
            "name": names.get(job_id) or job["node"],
            "node": job["node"],
            "operation": job["operation"],
            "status": job["status"],
            "started": job["started"],
            "finished": job["finished"],
            "duration": _duration(job["started"], job["finished"]),
            "cached_from": job["cached_from"],
            "cache_key": job["cache_key"],
            "outputs": dict(job["outputs"]),
            "error": job["error"],
            "console_lines": len(plain["console"].get(job_id, [])),
        }
    return {
        "execution": execution_id,
        "project": project,
        "branch": snapshot.get("branch"),
        "pipeline": snapshot.get("pipeline"),
        "pipeline_name": snapshot.get("name"),
        "rerun_of": snapshot.get("rerun_of"),
        "by": snapshot.get("by"),
        "commit": meta["commit"],
        "status": meta["status"],
        "executor": meta["executor"],
        "started": meta["started"],
        "finished": meta["finished"],
        "duration": _duration(meta["started"], meta["finished"]),
        "jobs": jobs,
        "artifacts": _published(snapshot, jobs),
    }


def _published(snapshot: dict[str, Any], jobs: dict[str, Any]) -> dict[str, str]:
    """``{artifact name: hash}`` of the values that reached this execution's Output jobs."""
    published: dict[str, str] = {}
    specs = snapshot.get("jobs") or {}
    for job_id in snapshot.get("publishes") or []:
        job, spec = jobs.get(job_id), specs.get(job_id) or {}
        wire = (spec.get("inputs") or {}).get("data")
        if job is None or job["status"] not in ("succeeded", "cached") or not wire:
            continue
        source = jobs.get(wire[0])
        artifact = source["outputs"].get(wire[1]) if source is not None else None
        if artifact is not None:
            published[str((spec.get("attributes") or {}).get("name", "output"))] = artifact
    return published


def previous_result(execution_id: str, doc: ExecutionDoc) -> ExecutionResult:
    """The engine's view of a finished execution, rebuilt from its document (for restarts)."""
    plain = doc.to_plain()
    snapshot = plain["meta"]["pipeline"]
    names = {job_id: spec.get("name", job_id) for job_id, spec in
             (snapshot.get("jobs") or {}).items()}
    records = {
        job_id: JobRecord(
            job=job_id,
            name=str(names.get(job_id, job_id)),
            operation=job["operation"],
            status=JobStatus(job["status"]),
            started=job["started"],
            finished=job["finished"],
            error=job["error"],
            cache_key=job["cache_key"],
            cached_from=job["cached_from"],
            outputs=dict(job["outputs"]),
        )
        for job_id, job in plain["jobs"].items()
    }
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
