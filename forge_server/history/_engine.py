"""The version-control engine: automatic commits, branches, merge, tags, revert.

It listens to every persisted update of the project rooms (``/sync/{project}/{branch}``). When
an edit burst settles (``debounce_s`` without edits) — or at the latest ``max_interval_s`` after
the first uncommitted edit while edits continue — it snapshots the room and commits, with a
message computed from the semantic diff against the branch head. Nothing is committed when the
content did not change. Execution rooms are not versioned.

The store's SQLite work runs on its own thread (:meth:`HistoryStore.run`), never on the relay's
event loop; the rooms are read and changed on the loop.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field, replace
from itertools import islice
from typing import Any

from forge_ops.operations import describe_interface_changes
from forge_ops.schema import Project, ProjectDoc, commit_message, diff_projects
from forge_ops.schema.diff import Change, Target
from forge_server.relay.rooms import Room, RoomManager, project_room, validate_room_name

from ._errors import Conflict, HistoryError, NotFound, nearest
from ._store import Branch, Commit, HistoryStore, Tag

MAIN = "main"


@dataclass(frozen=True)
class HistoryConfig:
    debounce_s: float = 3.0
    """Commit once a branch has had no edit for this long."""
    max_interval_s: float = 30.0
    """While edits continue, commit at least this often."""

    def __post_init__(self) -> None:
        if self.debounce_s <= 0 or self.max_interval_s <= 0:
            raise ValueError("history debounce_s and max_interval_s must be positive")


@dataclass
class _Pending:
    """Uncommitted edits of one branch room."""

    first: float
    last: float
    authors: set[str] = field(default_factory=set)


class History:
    """Version history of every project served by one relay."""

    def __init__(
        self,
        rooms: RoomManager,
        store: HistoryStore,
        config: HistoryConfig | None = None,
        *,
        log: logging.Logger | None = None,
    ) -> None:
        self.rooms = rooms
        self.store = store
        self.config = config or HistoryConfig()
        self.log = log or logging.getLogger(__name__)
        self._pending: dict[str, _Pending] = {}
        self._timers: dict[str, asyncio.Task[None]] = {}
        self._unsubscribe: Any = None
        self._locks: dict[str, asyncio.Lock] = {}
        self._stopping = False

    # ----- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        self._stopping = False
        self._unsubscribe = self.rooms.subscribe(self._on_update)

    async def stop(self) -> None:
        """Commit whatever is pending (graceful shutdown), then stop listening."""
        self._stopping = True
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        timers = list(self._timers.values())
        for task in timers:
            task.cancel()
        await asyncio.gather(*timers, return_exceptions=True)
        for name in list(self._pending):
            project, branch = name.split("/", 1)
            try:
                await self.commit(project, branch)
            except Exception:
                self.log.exception("final commit of %s failed", name)

    async def __aenter__(self) -> History:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ----- automatic commits --------------------------------------------------------------

    def _on_update(self, room: str, update: bytes, author: str | None) -> None:
        if "/executions/" in room:
            return
        now = time.monotonic()
        pending = self._pending.get(room)
        if pending is None:
            pending = self._pending[room] = _Pending(first=now, last=now)
        pending.last = now
        if author:
            pending.authors.add(author)
        if room not in self._timers:
            self._timers[room] = asyncio.get_running_loop().create_task(self._commit_later(room))

    async def _commit_later(self, room: str) -> None:
        try:
            while True:
                pending = self._pending.get(room)
                if pending is None:
                    return  # committed meanwhile by an explicit command
                due = min(
                    pending.last + self.config.debounce_s,
                    pending.first + self.config.max_interval_s,
                )
                delay = due - time.monotonic()
                if delay <= 0:
                    break
                await asyncio.sleep(delay)
            project, branch = room.split("/", 1)
            await self.commit(project, branch, automatic=True)
        except asyncio.CancelledError:
            raise
        except Exception:
            self.log.exception("automatic commit of %s failed; retrying after a pause", room)
            pending = self._pending.get(room)
            if pending is not None:  # retry one debounce later, not in a tight loop
                pending.first = pending.last = time.monotonic()
        finally:
            if self._timers.get(room) is asyncio.current_task():
                del self._timers[room]
            if room in self._pending and room not in self._timers and not self._stopping:
                # Edits arrived during the commit: schedule the next one.
                self._timers[room] = asyncio.get_running_loop().create_task(
                    self._commit_later(room)
                )

    # ----- commits ------------------------------------------------------------------------

    async def commit(
        self,
        project: str,
        branch: str = MAIN,
        *,
        message: str | None = None,
        author: str | None = None,
        force: bool = False,
        automatic: bool = False,
    ) -> Commit | None:
        """Commit the branch's current state now; None when nothing changed (unless forced).
        An ``automatic`` (debounced) commit is skipped when the only changes are the server's
        bookkeeping of runs, so that a run adds one commit and its tag, not one per status."""
        name = project_room(project, branch)
        async with self._lock(name), self.rooms.hold(name) as room:
            return await self._commit_room(
                room, project, branch, message=message, author=author, force=force,
                automatic=automatic,
            )

    async def _commit_room(
        self,
        room: Room,
        project: str,
        branch: str,
        *,
        message: str | None = None,
        author: str | None = None,
        extra_parent: str | None = None,
        force: bool = False,
        automatic: bool = False,
    ) -> Commit | None:
        # Synchronous from snapshot to bookkeeping: no update can slip in between (edits made
        # while the store works start the next pending commit).
        state = room.doc.get_update()
        content = ProjectDoc(room.doc).to_plain()
        pending = self._pending.pop(room.name, None)
        try:
            head, head_content = await self.store.run(
                self.store.head_and_content, project, branch)
        except BaseException:
            # Nothing was committed: the edits stay pending (with their authors), so the
            # debounce retries them as it did when this read could not fail halfway.
            self._keep_pending(room.name, pending)
            raise
        if extra_parent is None and not force and head_content == content:
            return None
        if head is None and extra_parent is None and not force and _is_empty(content):
            return None
        authors = set(pending.authors if pending else ())
        if author:
            authors.add(author)
        changes = name_interface_changes(diff_projects(head_content, content), head_content,
                                         content)
        edits = [c for c in changes if c.target not in RUN_BOOKKEEPING]
        if automatic and not edits and extra_parent is None:
            return None  # recorded with the next commit; the run's own commit has its tag
        parents = tuple(p for p in (head.id if head else None, extra_parent) if p)
        commit = await self.store.run(
            self.store.add_commit,
            project,
            branch,
            parents=parents,
            authors=tuple(sorted(authors)),
            message=message or commit_message(edits or changes),
            state=state,
            content=dict(content),
        )
        self.log.info("committed %s/%s %s: %s", project, branch, commit.short, commit.message)
        return commit

    def _keep_pending(self, room: str, pending: _Pending | None) -> None:
        """Put back edits taken for a commit that did not happen, merged with any since."""
        if pending is None:
            return
        later = self._pending.get(room)
        if later is not None:
            pending.authors |= later.authors
            pending.last = later.last
        self._pending[room] = pending

    async def commit_and_tag_run(
        self, project: str, branch: str, execution_id: str, *, by: str | None = None
    ) -> str:
        """Commit the exact state about to run and tag it ``run/{execution_id}``; the commit id."""
        # Only the run's bookkeeping changed since the head (earlier runs' statuses): the head
        # is what runs, so it gets the tag and the history no commit.
        commit = await self.commit(project, branch, author=by, automatic=True)
        if commit is None:
            commit = await self.store.run(self.store.head, project, branch)
        if commit is None:  # an empty project that was never committed
            commit = await self.commit(project, branch, author=by, force=True)
        assert commit is not None
        await self.store.run(self.store.add_tag, project, f"run/{execution_id}", commit.id, by)
        return commit.id

    # ----- reading ------------------------------------------------------------------------

    async def log_page(self, project: str, branch: str = MAIN, limit: int = 20) -> list[Commit]:
        """The newest ``limit`` commits reachable from the branch head."""
        head = await self._head_or_error(project, branch)
        if head is None:
            return []

        def newest() -> list[Commit]:
            return list(islice(self.store.ancestors(project, head.id), limit))

        return await self.store.run(newest)

    async def show(self, project: str, ref: str) -> tuple[Commit, list[Change]]:
        """A commit and its semantic changes against its first parent."""

        def read() -> tuple[Commit, Project | None, Project]:
            commit = self.store.resolve(project, ref)
            before = self.store.content(commit.parents[0]) if commit.parents else None
            return commit, before, self.store.content(commit.id)

        commit, before, after = await self.store.run(read)
        return commit, name_interface_changes(diff_projects(before, after), before, after)

    async def diff(self, project: str, a: str, b: str) -> tuple[Commit, Commit, list[Change]]:
        first, first_content = await self.content(project, a)
        second, second_content = await self.content(project, b)
        changes = diff_projects(first_content, second_content)
        return first, second, name_interface_changes(changes, first_content, second_content)

    async def content(self, project: str, ref: str) -> tuple[Commit, Project]:
        def read() -> tuple[Commit, Project]:
            commit = self.store.resolve(project, ref)
            return commit, self.store.content(commit.id)

        return await self.store.run(read)

    async def branches(self, project: str) -> list[Branch]:
        """Recorded branches plus branch rooms that have no commit yet."""
        known = {b.name: b for b in await self.store.run(self.store.branches, project)}
        for room in self.rooms.project_rooms(project):
            branch = room.split("/", 1)[1]
            if "/" not in branch and branch not in known:
                known[branch] = Branch(branch, None, 0.0, None)
        return sorted(known.values(), key=lambda b: b.name)

    async def tags(self, project: str, commit: str | None = None) -> list[Tag]:
        """The project's tags (those naming ``commit`` only, when given)."""
        return await self.store.run(self.store.tags, project, commit)

    # ----- branches, tags, merge, revert --------------------------------------------------

    async def create_branch(
        self, project: str, name: str, from_ref: str | None = None, *, by: str | None = None
    ) -> Branch:
        """A new branch room started from a commit's state (default: main's latest state)."""
        try:
            room_name = validate_room_name(f"{project}/{name}")
        except ValueError:
            raise HistoryError(
                f"invalid branch name {name!r}: use letters, digits, '.', '_' or '-', "
                "starting with a letter or digit"
            ) from None
        if name == "executions":
            raise HistoryError("'executions' is reserved; choose another branch name")
        recorded = await self.store.run(self.store.branch, project, name)
        if recorded is not None or room_name in self.rooms.project_rooms(project):
            raise Conflict(f"branch {name!r} already exists in project {project!r}")
        if from_ref is None:
            await self.commit(project, MAIN, author=by)
            base = await self.store.run(self.store.head, project, MAIN)
            if base is None:
                raise NotFound(f"project {project!r} has no commits yet; edit it before branching")
        else:
            base = await self.store.run(self.store.resolve, project, from_ref)
        branch = await self.store.run(self.store.add_branch, project, name, base.id)
        await self.rooms.create(room_name, await self.store.run(self.store.state, base.id))
        self.log.info("branch %s/%s created from %s", project, name, base.short)
        return branch

    async def tag(
        self, project: str, name: str, ref: str | None = None, *, by: str | None = None
    ) -> Tag:
        """Name a commit (default: main's latest state, committed first if needed)."""
        if ref is None:
            await self.commit(project, MAIN, author=by)
            target = await self.store.run(self.store.head, project, MAIN)
            if target is None:
                raise NotFound(f"project {project!r} has no commits yet; nothing to tag")
        else:
            target = await self.store.run(self.store.resolve, project, ref)
        return await self.store.run(self.store.add_tag, project, name, target.id, by)

    async def merge(
        self, project: str, source: str, into: str = MAIN, *, by: str | None = None
    ) -> Commit:
        """CRDT-merge branch ``source`` into ``into``; the merge commit has two parents."""
        if source == into:
            raise HistoryError(f"cannot merge branch {source!r} into itself; name another branch")
        for branch in (source, into):
            await self._head_or_error(project, branch)
        await self.commit(project, source, author=by)
        source_head = await self.store.run(self.store.head, project, source)
        if source_head is None:
            raise NotFound(f"branch {source!r} has no commits yet; nothing to merge")
        into_room = project_room(project, into)
        async with self._lock(into_room), self.rooms.hold(into_room) as room:
            # Commit into's own pending edits first, so the merge commit holds only the merge.
            await self._commit_room(room, project, into)
            await room.apply_update(await self.store.run(self.store.state, source_head.id), by)
            _, before_content = await self.store.run(self.store.head_and_content, project, into)
            content = ProjectDoc(room.doc).to_plain()
            summary = commit_message(diff_projects(before_content, content))
            message = f"Merged branch {source} into {into}"
            if summary != "No changes":
                message += f": {summary}"
            commit = await self._commit_room(
                room, project, into, message=message, author=by, extra_parent=source_head.id
            )
        assert commit is not None
        return commit

    async def revert(
        self, project: str, ref: str, branch: str = MAIN, *, by: str | None = None
    ) -> Commit:
        """Write commit ``ref``'s content to ``branch`` as a new commit (nothing rewritten)."""
        target, content = await self.content(project, ref)
        await self._head_or_error(project, branch)
        name = project_room(project, branch)
        async with self._lock(name), self.rooms.hold(name) as room:
            await self._commit_room(room, project, branch)  # keep pending edits in history
            with room.edit(by) as doc:
                ProjectDoc(doc).restore(content)
            await room.written()
            message = f"Reverted to {target.short} ({target.message})"
            commit = await self._commit_room(room, project, branch, message=message, author=by)
        if commit is None:
            head = await self.store.run(self.store.head, project, branch)
            raise Conflict(
                f"branch {branch!r} already has the content of {target.short}"
                + (f" (head {head.short})" if head else "")
                + "; nothing to revert"
            )
        return commit

    # ----- helpers ------------------------------------------------------------------------

    def _lock(self, room: str) -> asyncio.Lock:
        return self._locks.setdefault(room, asyncio.Lock())

    async def _head_or_error(self, project: str, branch: str) -> Commit | None:
        record = await self.store.run(self.store.branch, project, branch)
        if record is None:
            rooms = self.rooms.project_rooms(project)
            if f"{project}/{branch}" in rooms:
                return None
            names = [b.name for b in await self.branches(project)]
            hint = nearest(branch, names, f"see `forge branches {project}`")
            raise NotFound(f"unknown branch {branch!r} in project {project!r}{hint}")
        return await self.store.run(self.store.head, project, branch)


def _is_empty(content: dict[str, Any] | Any) -> bool:
    return not any(content.get(k) for k in content if k != "meta") and not content.get(
        "meta", {}
    ).get("name")


RUN_BOOKKEEPING = frozenset({Target.EXECUTION, Target.ARTIFACT})
"""What the server writes into a project when it runs: execution statuses, published artifacts."""


def name_interface_changes(
    changes: list[Change], before: Project | None, after: Project
) -> list[Change]:
    """Code edits of operations say how the interface changed ("Added input mask: Dataset to
    RandomFlips (code +3 −1 lines)"): what colleagues must rewire, not just a line count."""
    if before is None:
        return changes
    named = []
    for change in changes:
        path = change.path
        sentences: list[str] = []
        if change.target is Target.CODE and len(path) == 3 and path[0] == "operations":
            old, new = before["operations"].get(path[1]), after["operations"].get(path[1])
            if old and new:
                sentences = describe_interface_changes(old["code"], new["code"], change.scope[2])
        if sentences:
            lines = f"code +{change.lines_added} −{change.lines_removed} lines"
            named.append(replace(change, text=f"{'; '.join(sentences)} ({lines})"))
        else:
            named.append(change)
    return named
