"""Typed view and editing helpers for an execution document."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, cast

from pycrdt import Array, Doc, Map

from . import _read as r
from ._ids import new_id, now_iso
from ._plain import check_json, plain_value
from ._read import Reader, SchemaError, SchemaWarning
from ._types import (
    FINISHED_STATUSES,
    Execution,
    ExecutionMeta,
    ExecutionSnapshot,
    Job,
    JobStatus,
)

#: What a job's state is made of, kept per attempt.
_ATTEMPT_STATE = ("status", "started", "finished", "error", "cache_key", "cached_from")

CONSOLE_CAP = 2000
"""Lines of console output kept per job; older lines are dropped and counted."""


class ExecutionDoc:
    """An execution document: run metadata, jobs and their console, graphs and images."""

    def __init__(self, doc: Doc | None = None, *, console_cap: int = CONSOLE_CAP) -> None:
        self.doc = doc if doc is not None else Doc()
        self.meta = self.doc.get("meta", type=Map)
        self.jobs = self.doc.get("jobs", type=Map)
        self.console = self.doc.get("console", type=Map)
        self.console_dropped = self.doc.get("console_dropped", type=Map)
        self.graphs = self.doc.get("graphs", type=Map)
        self.images = self.doc.get("images", type=Map)
        #: job id -> earlier attempts, oldest first: each a plain snapshot of what that attempt
        #: showed (state, outputs, console, graphs, images) and why it ended (``ended_by``).
        self.attempts = self.doc.get("attempts", type=Map)
        self.console_cap = console_cap
        self.warnings: list[SchemaWarning] = []

    def init(
        self,
        pipeline: ExecutionSnapshot,
        commit: str | None,
        executor: str | None,
        status: str = JobStatus.QUEUED,
    ) -> None:
        """Write ``meta``: the pipeline as it runs (plain snapshot with code), commit, executor."""
        snapshot = dict(pipeline)
        check_json(snapshot, "pipeline snapshot")
        with self.doc.transaction():
            self.meta["pipeline"] = snapshot
            self.meta["commit"] = commit
            self.meta["status"] = str(JobStatus(status))
            self.meta["executor"] = executor
            self.meta["started"] = None
            self.meta["finished"] = None

    def set_executor(self, executor: str) -> None:
        """The executor the execution runs on now (a restart may pick another)."""
        self.meta["executor"] = executor

    def set_status(self, status: str) -> None:
        """Set the execution's status; the first running/finished status stamps the time.

        A finished execution set running again (a restart) starts its clock again: ``started``
        is when the latest run of it began, so its duration is that run's."""
        status = JobStatus(status)
        with self.doc.transaction():
            if status == JobStatus.RUNNING and self.meta.get("finished"):
                self.meta["started"] = self.meta["finished"] = None
            self.meta["status"] = str(status)
            _stamp(self.meta, status)

    # ----- jobs ---------------------------------------------------------------------------

    def add_job(self, node: str, operation: str, *, job_id: str | None = None) -> str:
        """Add a queued job for pipeline node ``node``; returns its id."""
        job_id = job_id or new_id()
        self.jobs[job_id] = Map(
            {
                "node": node,
                "operation": operation,
                "status": str(JobStatus.QUEUED),
                "started": None,
                "finished": None,
                "error": None,
                "cache_key": None,
                "cached_from": None,
                "outputs": Map(),
            }
        )
        return job_id

    def set_job_status(self, job_id: str, status: str, *, error: str | None = None) -> None:
        """Set a job's status (stamping started/finished) and, for failures, its error."""
        status = JobStatus(status)
        job = self._job(job_id)
        with self.doc.transaction():
            job["status"] = str(status)
            if status == JobStatus.QUEUED:
                job["started"] = job["finished"] = job["error"] = None
            _stamp(job, status)
            if error is not None or status == JobStatus.FAILED:
                job["error"] = error

    def set_job_fields(self, job_id: str, **fields: str | None) -> None:
        """Set ``cache_key`` and/or ``cached_from`` of a job."""
        unknown = set(fields) - {"cache_key", "cached_from"}
        if unknown:
            raise SchemaError(f"unknown job field(s) {sorted(unknown)}; use cache_key, cached_from")
        job = self._job(job_id)
        with self.doc.transaction():
            for key, value in fields.items():
                job[key] = value

    def set_output(self, job_id: str, port: str, artifact_hash: str) -> None:
        job = self._job(job_id)
        outputs = job.get("outputs")
        if not isinstance(outputs, Map):
            job["outputs"] = outputs = Map()
        outputs[port] = artifact_hash

    def append_console(self, job_id: str, lines: Iterable[str]) -> None:
        """Append console lines; beyond the cap the oldest are dropped and counted."""
        new = [str(line) for line in lines]
        if not new:
            return
        with self.doc.transaction():
            console = self.console.get(job_id)
            if not isinstance(console, Array):
                self.console[job_id] = console = Array()
            console.extend(new)
            excess = len(console) - self.console_cap
            if excess > 0:
                del console[0:excess]
                dropped = self.console_dropped.get(job_id, 0)
                count = int(dropped) if isinstance(dropped, int | float) else 0
                self.console_dropped[job_id] = count + excess

    def add_points(
        self, job_id: str, graph: str, line: str, points: Iterable[tuple[float, float]]
    ) -> None:
        """Append (x, y) points to line ``line`` of graph ``graph`` of a job."""
        new = [[float(x), float(y)] for x, y in points]
        with self.doc.transaction():
            graphs = _child_map(self.graphs, job_id)
            lines = _child_map(graphs, graph)
            array = lines.get(line)
            if not isinstance(array, Array):
                lines[line] = array = Array()
            array.extend(new)

    def set_image(self, job_id: str, name: str, artifact_hash: str) -> None:
        with self.doc.transaction():
            _child_map(self.images, job_id)[name] = artifact_hash

    # ----- attempts -----------------------------------------------------------------------

    def archive_attempt(self, job_id: str, ended_by: str) -> int:
        """Move the job's current attempt (state, outputs, console, graphs, images) to its
        earlier attempts, leaving the job fresh for the next one; ``ended_by`` says why a new
        attempt starts ("restart", "retry: the worker died"). Returns the number of earlier
        attempts."""
        job = self._job(job_id)
        with self.doc.transaction():
            snapshot: dict[str, Any] = {key: plain_value(job.get(key)) for key in _ATTEMPT_STATE}
            snapshot["outputs"] = plain_value(job.get("outputs")) or {}
            snapshot["console"] = plain_value(self.console.get(job_id)) or []
            snapshot["graphs"] = plain_value(self.graphs.get(job_id)) or {}
            snapshot["images"] = plain_value(self.images.get(job_id)) or {}
            snapshot["ended_by"] = ended_by
            earlier = self.attempts.get(job_id)
            if not isinstance(earlier, Array):
                self.attempts[job_id] = earlier = Array()
            earlier.append(snapshot)
            for root in (self.console, self.graphs, self.images, self.console_dropped):
                if job_id in root:
                    del root[job_id]
            job["outputs"] = Map()
            job["attempt"] = 0  # the executor's retry count starts again with the next run
            if "kept_from_attempt" in job:
                del job["kept_from_attempt"]
            return len(earlier)

    def restore_attempt(self, job_id: str, index: int, ended_by: str) -> None:
        """Make earlier attempt ``index`` the job's result again (its state, outputs, console,
        graphs and images); the current attempt joins the earlier ones first."""
        earlier = self.attempts.get(job_id)
        if not isinstance(earlier, Array) or not -len(earlier) <= index < len(earlier):
            raise SchemaError(f"job {job_id!r} has no attempt {index}")
        kept = dict(earlier[index])
        position = index % len(earlier) + 1  # 1-based, as people count attempts
        job = self._job(job_id)
        with self.doc.transaction():
            self.archive_attempt(job_id, ended_by)
            for key in _ATTEMPT_STATE:
                job[key] = kept.get(key)
            job["outputs"] = Map(dict(kept.get("outputs") or {}))
            job["kept_from_attempt"] = position
            if kept.get("console"):
                self.console[job_id] = Array(list(kept["console"]))
            if kept.get("graphs"):
                self.graphs[job_id] = Map({
                    title: Map({line: Array([list(p) for p in points])
                                for line, points in lines.items()})
                    for title, lines in kept["graphs"].items()})
            if kept.get("images"):
                self.images[job_id] = Map(dict(kept["images"]))

    def earlier_attempts(self, job_id: str) -> list[dict[str, Any]]:
        """The job's earlier attempts, oldest first, as plain data."""
        earlier = self.attempts.get(job_id)
        return [dict(a) for a in earlier] if isinstance(earlier, Array) else []

    # ----- reading ------------------------------------------------------------------------

    def to_plain(self, *, content: bool = True) -> Execution:
        """Return the whole document as validated plain data; see :attr:`warnings`.

        ``content=False``: the run and its jobs only, without the consoles, graphs and images
        (for a reader that follows those as they grow, such as a live monitor)."""
        reader = Reader()
        with self.doc.transaction():
            meta_fields = dict(self.meta.items())
            try:
                meta = ExecutionMeta(
                    pipeline=cast(
                        ExecutionSnapshot, r.get(meta_fields, "pipeline", r.json_map, {})
                    ),
                    commit=r.get(meta_fields, "commit", r.opt_string, None),
                    status=r.get(meta_fields, "status", _status, JobStatus.QUEUED.value),
                    executor=r.get(meta_fields, "executor", r.opt_string, None),
                    started=r.get(meta_fields, "started", r.opt_string, None),
                    finished=r.get(meta_fields, "finished", r.opt_string, None),
                    note=r.get(meta_fields, "note", r.opt_string, None),
                )
            except r.Malformed as exc:
                reader.warn("meta", f"{exc}; metadata skipped")
                meta = ExecutionMeta(
                    pipeline={},
                    commit=None,
                    status="queued",
                    executor=None,
                    started=None,
                    finished=None,
                )
            jobs = reader.build(self.jobs, "jobs", _job)
            console: dict[str, list[str]] = {}
            for job_id, value in self.console.items() if content else ():
                lines = plain_value(value)
                if isinstance(lines, list) and all(isinstance(x, str) for x in lines):
                    console[job_id] = lines
                else:
                    reader.warn(f"console/{job_id}", "expected a list of lines; skipped")
            dropped: dict[str, int] = {}
            for job_id, value in self.console_dropped.items() if content else ():
                try:
                    dropped[job_id] = r.integer(value)
                except TypeError as exc:
                    reader.warn(f"console_dropped/{job_id}", f"{exc}; skipped")
            graphs = _read_graphs(reader, self.graphs) if content else {}
            attempts: dict[str, list[dict[str, Any]]] = {}
            for job_id, value in (self.attempts.items() if content else ()):
                earlier = plain_value(value)
                if isinstance(earlier, list) and all(isinstance(a, dict) for a in earlier):
                    attempts[job_id] = earlier
                else:
                    reader.warn(f"attempts/{job_id}", "expected a list of attempts; skipped")
            images: dict[str, dict[str, str]] = {}
            for job_id, value in self.images.items() if content else ():
                names = plain_value(value)
                if isinstance(names, dict) and all(isinstance(v, str) for v in names.values()):
                    images[job_id] = names
                else:
                    reader.warn(f"images/{job_id}", "expected a map of name to hash; skipped")
        self.warnings = reader.warnings
        reader.log("execution")
        return Execution(
            meta=meta,
            jobs=jobs,
            console=console,
            console_dropped=dropped,
            graphs=graphs,
            images=images,
            attempts=attempts,
        )

    @classmethod
    def from_plain(cls, plain: Mapping[str, Any], doc: Doc | None = None) -> ExecutionDoc:
        """Build an execution document from a plain snapshot (as :meth:`to_plain` returns)."""
        execution = cls(doc)
        with execution.doc.transaction():
            for key, value in plain.get("meta", {}).items():
                execution.meta[key] = value
            for job_id, job in plain.get("jobs", {}).items():
                fields = dict(job)
                fields["outputs"] = Map(dict(job.get("outputs", {})))
                execution.jobs[job_id] = Map(fields)
            for job_id, lines in plain.get("console", {}).items():
                execution.console[job_id] = Array(list(lines))
            for job_id, count in plain.get("console_dropped", {}).items():
                execution.console_dropped[job_id] = count
            for job_id, graphs in plain.get("graphs", {}).items():
                execution.graphs[job_id] = Map(
                    {
                        title: Map({line: Array([list(p) for p in pts]) for line, pts in g.items()})
                        for title, g in graphs.items()
                    }
                )
            for job_id, names in plain.get("images", {}).items():
                execution.images[job_id] = Map(dict(names))
            for job_id, earlier in plain.get("attempts", {}).items():
                execution.attempts[job_id] = Array([dict(a) for a in earlier])
        return execution

    def _job(self, job_id: str) -> Map:
        job = self.jobs.get(job_id)
        if not isinstance(job, Map):
            raise SchemaError(f"no job {job_id!r} in this execution")
        return job


