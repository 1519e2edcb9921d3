"""What the app needs from a live document: the Doc, awareness and a connection state.

The app codes against :class:`DocumentLink`; the network one adapts the sync client of
``forge_server``, the in-process one (:class:`MemoryHub`) serves offline use and tests that are
not about the network.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from enum import StrEnum
from typing import Any, Protocol

from pycrdt import Awareness, Doc, TransactionEvent

REMOTE = "forge-remote"  # transaction origin of updates that arrive from peers
LOCAL = "forge-local"  # transaction origin of this client's edits (tracked by undo)


class LinkState(StrEnum):
    CONNECTING = "connecting"
    CONNECTED = "connected"
    RECONNECTING = "reconnecting"
    OFFLINE = "offline"


StateCallback = Callable[[LinkState, str], None]


class Presence(Protocol):
    """Awareness as the app uses it: one's own state, everyone else's, and a change signal."""

    client_id: int

    def get_local_state(self) -> dict[str, Any] | None: ...

    def set_local_state(self, state: dict[str, Any] | None) -> None: ...

    def others(self) -> dict[int, dict[str, Any]]: ...

    def on_change(self, callback: Callable[[], None]) -> Callable[[], None]: ...


class DocumentLink(Protocol):
    """A pycrdt Doc kept in sync with a room, presence and the connection state."""

    doc: Doc
    presence: Presence

    @property
    def state(self) -> LinkState: ...

    @property
    def detail(self) -> str:
        """Why the link is in its state (e.g. the last connection error), or ''."""
        ...

    def watch(self, callback: StateCallback) -> Callable[[], None]: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class _Watchers:
    def __init__(self) -> None:
        self._callbacks: list[StateCallback] = []

    def add(self, callback: StateCallback) -> Callable[[], None]:
        self._callbacks.append(callback)
        return lambda: self._callbacks.remove(callback) if callback in self._callbacks else None

    def emit(self, state: LinkState, detail: str) -> None:
        for callback in list(self._callbacks):
            callback(state, detail)


class PycrdtPresence:
    """:class:`Presence` over pycrdt's ``Awareness`` (used by the in-process hub)."""

    def __init__(self, awareness: Awareness) -> None:
        self.awareness = awareness
        self.client_id = awareness.client_id

    def get_local_state(self) -> dict[str, Any] | None:
        return self.awareness.get_local_state()

    def set_local_state(self, state: dict[str, Any] | None) -> None:
        self.awareness.set_local_state(state)

    def others(self) -> dict[int, dict[str, Any]]:
        return {k: v for k, v in self.awareness.states.items() if k != self.client_id}

    def on_change(self, callback: Callable[[], None]) -> Callable[[], None]:
        def relay(topic: str, change: Any) -> None:
            if topic == "change":
                callback()

        subscription = self.awareness.observe(relay)
        return lambda: self.awareness.unobserve(subscription)


class MemoryHub:
    """An in-process relay: rooms of peers whose docs and awareness are kept in sync."""

    def __init__(self) -> None:
        self.rooms: dict[str, Doc] = {}
        self.peers: dict[str, list[MemoryLink]] = {}
        self._relaying = False
        self._subscriptions: list[Any] = []

    def link(self, room: str) -> MemoryLink:
        return MemoryLink(self, room)

    def room_doc(self, room: str) -> Doc:
        """The room's own copy; editing it directly acts like a server-side edit."""
        if room not in self.rooms:
            doc = self.rooms[room] = Doc()
            self._subscriptions.append(
                doc.observe(lambda event, room=room: self._server_edit(room, event.update))
            )
        return self.rooms[room]

    def _server_edit(self, room: str, update: bytes) -> None:
        if self._relaying:
            return
        for peer in self.peers.get(room, []):
            if peer.online:
                peer.receive(update)

    def _broadcast(self, sender: MemoryLink, update: bytes) -> None:
        hub_doc = self.room_doc(sender.room)
        self._relaying = True
        try:
            hub_doc.apply_update(update)
        finally:
            self._relaying = False
        for peer in self.peers.get(sender.room, []):
            if peer is not sender and peer.online:
                peer.receive(update)

    def _broadcast_awareness(self, sender: MemoryLink, update: bytes) -> None:
        for peer in self.peers.get(sender.room, []):
            if peer is not sender and peer.online:
                peer.awareness.apply_awareness_update(update, REMOTE)


