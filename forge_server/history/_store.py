"""SQLite tables of version history (prefixed ``history_``, in the server's ``forge.db``).

- ``history_commits``: one row per commit — the full-state snapshot (a Yjs update) *and* its
  plain content as JSON, so reading any commit never replays history;
- ``history_branches``: branch name → head commit;
- ``history_tags``: tag name → commit.
"""

from __future__ import annotations

import hashlib
import heapq
import json
import re
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from forge_ops.schema import Project
from forge_server.store_thread import ThreadedDatabase

from ._errors import Conflict, HistoryError, NotFound, nearest

_SCHEMA = """
CREATE TABLE IF NOT EXISTS history_commits (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    project TEXT NOT NULL,
    branch TEXT NOT NULL,
    parents TEXT NOT NULL,
    authors TEXT NOT NULL,
    message TEXT NOT NULL,
    created REAL NOT NULL,
    state BLOB NOT NULL,
    content TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS history_commits_project ON history_commits (project, seq);
CREATE TABLE IF NOT EXISTS history_branches (
    project TEXT NOT NULL,
    name TEXT NOT NULL,
    head TEXT,
    created REAL NOT NULL,
    created_from TEXT,
    PRIMARY KEY (project, name)
);
CREATE TABLE IF NOT EXISTS history_tags (
    project TEXT NOT NULL,
    name TEXT NOT NULL,
    commit_id TEXT NOT NULL,
    created REAL NOT NULL,
    by TEXT,
    PRIMARY KEY (project, name)
);
"""

P = ParamSpec("P")
T = TypeVar("T")

_TAG_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]{0,199}")
_HEX = re.compile(r"[0-9a-f]{4,64}")


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class Commit:
    id: str
    project: str
    branch: str
    parents: tuple[str, ...]
    authors: tuple[str, ...]
    message: str
    created: float
    seq: int

    @property
    def short(self) -> str:
        return self.id[:10]

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "short": self.short,
            "branch": self.branch,
            "parents": list(self.parents),
            "authors": list(self.authors),
            "message": self.message,
            "created": _iso(self.created),
        }


@dataclass(frozen=True)
class Branch:
    name: str
    head: str | None
    created: float
    created_from: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "head": self.head,
            "created": _iso(self.created),
            "from": self.created_from,
        }


@dataclass(frozen=True)
class Tag:
    name: str
    commit: str
    created: float
    by: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "commit": self.commit,
            "created": _iso(self.created),
            "by": self.by,
        }


def commit_id(
    parents: tuple[str, ...], authors: tuple[str, ...], message: str, created: float, state: bytes
) -> str:
    """Content hash of a commit: its header (canonical JSON) and its snapshot."""
    header = json.dumps(
        {"parents": parents, "authors": authors, "message": message, "created": created},
        sort_keys=True,
    ).encode()
    digest = hashlib.sha256(header + b"\0" + state)
    return digest.hexdigest()[:40]


