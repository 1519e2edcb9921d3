"""SQLite persistence of room documents: an update log per room plus a compacted snapshot.

Tables (prefixed ``room_``; the same ``forge.db`` holds other modules' tables):

- ``room_updates(id, room, data, author, created)``: every update, in the order it was applied.
- ``room_snapshots(room, data, through_id, updated)``: the merged state of all updates of the
  room with ``id <= through_id``; those rows are deleted when the snapshot is written.

Writes are batched: :meth:`Store.append` queues a row and returns a future; all rows queued in
one event-loop tick are committed in one transaction (WAL, ``synchronous=NORMAL``: durable against
process crashes, one fsync per checkpoint), then the futures resolve, so a caller that awaits
the future before broadcasting never broadcasts an update that is not on disk.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["RoomState", "Store", "StoreError"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS room_updates (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    room TEXT NOT NULL,
    data BLOB NOT NULL,
    author TEXT,
    created REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS room_updates_room_id ON room_updates (room, id);
CREATE TABLE IF NOT EXISTS room_snapshots (
    room TEXT PRIMARY KEY,
    data BLOB NOT NULL,
    through_id INTEGER NOT NULL,
    updated REAL NOT NULL
);
"""


class StoreError(RuntimeError):
    """The store cannot do what was asked (e.g. create a room that already exists)."""


@dataclass(frozen=True)
class RoomState:
    """What the store holds for a room: a snapshot (or None) and the updates after it."""

    snapshot: bytes | None
    updates: list[bytes]
    last_id: int  # id of the newest row included (0 when the room is empty)

    @property
    def exists(self) -> bool:
        return self.snapshot is not None or bool(self.updates)

    @property
    def size(self) -> int:
        return len(self.snapshot or b"") + sum(len(u) for u in self.updates)


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA busy_timeout=10000")
    return conn


