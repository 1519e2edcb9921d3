"""Executions and artifacts stored before the server kept its own records of them.

Once, at the first start of a server that has no records yet, every stored execution room
``P/executions/X`` becomes execution X of project P when P holds the tag ``run/X`` (the server
tags every run it starts; when rooms of several projects share an id, the earliest tag wins, as
a copy can only be made after the original), and the outputs and images of its succeeded or
cached jobs become P's. That one step trusts the documents as they were before the upgrade; from
then on only what the server runs is recorded.
"""

from __future__ import annotations

import logging

from forge_ops.schema import ExecutionDoc, JobStatus, now_iso
from forge_server.history import History
from forge_server.relay.rooms import RoomManager

from ._lookup import is_execution
from ._project_records import (
    BACKFILLED,
    CACHED,
    IMAGE,
    PRODUCED,
    ArtifactSource,
    ProjectRecords,
)

_MARKER = "/executions/"


async def backfill(records: ProjectRecords, rooms: RoomManager, history: History,
                   log: logging.Logger) -> None:
    """Record the executions and artifacts stored before the records existed (once)."""
    if await records.run(records.marked, BACKFILLED):
        return
    claims: dict[str, list[str]] = {}
    for name in rooms.store.rooms():
        project, marker, execution = name.partition(_MARKER)
        if marker:
            claims.setdefault(execution, []).append(project)
    recorded = 0
    for execution, projects in sorted(claims.items()):
        owner = await _owner(history, execution, projects)
        if owner is None:
            log.warning("execution room(s) %s have no run/%s tag: not an execution the "
                        "server ran, left out", ", ".join(projects), execution)
            continue
        # Its artifacts first: a start cut short here does this execution again.
        await records.run(records.add_sources, await _sources(rooms, owner, execution))
        recorded += await records.run(records.claim_execution, execution, owner)
    await records.run(records.mark, BACKFILLED)
    if recorded:
        log.info("recorded %d execution(s) made before the server kept project records",
                 recorded)


async def _owner(history: History, execution: str, projects: list[str]) -> str | None:
    """Of the projects with a room for ``execution``, the one tagged ``run/{execution}``
    first."""
    store = history.store
    tagged = []
    for project in projects:
        tag = await store.run(store.tag, project, f"run/{execution}")
        if tag is not None:
            tagged.append((tag.created, project))
    return min(tagged)[1] if tagged else None


async def _sources(rooms: RoomManager, project: str, execution: str) -> list[ArtifactSource]:
    async with rooms.hold(f"{project}{_MARKER}{execution}") as room:
        document = ExecutionDoc(room.doc)
        if not is_execution(document):
            return []
        plain = document.to_plain()
    commit, created = plain["meta"]["commit"], plain["meta"]["finished"] or now_iso()
    sources: list[ArtifactSource] = []
    for job_id, job in plain["jobs"].items():
        if job["status"] in (JobStatus.SUCCEEDED.value, JobStatus.CACHED.value):
            how = CACHED if job["status"] == JobStatus.CACHED.value else PRODUCED
            sources.extend(ArtifactSource(project, digest, how, execution, job_id, commit,
                                          created) for digest in job["outputs"].values())
    for job_id, images in plain["images"].items():
        sources.extend(ArtifactSource(project, digest, IMAGE, execution, job_id, commit, created)
                       for digest in images.values())
    return sources
