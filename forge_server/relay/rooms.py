"""The room manager: loads, holds and unloads live rooms, and fans their updates out.

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

This module is server-side code's one import: it re-exports :class:`Room` (from
:mod:`~forge_server.relay.room`) and the room names (:mod:`~forge_server.relay.room_names`).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable

from pycrdt import Doc

from forge_server.relay.config import RelayConfig
from forge_server.relay.connection import CloseCode, RelayRefusal
from forge_server.relay.room import Room
from forge_server.relay.room_names import execution_room, project_room, validate_room_name
from forge_server.relay.stats import RelayStats
from forge_server.relay.store import Store, StoreError, merge_state

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

    def exists(self, name: str) -> bool:
        """Whether the room is loaded or stored (opening a room does not store it)."""
        return name in self.rooms or name in self._loading or self.store.exists(name)

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
                room.load_snapshot(merged)
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