def _stamp(entry: Map, status: JobStatus) -> None:
    if status == JobStatus.RUNNING and not entry.get("started"):
        entry["started"] = now_iso()
    if status in FINISHED_STATUSES:
        if not entry.get("started"):
            entry["started"] = now_iso()
        entry["finished"] = now_iso()


def _child_map(parent: Map, key: str) -> Map:
    child = parent.get(key)
    if not isinstance(child, Map):
        parent[key] = child = Map()
    return child


def _status(value: Any) -> str:
    status = r.string(value)
    if status not in JobStatus.__members__.values():
        raise TypeError(f"unknown status {status!r}")
    return status


def _job(f: dict[str, Any], path: str) -> Job:
    outputs = r.get(f, "outputs", r.json_map, {})
    if not all(isinstance(v, str) for v in outputs.values()):
        raise r.Malformed("outputs must map port names to artifact hashes")
    return Job(
        node=r.get(f, "node", r.string),
        operation=r.get(f, "operation", r.string),
        status=r.get(f, "status", _status),
        started=r.get(f, "started", r.opt_string, None),
        finished=r.get(f, "finished", r.opt_string, None),
        error=r.get(f, "error", r.opt_string, None),
        cache_key=r.get(f, "cache_key", r.opt_string, None),
        cached_from=r.get(f, "cached_from", r.opt_string, None),
        outputs=outputs,
        kept_from_attempt=r.get(f, "kept_from_attempt", r.opt_integer, None),
    )


def _read_graphs(reader: Reader, graphs: Map) -> dict[str, dict[str, dict[str, list[list[float]]]]]:
    out: dict[str, dict[str, dict[str, list[list[float]]]]] = {}
    for job_id, value in graphs.items():
        plain = plain_value(value)
        if not isinstance(plain, dict):
            reader.warn(f"graphs/{job_id}", "expected a map of graphs; skipped")
            continue
        job_graphs: dict[str, dict[str, list[list[float]]]] = {}
        for title, lines in plain.items():
            if not isinstance(lines, dict):
                reader.warn(f"graphs/{job_id}/{title}", "expected a map of lines; skipped")
                continue
            job_graphs[title] = {}
            for line, points in lines.items():
                if isinstance(points, list) and all(
                    isinstance(p, list)
                    and len(p) == 2
                    and all(isinstance(c, int | float) and not isinstance(c, bool) for c in p)
                    for p in points
                ):
                    job_graphs[title][line] = points
                else:
                    reader.warn(f"graphs/{job_id}/{title}/{line}", "malformed points; skipped")
        out[job_id] = job_graphs
    return out