class MemoryLink:
    """A peer of a :class:`MemoryHub` room; ``go_offline``/``go_online`` simulate a cut."""

    def __init__(self, hub: MemoryHub, room: str) -> None:
        self.hub = hub
        self.room = room
        self.doc: Doc = Doc()
        self.awareness = Awareness(self.doc)
        self.presence: Presence = PycrdtPresence(self.awareness)
        self.online = False
        self._state = LinkState.CONNECTING
        self._watchers = _Watchers()
        self._subscriptions: list[Any] = []
        self._receiving = False

    @property
    def state(self) -> LinkState:
        return self._state

    @property
    def detail(self) -> str:
        return "in-process" if self.online else ""

    def watch(self, callback: StateCallback) -> Callable[[], None]:
        return self._watchers.add(callback)

    def _set_state(self, state: LinkState) -> None:
        self._state = state
        self._watchers.emit(state, self.detail)

    async def start(self) -> None:
        self.hub.peers.setdefault(self.room, []).append(self)
        self._subscriptions.append(self.doc.observe(self._on_update))
        self._subscriptions.append(self.awareness.observe(self._on_awareness))
        self.go_online()

    async def stop(self) -> None:
        peers = self.hub.peers.get(self.room, [])
        if self in peers:
            peers.remove(self)
        self.awareness.set_local_state(None)
        for peer in peers:
            peer.awareness.remove_awareness_states([self.doc.client_id], REMOTE)
        self.online = False
        self._set_state(LinkState.OFFLINE)

    def go_offline(self) -> None:
        self.online = False
        for peer in self.hub.peers.get(self.room, []):
            if peer is not self:
                peer.awareness.remove_awareness_states([self.doc.client_id], REMOTE)
        self._set_state(LinkState.RECONNECTING)

    def go_online(self) -> None:
        """Exchange what each side lacks (offline edits merge), then relay live again."""
        hub_doc = self.hub.room_doc(self.room)
        mine = self.doc.get_update(hub_doc.get_state())
        self.receive(hub_doc.get_update(self.doc.get_state()))
        self.online = True
        self.hub._broadcast(self, mine)
        if self.awareness.get_local_state() is not None:
            self.hub._broadcast_awareness(
                self, self.awareness.encode_awareness_update([self.doc.client_id])
            )
        for peer in self.hub.peers.get(self.room, []):
            if peer is not self and peer.online and peer.awareness.get_local_state() is not None:
                self.awareness.apply_awareness_update(
                    peer.awareness.encode_awareness_update([peer.doc.client_id]), REMOTE
                )
        self._set_state(LinkState.CONNECTED)

    def receive(self, update: bytes) -> None:
        self._receiving = True
        try:
            with self.doc.transaction(origin=REMOTE):
                self.doc.apply_update(update)
        finally:
            self._receiving = False

    def _on_update(self, event: TransactionEvent) -> None:
        if self._receiving or not self.online:
            return
        # Deliver after this transaction has closed, as a network would.
        update = event.update
        asyncio.get_running_loop().call_soon(self._deliver, update)

    def _deliver(self, update: bytes) -> None:
        if self.online:
            self.hub._broadcast(self, update)

    def _on_awareness(self, topic: str, change: tuple[dict[str, Any], Any]) -> None:
        _changes, origin = change
        if topic != "update" or origin != "local" or not self.online:
            return
        self.hub._broadcast_awareness(
            self, self.awareness.encode_awareness_update([self.doc.client_id])
        )


class ClientPresence:
    """:class:`Presence` over the sync client's awareness (``forge_server.client``)."""

    def __init__(self, awareness: Any) -> None:
        self.awareness = awareness
        self.client_id: int = awareness.client_id

    def get_local_state(self) -> dict[str, Any] | None:
        state = self.awareness.local_state
        return state if isinstance(state, dict) else None

    def set_local_state(self, state: dict[str, Any] | None) -> None:
        self.awareness.set_local_state(state)

    def others(self) -> dict[int, dict[str, Any]]:
        return {k: v for k, v in self.awareness.states.items() if isinstance(v, dict)}

    def on_change(self, callback: Callable[[], None]) -> Callable[[], None]:
        unsubscribe: Callable[[], None] = self.awareness.on_change(lambda _change: callback())
        return unsubscribe


class RemoteLink:
    """A room on a Forge relay through ``forge_server.client.SyncClient``; never blocks."""

    def __init__(self, server: str, token: str | None, room: str) -> None:
        from forge_server.client import SyncClient, room_url

        self.room = room
        self.client = SyncClient(room_url(server, room), token=token)
        self.doc: Doc = self.client.doc
        self.presence: Presence = ClientPresence(self.client.awareness)

    @property
    def state(self) -> LinkState:
        return LinkState(str(self.client.status))

    @property
    def detail(self) -> str:
        error = self.client.error
        return str(error) if error is not None else ""

    @property
    def refused(self) -> bool:
        from forge_server.client import AuthRefused

        return isinstance(self.client.error, AuthRefused)

    def watch(self, callback: StateCallback) -> Callable[[], None]:
        unsubscribe: Callable[[], None] = self.client.on_status(
            lambda status: callback(LinkState(str(status)), self.detail)
        )
        return unsubscribe

    async def start(self) -> None:
        await self.client.start()

    async def stop(self) -> None:
        await self.client.stop()