class HistoryStore(ThreadedDatabase):
    """Commits, branches and tags of every project, in one SQLite file (WAL).

    The methods block; code on the relay's event loop calls them through :meth:`run`, which
    runs them on the store's own thread. Every method may be called from any thread (the
    connection is used under a lock).
    """

    def __init__(self, path: Path) -> None:
        super().__init__(path, _SCHEMA, "forge-history")

    def _one(self, sql: str, args: tuple[Any, ...] = ()) -> Any:
        with self._lock:
            return self._conn.execute(sql, args).fetchone()

    def _all(self, sql: str, args: tuple[Any, ...] = ()) -> list[Any]:
        with self._lock:
            return self._conn.execute(sql, args).fetchall()

    # ----- commits ------------------------------------------------------------------------

    def add_commit(
        self,
        project: str,
        branch: str,
        *,
        parents: tuple[str, ...],
        authors: tuple[str, ...],
        message: str,
        state: bytes,
        content: dict[str, Any],
        created: float | None = None,
        move_head: bool = True,
    ) -> Commit:
        """Record a commit and move the branch head to it (one transaction); without
        ``move_head`` the commit stays off the branch (a sweep trial's settings: reachable by
        its tag, not in the branch's log)."""
        created = time.time() if created is None else created
        cid = commit_id(parents, authors, message, created, state)
        row = (
            cid,
            project,
            branch,
            json.dumps(parents),
            json.dumps(authors),
            message,
            created,
            state,
            json.dumps(content, ensure_ascii=False, separators=(",", ":")),
        )
        with self._lock:
            conn = self._conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                cur = conn.execute(
                    "INSERT INTO history_commits (id, project, branch, parents, authors, "
                    "message, created, state, content) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    row,
                )
                if move_head:
                    conn.execute(
                        "INSERT INTO history_branches (project, name, head, created, "
                        "created_from) VALUES (?, ?, ?, ?, NULL) ON CONFLICT(project, name) "
                        "DO UPDATE SET head = ?",
                        (project, branch, cid, created, cid),
                    )
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        return Commit(
            cid, project, branch, parents, authors, message, created, int(cur.lastrowid or 0)
        )

    def get(self, project: str, cid: str) -> Commit | None:
        row = self._one(
            "SELECT id, project, branch, parents, authors, message, created, seq "
            "FROM history_commits WHERE id = ? AND project = ?",
            (cid, project),
        )
        return _commit(row) if row else None

    def state(self, cid: str) -> bytes:
        """The commit's full-state snapshot (a Yjs update)."""
        row = self._one("SELECT state FROM history_commits WHERE id = ?", (cid,))
        if row is None:
            raise NotFound(f"unknown commit {cid!r}")
        return bytes(row[0])

    def content(self, cid: str) -> Project:
        """The commit's content as plain data — one row read, no replay (what the project
        reader returned when the commit was made)."""
        row = self._one("SELECT content FROM history_commits WHERE id = ?", (cid,))
        if row is None:
            raise NotFound(f"unknown commit {cid!r}")
        result: Project = json.loads(row[0])
        return result

    def count(self, project: str) -> int:
        row = self._one("SELECT COUNT(*) FROM history_commits WHERE project = ?", (project,))
        return int(row[0])

    def ancestors(self, project: str, head: str) -> Iterator[Commit]:
        """``head`` and every commit reachable from it, newest first (by commit order)."""
        first = self.get(project, head)
        if first is None:
            return
        heap: list[tuple[int, str]] = [(-first.seq, first.id)]
        seen = {first.id}
        cache = {first.id: first}
        while heap:
            _, cid = heapq.heappop(heap)
            commit = cache.pop(cid, None) or self.get(project, cid)
            if commit is None:
                continue
            yield commit
            for parent_id in commit.parents:
                if parent_id in seen:
                    continue
                seen.add(parent_id)
                parent = self.get(project, parent_id)
                if parent is not None:
                    cache[parent_id] = parent
                    heapq.heappush(heap, (-parent.seq, parent_id))

    def is_ancestor(self, project: str, ancestor: str, of: str) -> bool:
        return any(c.id == ancestor for c in self.ancestors(project, of))

    # ----- branches -----------------------------------------------------------------------

    def branch(self, project: str, name: str) -> Branch | None:
        row = self._one(
            "SELECT name, head, created, created_from FROM history_branches "
            "WHERE project = ? AND name = ?",
            (project, name),
        )
        return Branch(row[0], row[1], row[2], row[3]) if row else None

    def branches(self, project: str) -> list[Branch]:
        rows = self._all(
            "SELECT name, head, created, created_from FROM history_branches WHERE project = ? "
            "ORDER BY name",
            (project,),
        )
        return [Branch(r[0], r[1], r[2], r[3]) for r in rows]

    def add_branch(self, project: str, name: str, head: str | None) -> Branch:
        created = time.time()
        try:
            self._all(
                "INSERT INTO history_branches (project, name, head, created, created_from) "
                "VALUES (?, ?, ?, ?, ?)",
                (project, name, head, created, head),
            )
        except sqlite3.IntegrityError:
            raise Conflict(f"branch {name!r} already exists; choose another name") from None
        return Branch(name, head, created, head)

    def head(self, project: str, branch: str) -> Commit | None:
        record = self.branch(project, branch)
        if record is None or record.head is None:
            return None
        return self.get(project, record.head)

    def head_and_content(
        self, project: str, branch: str
    ) -> tuple[Commit | None, Project | None]:
        """The branch's head commit and its content (None, None before the first commit)."""
        head = self.head(project, branch)
        return head, (self.content(head.id) if head is not None else None)

    # ----- tags ---------------------------------------------------------------------------

    def tags(self, project: str, commit: str | None = None) -> list[Tag]:
        query = "SELECT name, commit_id, created, by FROM history_tags WHERE project = ?"
        args: tuple[str, ...] = (project,)
        if commit is not None:
            query += " AND commit_id = ?"
            args += (commit,)
        rows = self._all(query + " ORDER BY name", args)
        return [Tag(r[0], r[1], r[2], r[3]) for r in rows]

    def tag(self, project: str, name: str) -> Tag | None:
        row = self._one(
            "SELECT name, commit_id, created, by FROM history_tags WHERE project = ? AND name = ?",
            (project, name),
        )
        return Tag(row[0], row[1], row[2], row[3]) if row else None

    def add_tag(self, project: str, name: str, cid: str, by: str | None) -> Tag:
        """Name commit ``cid``; a name already taken is refused (same commit: no-op)."""
        if not _TAG_NAME.fullmatch(name) or ".." in name or name.endswith("/"):
            raise HistoryError(
                f"invalid tag name {name!r}: use letters, digits, '.', '_', '-' and '/' "
                "(starting with a letter or digit, at most 200 characters)"
            )
        with self._lock:  # no other thread's tag between the check and the insert
            existing = self.tag(project, name)
            if existing is not None:
                if existing.commit == cid:
                    return existing
                raise Conflict(
                    f"tag {name!r} already names commit {existing.commit[:10]}; "
                    "choose another name"
                )
            created = time.time()
            self._all(
                "INSERT INTO history_tags (project, name, commit_id, created, by) "
                "VALUES (?, ?, ?, ?, ?)",
                (project, name, cid, created, by),
            )
        return Tag(name, cid, created, by)

    # ----- references ---------------------------------------------------------------------

    def resolve(self, project: str, ref: str) -> Commit:
        """A commit from its id, id prefix (4+ hex digits), branch name or tag name."""
        if not ref:
            raise HistoryError("empty commit reference; give a commit id, branch or tag")
        exact = self.get(project, ref)
        if exact is not None:
            return exact
        branch = self.branch(project, ref)
        if branch is not None:
            if branch.head is None:
                raise NotFound(f"branch {ref!r} of project {project!r} has no commits yet")
            found = self.get(project, branch.head)
            if found is not None:
                return found
        tag = self.tag(project, ref)
        if tag is not None:
            found = self.get(project, tag.commit)
            if found is not None:
                return found
        if _HEX.fullmatch(ref):
            pattern = ref.replace("_", "") + "%"
            rows = self._all(
                "SELECT id, project, branch, parents, authors, message, created, seq "
                "FROM history_commits WHERE project = ? AND id LIKE ? "
                "LIMIT 5",
                (project, pattern),
            )
            if len(rows) == 1:
                return _commit(rows[0])
            if len(rows) > 1:
                options = ", ".join(r[0][:12] for r in rows)
                raise HistoryError(
                    f"commit prefix {ref!r} is ambiguous ({options}…); give more digits"
                )
        names = [b.name for b in self.branches(project)] + [t.name for t in self.tags(project)]
        hint = nearest(
            ref,
            names,
            f"see `forge log {project}`, `forge branches {project}` or `forge tags {project}`",
        )
        raise NotFound(f"unknown commit, branch or tag {ref!r} in project {project!r}{hint}")


def _commit(row: tuple[Any, ...]) -> Commit:
    return Commit(
        id=row[0],
        project=row[1],
        branch=row[2],
        parents=tuple(json.loads(row[3])),
        authors=tuple(json.loads(row[4])),
        message=row[5],
        created=float(row[6]),
        seq=int(row[7]),
    )
