"""Live rooms: one pycrdt ``Doc`` per document, its connections, awareness and subscribers.

A room is loaded from the :class:`~forge_server.relay.store.Store` before anyone is answered; joins
that arrive during the load wait on the same load. Every update is applied to the live document
(which validates it), queued for the store, and broadcast only once the store has committed it.

Server-side code (history, coordinator) uses the :class:`RoomManager`:

- ``await rooms.get(name)`` → :class:`Room` (loaded), or ``async with rooms.hold(name) as room``
  to keep it loaded while working with it;
- ``await rooms.apply_update(name, update, author)`` — persist + broadcast an update;
- ``with room.edit(author) as doc:`` — change the live document directly; the change is
  persisted and broadcast like a client's;
- ``rooms.subscribe(callback, room=None)`` — ``callback(room, update, author)`` after each update
  is persisted (sync or async callback); returns a function that unsubscribes;
- ``await rooms.create(name, snapshot)`` — a new room whose initial state is ``snapshot``.

A room nobody holds and nobody is connected to is unloaded after ``room_idle_s``; a :class:`Room`
kept from an earlier ``get`` then refuses edits (``RuntimeError``), so long-lived users hold it or
get it again. Edits happen on the relay's event loop. Bad updates raise
:class:`~forge_server.relay.protocol.ProtocolError`; one that would exceed ``max_document_bytes``
raises :class:`~forge_server.relay.connection.RelayRefusal`.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from functools import partial

from pycrdt import Doc, TransactionEvent

from forge_server.relay.config import RelayConfig
from forge_server.relay.connection import CloseCode, Connection, RelayRefusal
from forge_server.relay.protocol import (
    AwarenessEntry,
    AwarenessMessage,
    Decoder,
    ProtocolError,
    SyncMessage,
    SyncType,
    encode_awareness,
    encode_message,
    is_crdt_panic,
    websocket_frame,
)
from forge_server.relay.stats import RelayStats
from forge_server.relay.store import RoomState, Store, StoreError, merge_state
from forge_server.relay.text_integrity import (
    MAX_CLOCK,
    SurrogateGuard,
    check_update,
)

__all__ = [
    "Room",
    "RoomManager",
    "UpdateCallback",
    "execution_room",
    "project_room",
    "validate_room_name",
]

UpdateCallback = Callable[[str, bytes, str | None], Awaitable[None] | None]
"""``callback(room_name, update, author)``; author is the user name (None if unknown)."""

_SEGMENT = r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}"
_ROOM_NAME = re.compile(rf"{_SEGMENT}/(?:executions/{_SEGMENT}|{_SEGMENT})")


def validate_room_name(name: str) -> str:
    if not _ROOM_NAME.fullmatch(name):
        raise ValueError(
            f"invalid room name {name!r}: expected 'project/branch' or "
            "'project/executions/id', each part letters, digits, '.', '_' or '-' "
            "(starting with a letter or digit, at most 100 characters)"
        )
    return name


def project_room(project: str, branch: str = "main") -> str:
    return validate_room_name(f"{project}/{branch}")


def execution_room(project: str, execution_id: str) -> str:
    return validate_room_name(f"{project}/executions/{execution_id}")


def _clocks(state_vector: bytes) -> dict[int, int]:
    """A state vector as {client id: next clock}."""
    dec = Decoder(state_vector)
    return {dec.var_uint(): dec.var_uint() for _ in range(dec.var_uint())}


@dataclass
class _Presence:
    clock: int
    state: str
    owner: Connection | None
    updated: float


class Room:
    """One live document. Create through :class:`RoomManager`."""

    def __init__(self, name: str, manager: RoomManager, state: RoomState) -> None:
        self.name = name
        self.manager = manager
        self.doc: Doc = Doc()
        self.connections: set[Connection] = set()
        self.presence: dict[int, _Presence] = {}
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

    def _load(self, update: bytes) -> None:
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
            if any(clock > MAX_CLOCK for clock in _clocks(state_vector).values()):
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
        have = _clocks(self.doc.get_state())
        return any(have.get(client, 0) < clock for client, clock in ends.items())

    def _reload_from_store(self) -> None:
        """Replace the live document by what the store holds: every update applied before."""
        store = self.manager.store
        store.flush_now()  # queued updates were applied to the document: store them first
        merged = merge_state(store.load(self.name))
        self.doc.unobserve(self._subscription)
        self.doc = Doc()
        self._subscription = self.doc.observe(self._on_transaction)
        self._load(merged)
        self.manager.stats.documents_reloaded += 1

    def _on_transaction(self, event: TransactionEvent) -> None:
        if self._integrating:
            return
        update = event.update
        if update != b"\x00\x00":
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
        owned = [
            cid
            for cid in conn.awareness_ids
            if (presence := self.presence.get(cid)) is not None and presence.owner is conn
        ]
        self._remove_presence(owned)

    def broadcast(self, message: bytes, exclude: Connection | None = None) -> None:
        frame = websocket_frame(message)  # encoded once for every peer
        for conn in self.connections:
            if conn is not exclude:
                conn.send_frame(frame)

    # -- awareness -------------------------------------------------------------------------

    def apply_awareness(self, entries: list[AwarenessEntry], conn: Connection) -> None:
        """Accept the entries this connection may change (its own client ids), relay those."""
        now = time.monotonic()
        accepted = []
        for entry in entries:
            current = self.presence.get(entry.client_id)
            if current is not None:
                owner = current.owner
                if owner is not conn and owner is not None and owner.user != conn.user:
                    continue  # another connection's presence
                newer = entry.clock > current.clock
                if not newer and not (entry.clock == current.clock and entry.removed):
                    continue
            elif entry.removed:
                continue
            elif len(conn.awareness_ids) >= self.manager.config.max_awareness_ids_per_connection:
                continue  # a connection speaks for a few clients, not thousands
            if entry.removed:
                del self.presence[entry.client_id]
                conn.awareness_ids.discard(entry.client_id)
            else:
                if current is not None and current.owner not in (None, conn):
                    current.owner.awareness_ids.discard(entry.client_id)
                self.presence[entry.client_id] = _Presence(entry.clock, entry.state, conn, now)
                conn.awareness_ids.add(entry.client_id)
            accepted.append(entry)
        if accepted:
            self.broadcast(encode_message(AwarenessMessage(encode_awareness(accepted))), conn)

    def awareness_message(self) -> bytes | None:
        """All known presence states as one awareness message (None when nobody is present)."""
        if not self.presence:
            return None
        entries = [AwarenessEntry(cid, p.clock, p.state) for cid, p in self.presence.items()]
        return encode_message(AwarenessMessage(encode_awareness(entries)))

    def _remove_presence(self, client_ids: list[int]) -> None:
        removed = []
        for cid in client_ids:
            presence = self.presence.pop(cid, None)
            if presence is None:
                continue
            if presence.owner is not None:
                presence.owner.awareness_ids.discard(cid)
            removed.append(AwarenessEntry(cid, presence.clock + 1, "null"))
        if removed:
            self.broadcast(encode_message(AwarenessMessage(encode_awareness(removed))))

    def expire_presence(self, timeout: float) -> int:
        limit = time.monotonic() - timeout
        stale = [cid for cid, p in self.presence.items() if p.updated < limit]
        self._remove_presence(stale)
        return len(stale)

    def close(self) -> None:
        self.closed = True
        self.doc.unobserve(self._subscription)


class RoomManager:
    """Loads, holds and unloads rooms; fans updates out to subscribers."""

    def __init__(
        self,
        store: Store,
        config: RelayConfig,
        stats: RelayStats | None = None,
        *,
        log: logging.Logger | None = None,
    ) -> None:
        self.store = store
        self.config = config
        self.stats = stats or RelayStats()
        self.log = log or logging.getLogger(__name__)
        self.rooms: dict[str, Room] = {}
        self._loading: dict[str, asyncio.Future[Room]] = {}
        self._unloading: dict[str, asyncio.Task[None]] = {}
        self._compacting: dict[str, asyncio.Task[None]] = {}
        self._subscribers: list[tuple[str | None, UpdateCallback]] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self.loads = 0  # how many times a room was read from the store (tests, stats)

    # -- public API ------------------------------------------------------------------------

    @property
    def connection_count(self) -> int:
        return sum(len(room.connections) for room in self.rooms.values())

    def loaded(self, name: str) -> Room | None:
        """The room if it is loaded now (no loading)."""
        return self.rooms.get(name)

    async def get(self, name: str) -> Room:
        """The loaded room, loading it from the store first if needed."""
        validate_room_name(name)
        while True:
            unloading = self._unloading.get(name)
            if unloading is not None:
                await asyncio.shield(unloading)
                continue
            room = self.rooms.get(name)
            if room is not None:
                room.last_active = time.monotonic()
                return room
            pending = self._loading.get(name)
            if pending is not None:
                return await asyncio.shield(pending)
            return await self._load(name)

    @contextlib.asynccontextmanager
    async def hold(self, name: str) -> AsyncIterator[Room]:
        """Keep a room loaded while the block runs."""
        room = await self.get(name)
        room.holders += 1
        try:
            yield room
        finally:
            room.holders -= 1
            room.last_active = time.monotonic()

    async def apply_update(self, name: str, update: bytes, author: str | None = None) -> None:
        """Persist and broadcast an update to a room (loading it if needed)."""
        async with self.hold(name) as room:
            await room.apply_update(update, author)

    async def create(self, name: str, snapshot: bytes) -> Room:
        """Start a new room from ``snapshot`` (a Yjs update); refuses a name that exists."""
        validate_room_name(name)
        if name in self.rooms or name in self._loading:
            raise StoreError(f"room {name!r} already exists; choose another name")
        try:
            Doc().apply_update(snapshot)
        except ValueError as exc:
            raise ValueError(f"snapshot for room {name!r} is not a valid update: {exc}") from exc
        self.store.create_room(name, snapshot)
        return await self.get(name)

    def subscribe(self, callback: UpdateCallback, *, room: str | None = None) -> Callable[[], None]:
        """Call ``callback(room, update, author)`` after every persisted update.

        ``room`` limits it to one room (any room otherwise). Async callbacks run as tasks;
        errors are logged, never propagated to the relay. Returns the unsubscribe function.
        """
        entry = (room, callback)
        self._subscribers.append(entry)

        def unsubscribe() -> None:
            with contextlib.suppress(ValueError):
                self._subscribers.remove(entry)

        return unsubscribe

    def project_rooms(self, project: str) -> list[str]:
        """Names of the stored or loaded rooms of a project."""
        names = set(self.store.rooms(prefix=f"{project}/"))
        names.update(n for n in self.rooms if n.startswith(f"{project}/"))
        return sorted(names)

    def projects(self) -> list[str]:
        names = set(self.store.rooms()) | set(self.rooms)
        return sorted({n.split("/", 1)[0] for n in names})

    async def flush(self) -> None:
        """Commit every queued update."""
        self.store.flush_now()
        await asyncio.sleep(0)

    # -- internals -------------------------------------------------------------------------

    async def _load(self, name: str) -> Room:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Room] = loop.create_future()
        self._loading[name] = future
        try:
            if len(self.rooms) + len(self._loading) > self.config.max_rooms_loaded:
                await self._make_room_for_one()
            self.store.flush_now()
            state = self.store.load(name)
            self.loads += 1
            room = Room(name, self, state)
            if state.exists:
                if state.size >= self.config.compact_inline_below_bytes:
                    merged = await asyncio.to_thread(merge_state, state)
                else:
                    await asyncio.sleep(0)  # others joining now wait on this same load
                    merged = merge_state(state)
                room._load(merged)
            self.rooms[name] = room
            future.set_result(room)
            return room
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved: waiters re-raise it themselves
            raise
        finally:
            del self._loading[name]

    async def _make_room_for_one(self) -> None:
        idle = sorted(
            (r for r in self.rooms.values() if not r.connections and not r.holders),
            key=lambda r: r.last_active,
        )
        if not idle:
            self.stats.rooms_refused += 1
            raise RelayRefusal(
                CloseCode.AT_CAPACITY,
                f"{self.config.max_rooms_loaded} rooms are loaded (max_rooms_loaded); retry later",
            )
        await self.unload(idle[0].name)

    async def unload(self, name: str) -> None:
        """Compact and drop a loaded room (waits if it is already unloading)."""
        task = self._unloading.get(name)
        if task is None:
            room = self.rooms.pop(name, None)
            if room is None:
                return
            room.close()
            task = asyncio.get_running_loop().create_task(self._finish_unload(room))
            self._unloading[name] = task
        await asyncio.shield(task)

    async def _finish_unload(self, room: Room) -> None:
        try:
            await room.written()
            await self._compact_now(room.name)
        except Exception:  # compaction is an optimisation; the log remains correct
            self.log.exception("compacting room %s while unloading failed", room.name)
        finally:
            del self._unloading[room.name]

    def schedule_compaction(self, room: Room) -> None:
        if room.name in self._compacting:
            return
        room.updates_since_compact = 0
        task = asyncio.get_running_loop().create_task(self._compact_task(room))
        self._compacting[room.name] = task

    async def _compact_task(self, room: Room) -> None:
        try:
            await self._compact_now(room.name)
            if not room.closed:
                # Real size after compaction replaces the growing estimate.
                room.size_estimate = self.store.load(room.name).size
        except Exception:
            self.log.exception("compacting room %s failed", room.name)
        finally:
            self._compacting.pop(room.name, None)

    async def _compact_now(self, name: str) -> None:
        running = self._compacting.get(name)
        if running is not None and running is not asyncio.current_task():
            await asyncio.shield(running)
        removed = await self.store.compact(
            name, inline_below=self.config.compact_inline_below_bytes
        )
        if removed:
            self.log.debug("compacted %d updates of room %s", removed, name)

    def notify(self, name: str, update: bytes, author: str | None) -> None:
        for room_filter, callback in list(self._subscribers):
            if room_filter is not None and room_filter != name:
                continue
            try:
                result = callback(name, update, author)
            except Exception:
                self.log.exception("update subscriber %r failed", callback)
                continue
            if inspect.isawaitable(result):
                task = asyncio.ensure_future(result)
                self._tasks.add(task)
                task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Future[None]) -> None:
        self._tasks.discard(task)  # type: ignore[arg-type]
        if not task.cancelled() and task.exception() is not None:
            self.log.error("update subscriber failed: %r", task.exception())

    async def sweep(self) -> None:
        """Expire stale presence; unload rooms idle for ``room_idle_s``."""
        now = time.monotonic()
        for room in list(self.rooms.values()):
            expired = room.expire_presence(self.config.awareness_timeout_s)
            self.stats.awareness_timeouts += expired
            idle = not room.connections and not room.holders
            if idle and now - room.last_active >= self.config.room_idle_s:
                await self.unload(room.name)

    async def close(self) -> None:
        """Flush, compact and drop every room (graceful shutdown)."""
        self.store.flush_now()
        for name in list(self.rooms):
            await self.unload(name)
        for task in list(self._compacting.values()):
            await asyncio.gather(task, return_exceptions=True)
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        self.store.flush_now()
