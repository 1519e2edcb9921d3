"""Small records about a local store's artifacts, in one SQLite file at its root.

Every job that runs leaves two records: who produced each of its outputs (provenance) and its
cache entry. As a file each, that is two new inodes per job, and on some filesystems creating a
file costs far more than a row in a database: on ext4 without a journal, each new inode is
checked against recently deleted ones, and after many deletions (a test run, a removed store) a
creation took 0.3–1 ms of kernel time on the development VM, against about 0.03 ms for a row
(probes). SQLite in WAL mode takes concurrent readers and serialized writers from many processes
on one machine (a local store serves one machine; see the README), survives a crash of any of
them, and never shows a half-written record. The engine writes a run's records in batches (see
forge_ops.execution._recording).

Object stores (fsspec URLs) keep one file per record: they have no file locks, and a write there
is one request either way.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from forge_ops import sqlite_db

from ._codec import ArtifactError

FILENAME = "index.sqlite"
#: How long a statement waits for other processes' write locks before giving up (seconds).
BUSY_TIMEOUT = 60.0
_FIRST_PAUSE = 0.00005
_LAST_PAUSE = 0.005
_T = TypeVar("_T")
_SCHEMA = """
CREATE TABLE IF NOT EXISTS provenance (
    artifact TEXT NOT NULL,
    producer TEXT NOT NULL,
    record TEXT NOT NULL,
    PRIMARY KEY (artifact, producer)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS cache (
    key TEXT PRIMARY KEY,
    entry TEXT NOT NULL
) WITHOUT ROWID;
"""


class RecordIndex:
    """Provenance records and cache entries of one local store (``root/index.sqlite``).

    One connection per process, shared by its threads under a lock (the statements are short);
    the file is created by the first write, so reading a store never changes it.
    """

    def __init__(self, root: str) -> None:
        self.path = os.path.join(root, FILENAME)
        self._lock = threading.Lock()
        self._connection: sqlite3.Connection | None = None
        self._pid = -1
        self._prepared = False

    def _connect(self, create: bool) -> sqlite3.Connection | None:
        if self._connection is not None:
            if self._pid == os.getpid():
                return self._connection
            # Inherited through fork: SQLite's documentation forbids using it, and closing it
            # here could disturb the parent's locks; it is kept unused instead.
            _INHERITED.append(self._connection)
            self._connection = None
        if not os.path.exists(self.path):
            if not create:
                return None
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
        try:
            # Autocommit: each statement is its own transaction unless a BEGIN says otherwise.
            # No busy timeout: _run waits for other processes' locks itself.
            connection = sqlite_db.connect(self.path, busy_timeout_s=0)
        except sqlite3.Error as exc:
            raise self._unusable(exc) from exc
        self._connection, self._pid, self._prepared = connection, os.getpid(), False
        return connection

    @staticmethod
    def _prepare(connection: sqlite3.Connection) -> None:
        """Make a new connection's file a WAL database with our tables (once per file; the
        first statement on a file that is not a database fails here)."""
        # WAL with NORMAL: a committed record survives any process's crash; only a power cut
        # can lose the last ones (as with files written without fsync).
        sqlite_db.use_wal(connection)
        connection.executescript(_SCHEMA)

    def close(self) -> None:
        """Close this process's connection (the next statement opens a new one)."""
        with self._lock:
            if self._connection is not None:
                if self._pid == os.getpid():
                    self._connection.close()
                else:
                    _INHERITED.append(self._connection)  # see _connect
            self._connection = None

    def _unusable(self, exc: Exception) -> ArtifactError:
        return ArtifactError(
            f"the artifact store's record index {self.path} cannot be used ({exc}); check that "
            "its folder can be written. The artifacts themselves are intact: if the file is "
            "damaged, move it aside to start a new index (the cache entries and provenance "
            "recorded in it are then no longer found)")

    def _run(self, action: Callable[[sqlite3.Connection], _T], *, write: bool) -> _T | None:
        """``action(connection)``, again while another process holds a lock it needs; None if
        the index does not exist and ``write`` is false."""
        with self._lock:
            connection = self._connect(create=write)
            if connection is None:
                return None
            deadline = time.monotonic() + BUSY_TIMEOUT
            pause = _FIRST_PAUSE
            while True:
                try:
                    if not self._prepared:
                        self._prepare(connection)
                        self._prepared = True
                    return action(connection)
                except sqlite3.OperationalError as exc:
                    if connection.in_transaction:
                        connection.rollback()
                    if not _busy(exc) or time.monotonic() > deadline:
                        raise self._unusable(exc) from exc
                except sqlite3.DatabaseError as exc:
                    raise self._unusable(exc) from exc
                # Another process holds the write lock (for tens of µs): try again soon.
                # SQLite's own busy handler would sleep 1 ms first, longer than a tiny job.
                time.sleep(pause)
                pause = min(pause * 2, _LAST_PAUSE)

    def _write(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        """Run ``sql`` for every row, in one transaction."""
        def write(connection: sqlite3.Connection) -> None:
            connection.execute("BEGIN IMMEDIATE")
            connection.executemany(sql, rows)
            connection.execute("COMMIT")

        if rows:
            self._run(write, write=True)

    def _read(self, sql: str, parameters: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        rows = self._run(lambda connection: connection.execute(sql, parameters).fetchall(),
                         write=False)
        return rows or []

    # -- provenance --------------------------------------------------------------------------
    def add_provenance(self, records: Iterable[tuple[str, str, dict[str, Any]]]) -> None:
        """Record producers of artifacts, ``(artifact, producer, record)`` each, together; a
        producer recorded before changes nothing."""
        self._write("INSERT OR IGNORE INTO provenance VALUES (?, ?, ?)",
                    [(artifact, producer, json.dumps(record, sort_keys=True))
                     for artifact, producer, record in records])

    def provenance(self, artifact: str) -> list[dict[str, Any]]:
        """The producers' records of an artifact, in no particular order."""
        rows = self._read("SELECT record FROM provenance WHERE artifact = ?", (artifact,))
        return [json.loads(record) for (record,) in rows]

    # -- cache entries -----------------------------------------------------------------------
    def put_cache_entries(self, entries: Iterable[tuple[str, dict[str, Any]]]) -> None:
        """Record cache entries, ``(key, entry)`` each, together; each replaces an older entry
        of its key."""
        self._write("INSERT OR REPLACE INTO cache VALUES (?, ?)",
                    [(key, json.dumps(entry, sort_keys=True)) for key, entry in entries])

    def cache_entry(self, key: str) -> dict[str, Any] | None:
        """The entry recorded for a cache key, if any."""
        rows = self._read("SELECT entry FROM cache WHERE key = ?", (key,))
        return json.loads(rows[0][0]) if rows else None


def _busy(exc: sqlite3.OperationalError) -> bool:
    """Whether the statement failed only because another connection held a lock."""
    code = getattr(exc, "sqlite_errorcode", None)  # extended: the primary code is its low byte
    return code is not None and code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


#: Open indexes, most recently used last; each holds three open files (the database, its WAL
#: and shared-memory index), so a process that opens many stores closes the oldest.
_INDEXES: OrderedDict[str, RecordIndex] = OrderedDict()
_MAX_OPEN = 32
_INHERITED: list[sqlite3.Connection] = []
_INDEXES_LOCK = threading.Lock()


def record_index(root: str) -> RecordIndex:
    """The process's index of the local store at ``root`` (one connection per store)."""
    with _INDEXES_LOCK:
        index = _INDEXES.get(root)
        if index is None:
            index = _INDEXES[root] = RecordIndex(root)
            while len(_INDEXES) > _MAX_OPEN:
                _INDEXES.popitem(last=False)[1].close()
        else:
            _INDEXES.move_to_end(root)
        return index
