"""Finding a project's rooms and an execution's document and tagged state, with errors that say
what exists instead."""

from __future__ import annotations

from forge_ops.schema import Execution, ExecutionDoc, Project
from forge_server.history import History
from forge_server.relay.rooms import RoomManager, execution_room, project_room

from ._errors import Conflict, CoordinatorError, NotFound
from ._project_records import ProjectRecords


class Lookup:
    """Room names and documents of one relay's projects and executions; ``records`` says
    which execution ids the server handed out to which project."""

    def __init__(self, rooms: RoomManager, history: History, records: ProjectRecords) -> None:
        self.rooms = rooms
        self.history = history
        self.records = records

    def branch_room(self, project: str, branch: str) -> str:
        """The room of a project's branch (404 when either does not exist)."""
        try:
            name = project_room(project, branch)
        except ValueError:
            which = "branch" if _valid_room(project, "main") else "project"
            raise CoordinatorError(
                f"invalid {which} name {shown(branch if which == 'branch' else project)}: "
                f"use letters, digits, '.', '_' or '-', starting with a letter or digit "
                f"(at most 100 characters)") from None
        rooms = self.rooms.project_rooms(project)
        if name not in rooms:
            if not rooms:
                raise NotFound(f"no project {project!r} on this server; create it first")
            branches = sorted(r.split("/", 1)[1] for r in rooms if "/executions/" not in r)
            raise NotFound(
                f"project {project!r} has no branch {branch!r}; branches: {', '.join(branches)}"
            )
        return name

    def exists(self, project: str, execution: str) -> bool:
        """Whether the server ran ``execution`` in ``project`` and its document is loaded or
        stored (False for an invalid id). A room that a client opened under an execution's URL
        is not one: only the server's records say which ids are whose."""
        try:
            name = execution_room(project, execution)
        except ValueError:
            return False  # no execution can have such an id
        if self.records.project_of(execution) != project:
            return False
        return self.rooms.loaded(name) is not None or self.rooms.store.exists(name)

    def execution_room(self, project: str, execution: str) -> str:
        """The room of an execution's document (404 when there is none)."""
        if not self.exists(project, execution):
            raise self.no_execution(project, execution)
        return execution_room(project, execution)

    def no_execution(self, project: str, execution: str) -> NotFound:
        return NotFound(
            f"no execution {shown(execution)} in project {shown(project)}; "
            f"list them with `forge executions {project if len(project) <= 40 else 'PROJECT'}`"
        )

    async def document(self, project: str, execution: str) -> Execution:
        """The execution document as plain data. A room that any client can open by its URL
        is not an execution until the coordinator has written one into it (404 until then)."""
        async with self.rooms.hold(self.execution_room(project, execution)) as room:
            document = ExecutionDoc(room.doc)
            if not is_execution(document):
                raise self.no_execution(project, execution)
            return document.to_plain()


    async def tagged(self, project: str, execution: str) -> tuple[str, Project]:
        """The commit an execution ran (its ``run/{id}`` tag) and that commit's content (read on
        the history store's thread, off the relay's loop)."""
        store = self.history.store
        tag = await store.run(store.tag, project, f"run/{execution}")
        if tag is None:
            raise Conflict(
                f"execution {execution} has no run/{execution} tag, so the state it ran cannot "
                "be restored; run the pipeline again instead"
            )
        return tag.commit, await store.run(store.content, tag.commit)


def shown(name: str, limit: int = 40) -> str:
    """A name from a request, quoted for an error message, cut short if it is long."""
    return repr(name if len(name) <= limit else name[:limit] + "…")


def _valid_room(project: str, branch: str) -> bool:
    try:
        project_room(project, branch)
    except ValueError:
        return False
    return True


def is_execution(document: ExecutionDoc) -> bool:
    """Whether a document holds an execution: the coordinator's ``init`` wrote its status (the
    plain reading fills in a default, so the stored field itself is asked)."""
    return document.meta.get("status") is not None
