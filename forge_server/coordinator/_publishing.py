"""Output operations publish the value at their ``data`` input as a named project artifact:
which values an execution publishes, and recording them in the project."""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING

from forge_ops.schema import ExecutionSnapshot, JobState, JobStatus, ProjectDoc
from forge_server.relay.rooms import RoomManager

if TYPE_CHECKING:
    from forge_ops.artifacts import ArtifactStore

_DONE = (JobStatus.SUCCEEDED.value, JobStatus.CACHED.value)


def published_artifacts(snapshot: ExecutionSnapshot, jobs: Mapping[str, JobState],
                        only: Collection[str] | None = None) -> dict[str, str]:
    """``{artifact name: hash}`` of the values that reached the execution's Output jobs that
    succeeded (or were cached); ``only``: of these Output jobs alone (those a restart ran)."""
    # The snapshot is read as plain JSON (the reader does not check its inside): ask with .get.
    published: dict[str, str] = {}
    specs = snapshot.get("jobs") or {}
    for job_id in snapshot.get("publishes") or []:
        if only is not None and job_id not in only:
            continue
        job, spec = jobs.get(job_id), specs.get(job_id)
        wire = (spec.get("inputs") or {}).get("data") if spec else None
        if job is None or spec is None or job["status"] not in _DONE or not wire:
            continue
        source = jobs.get(wire[0])
        artifact = source["outputs"].get(wire[1]) if source is not None else None
        if artifact is not None:
            published[str((spec.get("attributes") or {}).get("name", "output"))] = artifact
    return published


async def publish(rooms: RoomManager, store: ArtifactStore, project_room: str,
                  published: Mapping[str, str], *, execution: str, by: str | None) -> None:
    """Record ``{name: hash}`` in the project's ``artifacts``, produced by ``execution``."""
    if not published:
        return
    infos = {h: await asyncio.to_thread(store.info, h) for h in published.values()}
    async with rooms.hold(project_room) as room:
        with room.edit(by) as doc:
            project = ProjectDoc(doc)
            for name, artifact in published.items():
                info = infos[artifact]
                project.record_artifact(
                    name, artifact, info.kind, shape=info.shape, dtype=info.dtype,
                    nbytes=info.bytes, produced_by=execution,
                )
        await room.written()
