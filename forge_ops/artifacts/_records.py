"""Small records about a local store's artifacts, in one SQLite file at its root.

Every job writes two records: who produced each of its outputs (provenance) and its cache entry.
As a file each, that is two new inodes per job, and on some filesystems creating a file costs
far more than a row in a database: on ext4 without a journal, each new inode is checked against
recently deleted ones, and after many deletions (a test run, a removed store) a creation took
0.3–1 ms of kernel time on the development VM, against about 0.03 ms for a row (probes).
SQLite in WAL mode takes concurrent readers and serialized writers from many processes on one
machine (a local store serves one machine; see the README), survives a crash of any of them, and
never shows a half-written record.

Object stores (fsspec URLs) keep one file per record: they have no file locks, and a write there
is one request either way.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
import uuid
from typing import Any

from ._codec import ArtifactError

FILENAME = "index.sqlite"
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
            self._create()
        try:
            # Autocommit: each statement is its own transaction, holding the write lock only
            # for that statement; other processes wait for it (timeout) instead of failing.
            connection = sqlite3.connect(self.path, timeout=60, isolation_level=None,
                                         check_same_thread=False)
        except sqlite3.Error as exc:
            raise self._unusable(exc) from exc
        try:
            # WAL with NORMAL: a committed record survives any process's crash; only a power
            # cut can lose the last ones (as with files written without fsync).
            connection.execute("PRAGMA synchronous=NORMAL")
            connection.execute("SELECT 1 FROM cache LIMIT 0").fetchall()  # a database of ours
        except sqlite3.DatabaseError as exc:
            connection.close()
            raise self._unusable(exc) from exc
        self._connection, self._pid = connection, os.getpid()
        return connection

    def _create(self) -> None:
        """Create the file whole, in WAL mode with its tables, under another name, then link
        it into place: switching a file that others have open to WAL can fail at once
        ("database is locked") instead of waiting, and no one may see it without its tables."""
        folder = os.path.dirname(self.path)
        os.makedirs(folder, exist_ok=True)
        aside = os.path.join(folder, f".{FILENAME}.{uuid.uuid4().hex}")
        try:
            connection = sqlite3.connect(aside, isolation_level=None)
            try:
                connection.execute("PRAGMA journal_mode=WAL")  # recorded in the file
                connection.executescript(_SCHEMA)
            finally:
                connection.close()
            try:
                os.link(aside, self.path)  # fails if another process created it first
            except FileExistsError:
                pass
        finally:
            for leftover in (aside, f"{aside}-wal", f"{aside}-shm"):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(leftover)

    def _unusable(self, exc: Exception) -> ArtifactError:
        return ArtifactError(
            f"the artifact store's record index {self.path} cannot be used ({exc}); check that "
            "its folder can be written. The artifacts themselves are intact: if the file is "
            "damaged, move it aside to start a new index (the cache entries and provenance "
            "recorded in it are then no longer found)")

    def _execute(self, sql: str, parameters: tuple[Any, ...], *, write: bool
                 ) -> list[tuple[Any, ...]]:
        with self._lock:
            connection = self._connect(create=write)
            if connection is None:
                return []
            try:
                return connection.execute(sql, parameters).fetchall()
            except sqlite3.DatabaseError as exc:
                raise self._unusable(exc) from exc

    # -- provenance --------------------------------------------------------------------------
    def add_provenance(self, artifact: str, producer: str, record: dict[str, Any]) -> None:
        """Record one producer of an artifact; the same producer again changes nothing."""
        self._execute("INSERT OR IGNORE INTO provenance VALUES (?, ?, ?)",
                      (artifact, producer, json.dumps(record, sort_keys=True)), write=True)

    def provenance(self, artifact: str) -> list[dict[str, Any]]:
        """The producers' records of an artifact, in no particular order."""
        rows = self._execute("SELECT record FROM provenance WHERE artifact = ?", (artifact,),
                             write=False)
        return [json.loads(record) for (record,) in rows]

    # -- cache entries -----------------------------------------------------------------------
    def put_cache_entry(self, key: str, entry: dict[str, Any]) -> None:
        """Record the entry of a cache key, replacing an older one."""
        self._execute("INSERT OR REPLACE INTO cache VALUES (?, ?)",
                      (key, json.dumps(entry, sort_keys=True)), write=True)

    def cache_entry(self, key: str) -> dict[str, Any] | None:
        """The entry recorded for a cache key, if any."""
        rows = self._execute("SELECT entry FROM cache WHERE key = ?", (key,), write=False)
        return json.loads(rows[0][0]) if rows else None


_INDEXES: dict[str, RecordIndex] = {}
_INHERITED: list[sqlite3.Connection] = []
_INDEXES_LOCK = threading.Lock()


def record_index(root: str) -> RecordIndex:
    """The process's index of the local store at ``root`` (one connection per store)."""
    with _INDEXES_LOCK:
        index = _INDEXES.get(root)
        if index is None:
            index = _INDEXES[root] = RecordIndex(root)
        return index
