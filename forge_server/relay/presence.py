"""Presence in one room: the awareness states of its clients, each owned by one connection.

A connection may change only the entries it owns (its own awareness client ids, or those of
another connection of the same user), at most ``max_ids_per_connection`` of them; entries are
relayed as they are accepted, removed when their owner leaves, and expired after a timeout.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from forge_server.relay.connection import Connection
from forge_server.relay.protocol import (
    AwarenessEntry,
    AwarenessMessage,
    encode_awareness,
    encode_message,
)

__all__ = ["Presence", "PresenceTable"]

Broadcast = Callable[[bytes, Connection | None], None]
"""``broadcast(message, exclude)``: send to every connection of the room but ``exclude``."""


@dataclass
class Presence:
    """One client's awareness state, as the relay last accepted it."""

    clock: int
    state: str
    owner: Connection | None
    updated: float


class PresenceTable:
    """The awareness states of one room's clients by awareness client id."""

    def __init__(self, broadcast: Broadcast, *, max_ids_per_connection: int) -> None:
        self.entries: dict[int, Presence] = {}
        self._broadcast = broadcast
        self._max_ids = max_ids_per_connection

    def apply(self, entries: list[AwarenessEntry], conn: Connection) -> None:
        """Accept the entries this connection may change (its own client ids), relay those."""
        now = time.monotonic()
        accepted = []
        for entry in entries:
            current = self.entries.get(entry.client_id)
            if current is not None:
                owner = current.owner
                if owner is not conn and owner is not None and owner.user != conn.user:
                    continue  # another connection's presence
                newer = entry.clock > current.clock
                if not newer and not (entry.clock == current.clock and entry.removed):
                    continue
            elif entry.removed:
                continue
            elif len(conn.awareness_ids) >= self._max_ids:
                continue  # a connection speaks for a few clients, not thousands
            if entry.removed:
                del self.entries[entry.client_id]
                conn.awareness_ids.discard(entry.client_id)
            else:
                if current is not None and current.owner not in (None, conn):
                    current.owner.awareness_ids.discard(entry.client_id)
                self.entries[entry.client_id] = Presence(entry.clock, entry.state, conn, now)
                conn.awareness_ids.add(entry.client_id)
            accepted.append(entry)
        if accepted:
            self._broadcast(encode_message(AwarenessMessage(encode_awareness(accepted))), conn)

    def message(self) -> bytes | None:
        """All known states as one awareness message (None when nobody is present)."""
        if not self.entries:
            return None
        entries = [AwarenessEntry(cid, p.clock, p.state) for cid, p in self.entries.items()]
        return encode_message(AwarenessMessage(encode_awareness(entries)))

    def remove_owned_by(self, conn: Connection) -> None:
        """Remove (and announce the removal of) the states a leaving connection owned."""
        owned = [
            cid
            for cid in conn.awareness_ids
            if (presence := self.entries.get(cid)) is not None and presence.owner is conn
        ]
        self._remove(owned)

    def expire(self, timeout: float) -> int:
        """Remove the states not renewed for ``timeout`` seconds; how many were removed."""
        limit = time.monotonic() - timeout
        stale = [cid for cid, p in self.entries.items() if p.updated < limit]
        self._remove(stale)
        return len(stale)

    def _remove(self, client_ids: list[int]) -> None:
        removed = []
        for cid in client_ids:
            presence = self.entries.pop(cid, None)
            if presence is None:
                continue
            if presence.owner is not None:
                presence.owner.awareness_ids.discard(cid)
            removed.append(AwarenessEntry(cid, presence.clock + 1, "null"))
        if removed:
            self._broadcast(encode_message(AwarenessMessage(encode_awareness(removed))), None)
