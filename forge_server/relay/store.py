"""SQLite persistence of room documents: an update log per room plus a compacted snapshot.

Tables (prefixed ``room_``; the same ``forge.db`` holds other modules' tables):

- ``room_updates(id, room, data, author, created)``: every update, in the order it was applied.
- ``room_snapshots(room, data, through_id, updated)``: the merged state of all updates of the
  room with ``id <= through_id``; those rows are deleted when the snapshot is written.

Writes are batched: :meth:`Store.append` queues a row and returns a future; everything queued
in one event-loop turn is committed in one transaction (``executemany``; WAL,
``synchronous=NORMAL``: durable against process crashes, one fsync per checkpoint) and the whole
batch resolves in that same call. With ``writer_thread=True`` a thread does the commits (SQLite
releases the GIL while it writes, so the loop serves sockets meanwhile) and resolves each batch
with one call on the loop; it costs more CPU in all, so it is off by default. Either way a
caller that waits for the future (or passes ``then``, called in commit order right when the
batch resolves, before the futures) before broadcasting never broadcasts an update that is not
on disk.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from forge_ops.sqlite_db import open_database

__all__ = ["RoomState", "Store", "StoreError", "WriteCallback"]

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


WriteCallback = Callable[[int | BaseException], None]
"""Called on the loop once a queued row is committed: its row id, or the error that lost it."""

_Row = tuple[str, bytes, str | None, float]
_INSERT = "INSERT INTO room_updates (room, data, author, created) VALUES (?, ?, ?, ?)"


@dataclass
class _Batch:
    rows: list[_Row]
    waiters: list[asyncio.Future[int]]
    callbacks: list[WriteCallback | None]
    outcome: list[int] | BaseException | None = None  # row ids, or why the batch failed


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


class Store:
    """The room update log in ``{data_dir}/forge.db``; use from one event loop."""

    def __init__(
        self, path: Path, *, writer_thread: bool = False, log: logging.Logger | None = None
    ) -> None:
        self.path = Path(path)
        self.writer_thread = writer_thread
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.log = log or logging.getLogger(__name__)
        self._conn = open_database(self.path)  # reads, compaction, rooms (event-loop thread)
        self._conn.executescript(_SCHEMA)
        self._writer_conn = open_database(self.path)  # appends; used under _write_lock only
        # Queued rows, shared by the loop (appends) and the writer thread (takes them).
        self._queue_lock = threading.Condition(threading.Lock())
        self._pending: list[_Row] = []
        self._waiters: list[asyncio.Future[int]] = []
        self._callbacks: list[WriteCallback | None] = []
        # Committed batches not yet resolved on the loop, oldest first (commit order).
        self._write_lock = threading.Lock()
        self._committed: deque[_Batch] = deque()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stopping = False
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

    def append(
        self,
        room: str,
        update: bytes,
        author: str | None = None,
        *,
        then: WriteCallback | None = None,
    ) -> asyncio.Future[int]:
        """Queue an update; the future resolves (to its row id) once it is committed.

        ``then(row_id_or_error)`` runs on the loop right when the batch resolves, before the
        future's own callbacks (no extra loop turn), in commit order.
        """
        if not self.writer_thread:
            loop = asyncio.get_running_loop()
            future: asyncio.Future[int] = loop.create_future()
            self._pending.append((room, update, author, time.time()))
            self._waiters.append(future)
            self._callbacks.append(then)
            if len(self._pending) == 1:  # one commit for everything queued in this loop turn
                loop.call_soon(self.flush_now)
            return future
        future = self._start_writer().create_future()
        with self._queue_lock:
            self._pending.append((room, update, author, time.time()))
            self._waiters.append(future)
            self._callbacks.append(then)
            if len(self._pending) == 1:
                self._queue_lock.notify()
        return future

    def _start_writer(self) -> asyncio.AbstractEventLoop:
        loop = asyncio.get_running_loop()
        if self._thread is None or self._loop is not loop:
            if self._thread is not None:  # a new loop (tests): finish with the old one first
                self._stop_writer()
            self._loop = loop
            self._stopping = False
            self._thread = threading.Thread(
                target=self._writer_main, name=f"forge-store-writer:{self.path.name}", daemon=True
            )
            self._thread.start()
        return loop

    def _writer_main(self) -> None:
        while True:
            with self._queue_lock:
                while not self._pending and not self._stopping:
                    self._queue_lock.wait()
                if self._stopping and not self._pending:
                    return
            with self._write_lock:
                committed = self._write_pending()
            if committed and self._loop is not None:
                try:
                    self._loop.call_soon_threadsafe(self._resolve_committed)
                except RuntimeError:  # the loop is closed; flush_now/close resolve the rest
                    pass

    def _write_pending(self) -> bool:
        """Commit everything queued now as one batch (caller holds ``_write_lock``)."""
        with self._queue_lock:
            if not self._pending:
                return False
            batch = _Batch(self._pending, self._waiters, self._callbacks)
            self._pending, self._waiters, self._callbacks = [], [], []
        try:
            batch.outcome = self._write(batch.rows)
        except Exception as exc:  # never let the writer thread die with futures pending
            self.log.error("could not write %d room updates: %s", len(batch.rows), exc)
            batch.outcome = StoreError(f"could not write room updates: {exc}")
        self._committed.append(batch)
        return True

    def _resolve_committed(self) -> None:
        """On the loop: resolve committed batches in commit order."""
        while True:
            try:
                batch = self._committed.popleft()
            except IndexError:
                return
            outcome = batch.outcome
            for index, (waiter, callback) in enumerate(
                zip(batch.waiters, batch.callbacks, strict=True)
            ):
                result: int | BaseException = (
                    outcome if isinstance(outcome, BaseException) else outcome[index]  # type: ignore[index]
                )
                if callback is not None:
                    try:
                        callback(result)
                    except Exception:
                        self.log.exception("callback after writing a room update failed")
                if waiter.done():
                    continue
                if isinstance(result, BaseException):
                    waiter.set_exception(result)
                else:
                    waiter.set_result(result)

    def _write(self, rows: list[_Row]) -> list[int]:
        conn = self._writer_conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.executemany(_INSERT, rows)
            # One writer holds the write lock, so AUTOINCREMENT ids of one batch are consecutive.
            last = int(conn.execute("SELECT last_insert_rowid()").fetchone()[0])
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        self.rows_written += len(rows)
        self.batches_written += 1
        return list(range(last - len(rows) + 1, last + 1))

    def flush_now(self) -> None:
        """Commit whatever is queued and resolve it, now (reads, shutdown, tests)."""
        with self._write_lock:  # waits for a batch the writer thread is committing
            self._write_pending()
        self._resolve_committed()

    def _stop_writer(self) -> None:
        thread = self._thread
        if thread is None:
            return
        with self._queue_lock:
            self._stopping = True
            self._queue_lock.notify()
        thread.join()
        self._thread = None

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
        self._stop_writer()
        self.flush_now()
        self._writer_conn.close()
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
    conn = open_database(path)
    try:
        _write_snapshot(conn, room, state)
    finally:
        conn.close()
