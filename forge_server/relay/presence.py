"""Presence in one room: the awareness states of its clients, each bound to one connection.

- A connection owns the awareness client ids it publishes first (at most
  ``max_awareness_ids_per_connection``; a y-websocket client publishes one, its document's).
  An entry for an id another connection owns is dropped, and so is one for an id whose owner
  left recently, unless it comes from the same user (that client reconnecting).
- With accounts, a state's ``user.name`` is the connection's account: the relay sets it, so
  nobody appears under another's name. Whatever else the client puts in ``user`` travels
  as sent (the TUI sends a display name as ``user.display``, shown beside the account).
  Without accounts (``--no-auth``) there is one anonymous principal, and names are the
  clients' own.
- A state above ``max_awareness_state_bytes`` is dropped. A connection's updates are relayed
  at most ``max_awareness_updates_per_second``; faster ones are merged and relayed when its
  budget allows, so the latest state always goes out.
- A connection's states are removed, for everyone, when it leaves; states not renewed within
  the timeout expire.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass

from forge_server.relay.config import RelayConfig
from forge_server.relay.connection import Connection
from forge_server.relay.protocol import (
    AwarenessEntry,
    AwarenessMessage,
    encode_awareness,
    encode_message,
    parse_awareness_state,
)
from forge_server.relay.stats import RelayStats

__all__ = ["Presence", "PresenceTable"]

Broadcast = Callable[[bytes, Connection | None], None]
"""``broadcast(message, exclude)``: send to every connection of the room but ``exclude``."""


@dataclass
class Presence:
    """One client's awareness state, as the relay last accepted it."""

    clock: int
    state: str
    owner: Connection
    updated: float


class PresenceTable:
    """The awareness states of one room's clients by awareness client id."""

    def __init__(self, broadcast: Broadcast, config: RelayConfig, stats: RelayStats) -> None:
        self.entries: dict[int, Presence] = {}
        self._broadcast = broadcast
        self._config = config
        self._stats = stats
        # Client ids whose owner left (or whose state expired) recently, with that owner's user.
        # A y-websocket client echoes every state it receives: an echo still in flight when
        # the owner leaves must not bring the state back as a ghost under another connection.
        self._departed: dict[int, tuple[str, float]] = {}
        # Updates a connection sent faster than its budget, merged by client id, and the timer
        # that relays them.
        self._held: dict[Connection, dict[int, AwarenessEntry]] = {}
        self._flushes: dict[Connection, asyncio.TimerHandle] = {}

    def apply(self, entries: list[AwarenessEntry], conn: Connection) -> None:
        """Accept the entries this connection may change (its own client ids), relay those.

        Raises :class:`~forge_server.relay.protocol.ProtocolError` for an accepted state that
        is not JSON."""
        now = time.monotonic()
        accepted = []
        for entry in entries:
            admitted = self._admit(entry, conn)
            if admitted is None:
                continue
            cid = admitted.client_id
            if admitted.removed:
                del self.entries[cid]
                conn.awareness_ids.discard(cid)
                self._departed[cid] = (conn.user, now)
            else:
                self.entries[cid] = Presence(admitted.clock, admitted.state, conn, now)
                conn.awareness_ids.add(cid)
                self._departed.pop(cid, None)
            accepted.append(admitted)
        if accepted:
            self._relay(accepted, conn)

    def _admit(self, entry: AwarenessEntry, conn: Connection) -> AwarenessEntry | None:
        """The entry as it may be relayed (bound to the account), or None to drop it."""
        current = self.entries.get(entry.client_id)
        if current is not None:
            if current.owner is not conn:
                if entry.clock > current.clock:  # an echo carries the current clock
                    self._stats.awareness_foreign += 1
                return None
            newer = entry.clock > current.clock
            if not newer and not (entry.clock == current.clock and entry.removed):
                return None
        elif entry.removed:
            return None
        else:
            departed = self._departed.get(entry.client_id)
            if (departed is not None and departed[0] != conn.user) or len(
                conn.awareness_ids
            ) >= self._config.max_awareness_ids_per_connection:
                self._stats.awareness_foreign += 1
                return None
        return entry if entry.removed else self._bound(entry, conn)

    def _bound(self, entry: AwarenessEntry, conn: Connection) -> AwarenessEntry | None:
        """A state within the size limit, its ``user.name`` set to the connection's account."""
        limit = self._config.max_awareness_state_bytes
        if len(entry.state) > limit or len(entry.state.encode("utf-8")) > limit:
            self._stats.awareness_refused += 1
            return None
        state = parse_awareness_state(entry.state)
        account = conn.account
        if account is None:
            return entry
        if not isinstance(state, dict):
            self._stats.awareness_refused += 1  # no user to bind: not presence anyone can trust
            return None
        user = state.get("user")
        if isinstance(user, dict) and user.get("name") == account:
            return entry
        others = {k: v for k, v in user.items() if k != "name"} if isinstance(user, dict) else {}
        state["user"] = {"name": account, **others}
        self._stats.awareness_renamed += 1
        text = json.dumps(state, ensure_ascii=False, separators=(",", ":"))
        return AwarenessEntry(entry.client_id, entry.clock, text)

    # -- relaying within the rate ----------------------------------------------------------

    def _relay(self, entries: list[AwarenessEntry], conn: Connection) -> None:
        if conn not in self._held and conn.awareness_budget.take(1):
            self._send(entries, conn)
            return
        self._stats.awareness_throttled += 1
        held = self._held.setdefault(conn, {})
        for entry in entries:
            held[entry.client_id] = entry  # the latest state of each id is what goes out
        if conn not in self._flushes:
            self._schedule_flush(conn)

    def _schedule_flush(self, conn: Connection) -> None:
        delay = conn.awareness_budget.seconds_until(1)
        self._flushes[conn] = asyncio.get_running_loop().call_later(delay, self._flush, conn)

    def _flush(self, conn: Connection) -> None:
        del self._flushes[conn]
        if not conn.awareness_budget.take(1):
            self._schedule_flush(conn)  # woken a hair early
            return
        held = self._held.pop(conn, None)
        if held:
            self._send(list(held.values()), conn)

    def _send(self, entries: list[AwarenessEntry], exclude: Connection | None) -> None:
        self._broadcast(encode_message(AwarenessMessage(encode_awareness(entries))), exclude)

    # -- reading, leaving, expiring --------------------------------------------------------

    def message(self) -> bytes | None:
        """All known states as one awareness message (None when nobody is present)."""
        if not self.entries:
            return None
        entries = [AwarenessEntry(cid, p.clock, p.state) for cid, p in self.entries.items()]
        return encode_message(AwarenessMessage(encode_awareness(entries)))

    def remove_owned_by(self, conn: Connection) -> None:
        """Remove (and announce the removal of) the states a leaving connection owned."""
        flush = self._flushes.pop(conn, None)
        if flush is not None:
            flush.cancel()
        held = self._held.pop(conn, None) or {}
        removals = [entry for entry in held.values() if entry.removed]
        if removals:  # removals it asked for that were still held back
            self._send(removals, conn)
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
        self._departed = {cid: d for cid, d in self._departed.items() if d[1] >= limit}
        return len(stale)

    def _remove(self, client_ids: list[int]) -> None:
        now = time.monotonic()
        removed = []
        for cid in client_ids:
            presence = self.entries.pop(cid, None)
            if presence is None:
                continue
            presence.owner.awareness_ids.discard(cid)
            self._departed[cid] = (presence.owner.user, now)
            removed.append(AwarenessEntry(cid, presence.clock + 1, "null"))
        if removed:
            self._send(removed, None)
