"""The server's own records of what belongs to which project (SQLite tables prefixed
``coordinator_`` in the server's ``forge.db``).

Writers of a project can edit its documents, execution documents included, so document content
cannot say which data a project may read: a writer could put another project's artifact hash
into an execution's outputs or into the ``artifacts`` map. These tables can; only the server
writes them, from what it ran:

- ``coordinator_executions``: every execution id the server handed out and its project. The id
  is the primary key, so ids are unique across the server; an id-only route
  (``/api/executions/{id}``) finds exactly one project, and a room that a client opened under an
  execution's URL is not an execution.
- ``coordinator_artifacts``: which project may read which artifact, and why. A row is written
  when a job of one of the project's executions stored the artifact as an output or image
  (``produced``, ``image``), when one of its jobs was satisfied from the job cache (``cached``:
  the cache is shared by all projects, and a hit copies a record into the reading project,
  naming the reading execution, never the one that computed it), or when the artifact was
  imported into the project (``imported``).

The methods block (short indexed statements under a lock); code on the event loop runs writes
through :meth:`ProjectRecords.run`, on the records' own thread.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from forge_server.store_thread import ThreadedDatabase

P = ParamSpec("P")
T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS coordinator_executions (
    id TEXT PRIMARY KEY,
    project TEXT NOT NULL,
    created REAL NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS coordinator_artifacts (
    project TEXT NOT NULL,
    artifact TEXT NOT NULL,
    execution TEXT NOT NULL,
    job TEXT NOT NULL,
    how TEXT NOT NULL,
    commit_id TEXT,
    created TEXT NOT NULL,
    PRIMARY KEY (project, artifact, execution, job, how)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS coordinator_meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
"""
#: Written once the executions and artifacts stored before these tables existed are recorded.
BACKFILLED = "backfilled"
#: Ways a project comes to hold an artifact (``coordinator_artifacts.how``).
PRODUCED, CACHED, IMAGE, IMPORTED = "produced", "cached", "image", "imported"


@dataclass(frozen=True)
class ArtifactSource:
    """Why ``project`` may read ``artifact``: ``job`` of ``execution`` (at ``commit``) produced
    it, got it from the cache or showed it (``how``); an import has no execution or job."""

    project: str
    artifact: str
    how: str
    execution: str = ""
    job: str = ""
    commit: str | None = None
    created: str = ""

    def row(self) -> tuple[str, str, str, str, str, str | None, str]:
        return (self.project, self.artifact, self.execution, self.job, self.how, self.commit,
                self.created)


class ProjectRecords(ThreadedDatabase):
    """Executions and readable artifacts of every project, in ``path`` (the server's
    ``forge.db``, WAL). Every method may be called from any thread."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, _SCHEMA, "forge-records")

    def _all(self, sql: str, args: tuple[Any, ...] = ()) -> list[Any]:
        with self._lock:
            return self._conn.execute(sql, args).fetchall()

    # ----- executions ---------------------------------------------------------------------

    def claim_execution(self, execution: str, project: str) -> bool:
        """Record ``execution`` as ``project``'s; False (nothing changes) when the id is
        already handed out, to this project or another one."""
        with self._lock:
            cursor = self._conn.execute(
                "INSERT OR IGNORE INTO coordinator_executions VALUES (?, ?, ?)",
                (execution, project, time.time()))
            return cursor.rowcount == 1

    def project_of(self, execution: str) -> str | None:
        """The project an execution id belongs to, if the server handed it out."""
        rows = self._all("SELECT project FROM coordinator_executions WHERE id = ?", (execution,))
        return str(rows[0][0]) if rows else None

    # ----- artifacts ----------------------------------------------------------------------

    def add_sources(self, sources: Iterable[ArtifactSource]) -> None:
        """Record that projects may read artifacts (together; a known source changes nothing)."""
        rows = [source.row() for source in sources]
        if not rows:
            return
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                self._conn.executemany(
                    "INSERT OR IGNORE INTO coordinator_artifacts VALUES (?, ?, ?, ?, ?, ?, ?)",
                    rows)
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def readable(self, project: str, artifact: str) -> bool:
        """Whether ``project`` produced, cached, showed or imported ``artifact``."""
        return bool(self._all(
            "SELECT 1 FROM coordinator_artifacts WHERE project = ? AND artifact = ? LIMIT 1",
            (project, artifact)))

    def sources(self, project: str, artifact: str) -> list[dict[str, Any]]:
        """The project's records of an artifact, oldest first: ``{commit, execution, job,
        created, how}`` each (the shape of the artifact store's provenance, plus ``how``)."""
        rows = self._all(
            "SELECT commit_id, execution, job, created, how FROM coordinator_artifacts "
            "WHERE project = ? AND artifact = ? ORDER BY created, execution, job",
            (project, artifact))
        return [{"commit": commit, "execution": execution or None, "job": job or None,
                 "created": created, "how": how}
                for commit, execution, job, created, how in rows]

    def producing_execution(self, project: str, outputs: Collection[str]) -> str | None:
        """The earliest execution of ``project`` one of whose jobs produced, or got from the
        cache, all of ``outputs``, if there is one."""
        if not outputs:
            return None
        found: set[tuple[str, str]] | None = None
        for artifact in set(outputs):
            jobs = {(str(execution), str(job)) for execution, job in self._all(
                "SELECT execution, job FROM coordinator_artifacts "
                "WHERE project = ? AND artifact = ? AND how IN (?, ?)",
                (project, artifact, PRODUCED, CACHED))}
            found = jobs if found is None else found & jobs
            if not found:
                return None
        assert found is not None
        created = {}
        for execution in {execution for execution, _ in found}:
            rows = self._all("SELECT created FROM coordinator_executions WHERE id = ?",
                             (execution,))
            if rows:
                created[execution] = float(rows[0][0])
        return min(created, key=lambda execution: (created[execution], execution), default=None)

    # ----- bookkeeping --------------------------------------------------------------------

    def marked(self, key: str) -> bool:
        return bool(self._all("SELECT 1 FROM coordinator_meta WHERE key = ?", (key,)))

    def mark(self, key: str) -> None:
        self._all("INSERT OR REPLACE INTO coordinator_meta VALUES (?, ?)",
                  (key, str(time.time())))
