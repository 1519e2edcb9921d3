"""Reading executions beyond the one on screen: a whole execution document through a short-lived
link, and the job of an earlier run that a cached job's result came from."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from forge_ops.schema import FINISHED_STATUSES, Execution, ExecutionDoc
from forge_tui.app._compare import RunDetails, flatten_metrics
from forge_tui.app.api import ApiError, ForgeApi
from forge_tui.app.widgets.job_output import Borrowed, elapsed_seconds

__all__ = [
    "borrowed_output",
    "load_any_execution",
    "load_execution",
    "published_values",
    "read_details",
    "source_job",
]

_LOAD_TIMEOUT_S = 10.0
_VALUES: dict[str, Any] = {}
"""Published JSON values by artifact hash: content-addressed, so never stale."""
_VALUES_KEPT = 4096


async def load_execution(backend: Any, project: str, execution_id: str) -> Execution:
    """An execution document's content, read through a short-lived link to its room."""
    link = backend.link(project, f"executions/{execution_id}")
    await link.start()
    try:
        client = getattr(link, "client", None)
        if client is not None:
            await client.synced(timeout=_LOAD_TIMEOUT_S)
        else:
            for _ in range(int(_LOAD_TIMEOUT_S / 0.05)):
                if ExecutionDoc(link.doc).jobs:
                    break
                await asyncio.sleep(0.05)
        return ExecutionDoc(link.doc).to_plain()
    finally:
        await link.stop()


async def load_any_execution(
    backend: Any, api: ForgeApi | None, project: str, execution_id: str
) -> Execution:
    """Like :func:`load_execution`, for a run that may belong to another project than
    ``project`` (the cache is shared: a result can come from anywhere the user may read)."""
    if api is not None:
        try:
            record = await api.execution_anywhere(execution_id)
            project = str(record.get("project") or project)
        except ApiError:
            pass  # not readable elsewhere: try the room in ``project``
    return await load_execution(backend, project, execution_id)


def borrowed_output(
    execution: Execution,
    execution_id: str,
    job_id: str,
    sources: dict[str, Execution | None],
) -> tuple[Borrowed | None, list[str]]:
    """Where the console, plots and images of a cached job are: the job that computed its
    result, in an earlier execution, followed through caches of caches; ``sources`` holds the
    executions read so far (None: being read). Also the executions still to read."""
    current, job, origin = execution, job_id, execution_id
    for _ in range(4):
        entry = current["jobs"].get(job)
        source_id = entry.get("cached_from") if entry is not None else None
        if entry is None or entry["status"] != "cached" or not source_id:
            break
        if source_id in (origin, execution_id):
            break
        if source_id not in sources:
            return None, [source_id]
        source = sources[source_id]
        found = source_job(source, current, job) if source is not None else None
        if source is None or found is None:
            return None, []
        current, job, origin = source, found, source_id
    if origin == execution_id:
        return None, []
    return Borrowed(origin, current, job), []


async def published_values(
    api: ForgeApi, execution_id: str, artifacts: Mapping[str, str], kinds: Mapping[str, str]
) -> dict[str, Any]:
    """The JSON values an execution published (artifact name → value), read from the server
    once per hash. ``kinds``: the kind each name has in the project (a model or a tensor is
    not asked for: the server would load it only to say that it is no metric)."""
    values: dict[str, Any] = {}
    for name, digest in sorted(artifacts.items()):
        if kinds.get(name, "json") != "json":
            continue
        if digest not in _VALUES:
            try:
                answer = await api.execution_artifact(execution_id, digest)
            except ApiError:
                continue  # unreadable now: no metric from it, asked again next time
            summary = answer.get("summary") or {}
            if len(_VALUES) >= _VALUES_KEPT:
                _VALUES.pop(next(iter(_VALUES)))
            _VALUES[digest] = summary.get("value") if summary.get("kind") == "json" else None
        if _VALUES[digest] is not None:
            values[name] = _VALUES[digest]
    return values


async def read_details(
    backend: Any,
    api: ForgeApi | None,
    project: str,
    execution_id: str,
    *,
    kinds: Mapping[str, str],
    document: bool = False,
) -> RunDetails:
    """Duration and published metrics of a run (from the server's record, cheap), and its
    document when ``document`` is asked for or when it published no metric (its plots then
    give one) or when there is no server to ask."""
    details = RunDetails(execution_id)
    if api is not None:
        record = await api.execution(execution_id)
        details.duration = record.get("duration")
        details.finished = record.get("status") in FINISHED_STATUSES
        values = await published_values(api, execution_id, record.get("artifacts") or {}, kinds)
        details.metrics = flatten_metrics(values)
    if api is None or document or not details.metrics:
        plain = await load_execution(backend, project, execution_id)
        details.execution = plain
        if api is None:
            meta = plain["meta"]
            details.finished = meta["status"] in FINISHED_STATUSES
            if details.finished:
                details.duration = elapsed_seconds(meta["started"], meta["finished"])
    return details


def _name(execution: Execution, job_id: str) -> str | None:
    spec = (execution["meta"]["pipeline"].get("jobs") or {}).get(job_id) or {}
    name = spec.get("name")
    return str(name) if name else None


def source_job(source: Execution, execution: Execution, job_id: str) -> str | None:
    """The job of ``source`` whose result job ``job_id`` of ``execution`` reused: the one with
    the same cache key (the same computation, even from another pipeline), else the same job
    id (the same pipeline node), else the same name; None when ``source`` has no such job."""
    job = execution["jobs"].get(job_id)
    if job is None:
        return None
    key = job.get("cache_key")
    if key:
        for candidate, other in sorted(source["jobs"].items()):
            if other.get("cache_key") == key:
                return candidate
    if job_id in source["jobs"]:
        return job_id
    name = _name(execution, job_id)
    for candidate in sorted(source["jobs"]):
        if name is not None and _name(source, candidate) == name:
            return candidate
    return None
