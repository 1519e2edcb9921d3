"""One live room: a pycrdt ``Doc``, the connections to it, and its presence.

Every update is validated (:func:`~forge_server.relay.text_integrity.check_update`, then yrs),
applied to the live document, queued for the store, and broadcast only once the store has
committed it. Rooms are created, loaded and unloaded by the
:class:`~forge_server.relay.rooms.RoomManager`, their :class:`RoomHost`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterator
from functools import partial
from typing import Protocol

from pycrdt import Doc, TransactionEvent

from forge_server.relay.config import RelayConfig
from forge_server.relay.connection import CloseCode, Connection, RelayRefusal
from forge_server.relay.presence import PresenceTable
from forge_server.relay.protocol import (
    EMPTY_UPDATE,
    AwarenessEntry,
    ProtocolError,
    SyncMessage,
    SyncType,
    decode_state_vector,
    encode_message,
    is_crdt_panic,
    websocket_frame,
)
from forge_server.relay.stats import RelayStats
from forge_server.relay.store import RoomState, Store, merge_state
from forge_server.relay.text_integrity import MAX_CLOCK, SurrogateGuard, check_update

__all__ = ["Room", "RoomHost"]


class RoomHost(Protocol):
    """What a room needs from the manager that holds it."""

    @property
    def config(self) -> RelayConfig: ...

    @property
    def stats(self) -> RelayStats: ...

    @property
    def log(self) -> logging.Logger: ...

    @property
    def store(self) -> Store: ...

    def notify(self, name: str, update: bytes, author: str | None) -> None:
        """Tell the subscribers about an update the store committed."""
        ...

    def schedule_compaction(self, room: Room) -> None: ...


class Room:
    """One live document. Create through :class:`RoomManager`."""

    def __init__(self, name: str, manager: RoomHost, state: RoomState) -> None:
        self.name = name
        self.manager = manager
        self.doc: Doc = Doc()
        self.connections: set[Connection] = set()
        self.presence = PresenceTable(self.broadcast, manager.config, manager.stats)
        self.holders = 0
        self.closed = False
        self.last_active = time.monotonic()
        self.size_estimate = state.size
        self.updates_since_compact = len(state.updates)
        self._last_write: asyncio.Future[int] | None = None
        # While the room applies an update itself, the observer must not persist it again;
        # while a server-side edit runs, it names the author.
        self._integrating = False
        self._edit_author: str | None = None
        self._subscription = self.doc.observe(self._on_transaction)
        self.surrogates = SurrogateGuard()  # logs Yjs updates that split UTF-16 pairs

    def __repr__(self) -> str:
        return f"<Room {self.name!r} connections={len(self.connections)}>"

    @property
    def project(self) -> str:
        return self.name.split("/", 1)[0]

    # -- document --------------------------------------------------------------------------

    def load_snapshot(self, update: bytes) -> None:
        """Start the live document from the store's merged state (no persisting, no broadcast)."""
        self._apply_quietly(update)
        self.surrogates.check(update)  # learn the stored texts' astral characters

    def _apply_quietly(self, update: bytes) -> None:
        self._integrating = True
        try:
            self.doc.apply_update(update)
        finally:
            self._integrating = False

    def sync_step2(self, state_vector: bytes) -> bytes:
        """The reply to a peer's sync step 1: everything it is missing."""
        try:
            if any(clock > MAX_CLOCK for clock in decode_state_vector(state_vector).values()):
                raise ProtocolError("sync step 1 names a clock beyond 2**32 - 1")
            update = self.doc.get_update(state_vector)
        except ValueError as exc:
            raise ProtocolError(f"sync step 1 carries an invalid state vector: {exc}") from exc
        except BaseException as exc:
            if not is_crdt_panic(exc):
                raise
            raise ProtocolError(f"sync step 1: pycrdt fails on its state vector: {exc}") from exc
        return encode_message(SyncMessage(SyncType.STEP2, update))

    def sync_step1(self) -> bytes:
        return encode_message(SyncMessage(SyncType.STEP1, self.doc.get_state()))

    async def written(self) -> None:
        """Wait until every update applied so far is committed to the store."""
        while self._last_write is not None and not self._last_write.done():
            await asyncio.shield(self._last_write)

    def apply_client_update(self, update: bytes, origin: Connection) -> None:
        """Apply a client's update: validate, persist, then broadcast to the others."""
        self._check_size(update)
        self._integrate(update, origin.user, origin)

    async def apply_update(self, update: bytes, author: str | None = None) -> None:
        """Apply an update from server-side code; returns once it is persisted and broadcast."""
        self._check_size(update)
        future = self._integrate(update, author, None)
        await future
        await asyncio.sleep(0)  # let the broadcast callback run

    @contextlib.contextmanager
    def edit(self, author: str | None = None) -> Iterator[Doc]:
        """Change the live document in one transaction; persisted and broadcast on exit."""
        self._ensure_open()
        previous, self._edit_author = self._edit_author, author
        try:
            with self.doc.transaction():
                yield self.doc
        finally:
            self._edit_author = previous

    def _check_size(self, update: bytes) -> None:
        self._ensure_open()
        limit = self.manager.config.max_document_bytes
        if self.size_estimate + len(update) <= limit:
            return
        self.size_estimate = len(self.doc.get_update())  # the estimate only grows; re-measure
        if self.size_estimate + len(update) > limit:
            self.manager.stats.documents_too_large += 1
            raise RelayRefusal(
                CloseCode.DOCUMENT_TOO_LARGE,
                f"update would make the document larger than {limit} bytes (max_document_bytes)",
            )

    def _ensure_open(self) -> None:
        if self.closed:
            raise RuntimeError(f"room {self.name!r} was unloaded; get it again from the manager")

    def _integrate(
        self, update: bytes, author: str | None, origin: Connection | None
    ) -> asyncio.Future[int]:
        try:
            ends = check_update(update)  # before yrs sees it: some malformed updates crash yrs
            self._apply_quietly(update)
        except ValueError as exc:  # UpdateFormatError too
            raise ProtocolError(f"invalid document update: {exc}") from exc
        except BaseException as exc:
            # Some garbage updates that decode make yrs panic (a BaseException). Without this
            # it escaped the connection's handler; the document is rebuilt because a panic may
            # leave part of the update in it, which nobody stored or received.
            if not is_crdt_panic(exc):
                raise
            self.manager.log.warning("room %s: pycrdt panicked on an update: %s", self.name, exc)
            self._reload_from_store()
            raise ProtocolError(f"invalid document update (pycrdt panicked: {exc})") from exc
        if self._left_pending(ends):
            # yrs keeps such structs aside ("pending") and leaves them out of every sync step
            # 2, yet integrates them once the gap fills: clients that joined meanwhile would
            # never get them. No well-behaved client sends one (it has all it builds on).
            self._reload_from_store()
            raise ProtocolError(
                "document update builds on changes the relay does not have; "
                "sync (step 1) before sending updates"
            )
        self.surrogates.watch(self.name, update)
        return self._persist_then_broadcast(update, author, origin)

    def _left_pending(self, ends: dict[int, int]) -> bool:
        """Whether the document stops short of an applied update's ``ends`` (from
        :func:`check_update`): part of it waits for dependencies, unintegrated."""
        have = decode_state_vector(self.doc.get_state())
        return any(have.get(client, 0) < clock for client, clock in ends.items())

    def _reload_from_store(self) -> None:
        """Replace the live document by what the store holds: every update applied before."""
        store = self.manager.store
        store.flush_now()  # queued updates were applied to the document: store them first
        merged = merge_state(store.load(self.name))
        self.doc.unobserve(self._subscription)
        self.doc = Doc()
        self._subscription = self.doc.observe(self._on_transaction)
        self.load_snapshot(merged)
        self.manager.stats.documents_reloaded += 1

    def _on_transaction(self, event: TransactionEvent) -> None:
        if self._integrating:
            return
        update = event.update
        if update != EMPTY_UPDATE:
            self._persist_then_broadcast(update, self._edit_author, None)

    def _persist_then_broadcast(
        self, update: bytes, author: str | None, origin: Connection | None
    ) -> asyncio.Future[int]:
        self.last_active = time.monotonic()
        self.size_estimate += len(update)
        self.updates_since_compact += 1
        self.manager.stats.updates_applied += 1
        future = self.manager.store.append(
            self.name, update, author, then=partial(self._broadcast_written, update, author, origin)
        )
        self._last_write = future
        return future

    def _broadcast_written(
        self,
        update: bytes,
        author: str | None,
        origin: Connection | None,
        written: int | BaseException,
    ) -> None:
        """Runs on the loop as soon as the store committed the update (commit order)."""
        if isinstance(written, BaseException):
            # Not on disk: nobody may receive it. Close every client so they re-sync their
            # own state (which still holds the update) once the store works again.
            self.manager.log.error("room %s: update not persisted; dropping clients", self.name)
            for conn in list(self.connections):
                conn.abort(CloseCode.INTERNAL_ERROR, "could not persist an update")
            return
        # One frame, encoded once, written to every peer's socket.
        frame = websocket_frame(encode_message(SyncMessage(SyncType.UPDATE, update)))
        for conn in self.connections:
            if conn is not origin:
                conn.send_frame(frame)
        self.manager.notify(self.name, update, author)
        if self.updates_since_compact >= self.manager.config.compact_after_updates:
            self.manager.schedule_compaction(self)

    # -- connections -----------------------------------------------------------------------

    def join(self, conn: Connection) -> None:
        self._ensure_open()
        self.connections.add(conn)
        self.last_active = time.monotonic()
        conn.send(self.sync_step1())
        awareness = self.awareness_message()
        if awareness is not None:
            conn.send(awareness)

    def leave(self, conn: Connection) -> None:
        self.connections.discard(conn)
        self.last_active = time.monotonic()
        self.presence.remove_owned_by(conn)

    def broadcast(self, message: bytes, exclude: Connection | None = None) -> None:
        frame = websocket_frame(message)  # encoded once for every peer
        for conn in self.connections:
            if conn is not exclude:
                conn.send_frame(frame)

    # -- awareness -------------------------------------------------------------------------

    def apply_awareness(self, entries: list[AwarenessEntry], conn: Connection) -> None:
        """Accept the entries this connection may change (its own client ids), relay those."""
        self.presence.apply(entries, conn)

    def awareness_message(self) -> bytes | None:
        """All known presence states as one awareness message (None when nobody is present)."""
        return self.presence.message()

    def expire_presence(self, timeout: float) -> int:
        return self.presence.expire(timeout)

    def close(self) -> None:
        self.closed = True
        self.doc.unobserve(self._subscription)
