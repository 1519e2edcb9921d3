"""What the engine knows of a job and of a finished execution: :class:`JobRecord` and
:class:`ExecutionResult`."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from forge_ops.schema import Job, JobState, JobStatus


@dataclass(frozen=True)
class JobRecord:
    """Where a job stands (execution document ``jobs`` entry, plus run details)."""

    job: str
    name: str
    operation: str
    status: JobStatus = JobStatus.QUEUED
    started: str | None = None
    finished: str | None = None
    error: str | None = None
    traceback: str | None = None
    cache_key: str | None = None
    cached_from: str | None = None
    outputs: dict[str, str] = field(default_factory=dict)
    #: The artifact hashes the job read, by input port (an Output job publishes ``data``).
    inputs: dict[str, str] = field(default_factory=dict)
    attempts: int = 0

    @property
    def duration(self) -> float | None:
        """Seconds from start to finish, if both are known."""
        if not (self.started and self.finished):
            return None
        start = dt.datetime.fromisoformat(self.started)
        return (dt.datetime.fromisoformat(self.finished) - start).total_seconds()

    def state(self) -> JobState:
        """The fields the execution document and the HTTP records share with this record."""
        return JobState(status=self.status.value, started=self.started, finished=self.finished,
                        error=self.error, cache_key=self.cache_key,
                        cached_from=self.cached_from, outputs=dict(self.outputs))

    @classmethod
    def from_job(cls, job_id: str, name: str, job: Job) -> JobRecord:
        """The record of an execution document's job entry (what it does not keep, such as
        the inputs read and the attempts, stays empty)."""
        return cls(job=job_id, name=name, operation=job["operation"],
                   status=JobStatus(job["status"]), started=job["started"],
                   finished=job["finished"], error=job["error"], cache_key=job["cache_key"],
                   cached_from=job["cached_from"], outputs=dict(job["outputs"]))


_RECORD_FIELDS = frozenset(JobRecord.__dataclass_fields__)


def replaced(record: JobRecord, changes: dict[str, Any]) -> JobRecord:
    """``dataclasses.replace`` without its per-call field introspection (a record changes a
    few times per job, and a pipeline of tiny jobs has many)."""
    if not changes.keys() <= _RECORD_FIELDS:
        raise TypeError(f"JobRecord has no field {sorted(changes.keys() - _RECORD_FIELDS)}")
    new = object.__new__(JobRecord)
    new.__dict__.update(record.__dict__)
    new.__dict__.update(changes)
    return new


@dataclass(frozen=True)
class ExecutionResult:
    """The final record of an execution (what ``forge run --json`` prints)."""

    execution: str
    status: JobStatus
    jobs: dict[str, JobRecord]
    started: str
    finished: str
    tasks_launched: int
    executor: str

    def outputs(self) -> dict[str, dict[str, str]]:
        """``{job: {port: artifact hash}}`` of every job that has outputs."""
        return {job: dict(r.outputs) for job, r in self.jobs.items() if r.outputs}

    def to_plain(self) -> dict[str, Any]:
        return {
            "execution": self.execution,
            "status": self.status.value,
            "executor": self.executor,
            "started": self.started,
            "finished": self.finished,
            "tasks_launched": self.tasks_launched,
            "jobs": {
                job: {
                    "name": r.name,
                    "status": r.status.value,
                    "duration": r.duration,
                    "cached_from": r.cached_from,
                    "cache_key": r.cache_key,
                    "outputs": dict(r.outputs),
                    "inputs": dict(r.inputs),
                    "error": r.error,
                    "attempts": r.attempts,
                }
                for job, r in self.jobs.items()
            },
        }