class Store:
    """The room update log in ``{data_dir}/forge.db``; use from one event loop."""

    def __init__(self, path: Path, *, log: logging.Logger | None = None) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.log = log or logging.getLogger(__name__)
        self._conn = _connect(self.path)
        self._conn.executescript(_SCHEMA)
        self._pending: list[tuple[str, bytes, str | None, float]] = []
        self._waiters: list[asyncio.Future[int]] = []
        self._flush_handle: asyncio.Handle | None = None
        self.rows_written = 0
        self.batches_written = 0

    # -- reading ---------------------------------------------------------------------------

    def load(self, room: str) -> RoomState:
        """Everything committed for ``room`` (call :meth:`flush_now` first for queued rows)."""
        # One read transaction, so a compaction committing in between cannot be half seen.
        self._conn.execute("BEGIN")
        try:
            row = self._conn.execute(
                "SELECT data, through_id FROM room_snapshots WHERE room = ?", (room,)
            ).fetchone()
            snapshot, through = (bytes(row[0]), int(row[1])) if row else (None, 0)
            rows = self._conn.execute(
                "SELECT id, data FROM room_updates WHERE room = ? AND id > ? ORDER BY id",
                (room, through),
            ).fetchall()
        finally:
            self._conn.execute("COMMIT")
        last_id = int(rows[-1][0]) if rows else through
        return RoomState(snapshot, [bytes(r[1]) for r in rows], last_id)

    def rooms(self, prefix: str = "") -> list[str]:
        """Names of stored rooms (optionally those starting with ``prefix``), sorted."""
        pattern = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        rows = self._conn.execute(
            "SELECT room FROM room_snapshots WHERE room LIKE ? ESCAPE '\\' "
            "UNION SELECT DISTINCT room FROM room_updates WHERE room LIKE ? ESCAPE '\\' "
            "ORDER BY 1",
            (pattern, pattern),
        ).fetchall()
        return [str(r[0]) for r in rows]

    def exists(self, room: str) -> bool:
        return bool(
            self._conn.execute(
                "SELECT 1 FROM room_snapshots WHERE room = ? "
                "UNION ALL SELECT 1 FROM room_updates WHERE room = ? LIMIT 1",
                (room, room),
            ).fetchone()
        )

    # -- writing ---------------------------------------------------------------------------

    def append(self, room: str, update: bytes, author: str | None = None) -> asyncio.Future[int]:
        """Queue an update; the future resolves (to its row id) once it is committed."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[int] = loop.create_future()
        self._pending.append((room, update, author, time.time()))
        self._waiters.append(future)
        if self._flush_handle is None:
            self._flush_handle = loop.call_soon(self._flush_batch)
        return future

    def _flush_batch(self) -> None:
        self._flush_handle = None
        pending, waiters = self._pending, self._waiters
        self._pending, self._waiters = [], []
        if not pending:
            return
        try:
            ids = self._write(pending)
        except sqlite3.Error as exc:
            self.log.error("could not write %d room updates: %s", len(pending), exc)
            error = StoreError(f"could not write room updates: {exc}")
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_exception(error)
            return
        for waiter, row_id in zip(waiters, ids, strict=True):
            if not waiter.done():
                waiter.set_result(row_id)

    def _write(self, rows: list[tuple[str, bytes, str | None, float]]) -> list[int]:
        conn = self._conn
        ids = []
        conn.execute("BEGIN IMMEDIATE")
        try:
            for row in rows:
                cur = conn.execute(
                    "INSERT INTO room_updates (room, data, author, created) VALUES (?, ?, ?, ?)",
                    row,
                )
                ids.append(int(cur.lastrowid or 0))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        self.rows_written += len(rows)
        self.batches_written += 1
        return ids

    def flush_now(self) -> None:
        """Commit whatever is queued, now (shutdown, tests)."""
        if self._flush_handle is not None:
            self._flush_handle.cancel()
        self._flush_batch()

    def create_room(self, room: str, snapshot: bytes) -> None:
        """Start a room whose initial state is ``snapshot`` (branches); refuses existing ones."""
        self.flush_now()
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            if self.exists(room):
                raise StoreError(f"room {room!r} already exists; choose another name")
            conn.execute(
                "INSERT INTO room_snapshots (room, data, through_id, updated) VALUES (?, ?, 0, ?)",
                (room, snapshot, time.time()),
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def delete_room(self, room: str) -> None:
        self.flush_now()
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("DELETE FROM room_updates WHERE room = ?", (room,))
        conn.execute("DELETE FROM room_snapshots WHERE room = ?", (room,))
        conn.execute("COMMIT")

    # -- compaction ------------------------------------------------------------------------

    async def compact(self, room: str, *, inline_below: int = 256 * 1024) -> int:
        """Merge the room's snapshot and update log into a new snapshot; returns rows removed.

        Rows are read and merged from the database (not from a live document), so a
        compaction never loses an update that arrives meanwhile: only rows up to the last id
        read are replaced. Large rooms are merged in a worker thread with its own connection.
        """
        self.flush_now()
        state = self.load(room)
        if len(state.updates) == 0 or (len(state.updates) == 1 and state.snapshot is None):
            return 0
        if state.size < inline_below:
            _write_snapshot(self._conn, room, state)
        else:
            await asyncio.to_thread(_compact_in_thread, self.path, room, state)
        return len(state.updates)

    def close(self) -> None:
        self.flush_now()
        try:
            self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.Error as exc:  # another connection may hold the WAL; not fatal
            self.log.warning("WAL checkpoint at close failed: %s", exc)
        self._conn.close()


def merge_state(state: RoomState) -> bytes:
    """One update equivalent to the snapshot followed by all updates (garbage-collected)."""
    from pycrdt import Doc

    doc: Doc = Doc()
    if state.snapshot is not None:
        doc.apply_update(state.snapshot)
    for update in state.updates:
        doc.apply_update(update)
    return doc.get_update()


def _write_snapshot(conn: sqlite3.Connection, room: str, state: RoomState) -> None:
    merged = merge_state(state)
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute(
            "INSERT INTO room_snapshots (room, data, through_id, updated) VALUES (?, ?, ?, ?) "
            "ON CONFLICT(room) DO UPDATE SET data = excluded.data, "
            "through_id = excluded.through_id, updated = excluded.updated",
            (room, merged, state.last_id, time.time()),
        )
        conn.execute("DELETE FROM room_updates WHERE room = ? AND id <= ?", (room, state.last_id))
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def _compact_in_thread(path: Path, room: str, state: RoomState) -> None:
    conn = _connect(path)
    try:
        _write_snapshot(conn, room, state)
    finally:
        conn.close()
