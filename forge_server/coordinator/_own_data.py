"""What belongs to a project: the artifacts the server's records give it, the execution ids
it claims.

A project's ``artifacts`` map and its nodes' attributes are document content, which any writer
may point at another project's hashes; the server decides by its own records
(:class:`ProjectRecords`) before anything is planned.
"""

from __future__ import annotations

from forge_ops.schema import Project, new_id
from forge_server.history import HistoryStore
from forge_server.relay.rooms import RoomManager, execution_room

from ._errors import CoordinatorError
from ._planning import Prepared, named_hashes, prepare
from ._project_records import ProjectRecords


def own_artifacts(records: ProjectRecords, project: str, content: Project) -> Project:
    """``content`` with only the artifacts the project may read."""
    artifacts = content["artifacts"]
    own = {name: artifact for name, artifact in artifacts.items()
           if records.readable(project, str(artifact.get("hash")))}
    if len(own) == len(artifacts):
        return content
    mine = content.copy()
    mine["artifacts"] = own
    return mine


def prepare_own(records: ProjectRecords, project: str, content: Project,
                pipeline_id: str) -> Prepared:
    """Plan a pipeline with the project's own artifacts; refused when an attribute names an
    artifact the project may not read (LoadArtifact's ``content_hash``, for one)."""
    prepared = prepare(own_artifacts(records, project, content), pipeline_id)
    for job, attribute, digest in named_hashes(prepared.plan):
        if not records.readable(project, digest):
            raise CoordinatorError(
                f"node {job}: attribute {attribute!r} names artifact {digest[:12]}…, which "
                f"no execution of {project} produced; use a hash that `forge artifacts "
                f"{project}` or `forge run --json` shows for this project")
    return prepared


async def new_execution_id(rooms: RoomManager, history: HistoryStore, records: ProjectRecords,
                           project: str) -> str:
    """A new execution id for ``project``, claimed in the records so that it is unique across
    the server (``new_id`` until one is free)."""
    for _ in range(1000):
        candidate = new_id()
        if rooms.store.exists(execution_room(project, candidate)) or (
                await history.run(history.tag, project, f"run/{candidate}")) is not None:
            continue  # a room opened under that URL, or a tag a user made: not reused
        if await records.run(records.claim_execution, candidate, project):
            return candidate
    raise RuntimeError("no free execution id after 1000 tries: the id source repeats itself")
