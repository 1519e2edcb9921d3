"""Presence on the client side: this client's awareness state and a view of the others'."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from forge_server.relay.protocol import (
    AwarenessEntry,
    AwarenessMessage,
    encode_awareness,
    encode_message,
)

__all__ = ["Awareness", "AwarenessChange"]


@dataclass
class AwarenessChange:
    added: list[int] = field(default_factory=list)
    updated: list[int] = field(default_factory=list)
    removed: list[int] = field(default_factory=list)


class Awareness:
    """Presence: this client's state, and a view of the other clients' states."""

    def __init__(self, client_id: int, send: Callable[[bytes], None]) -> None:
        self.client_id = client_id
        self.local_state: dict[str, Any] | None = None
        self.clock = 0
        self.states: dict[int, Any] = {}  # other clients' states by client id
        self._clocks: dict[int, int] = {}
        self._seen: dict[int, float] = {}
        self._send = send
        self._last_set = time.monotonic()
        self._callbacks: list[Callable[[AwarenessChange], None]] = []

    def set_local_state(self, state: dict[str, Any] | None) -> None:
        """Replace this client's state (None: go away) and send it."""
        self.local_state = state
        self.clock += 1
        self._last_set = time.monotonic()
        self._send(self.local_message())

    def set_local_field(self, key: str, value: Any) -> None:
        self.set_local_state({**(self.local_state or {}), key: value})

    def on_change(self, callback: Callable[[AwarenessChange], None]) -> Callable[[], None]:
        """Call ``callback(change)`` when other clients' states change; returns unsubscribe."""
        self._callbacks.append(callback)
        return lambda: self._callbacks.remove(callback) if callback in self._callbacks else None

    def local_message(self) -> bytes:
        state = json.dumps(self.local_state, ensure_ascii=False, separators=(",", ":"))
        entry = AwarenessEntry(self.client_id, self.clock, state)
        return encode_message(AwarenessMessage(encode_awareness([entry])))

    def apply(self, entries: list[AwarenessEntry]) -> None:
        change = AwarenessChange()
        now = time.monotonic()
        for entry in entries:
            cid = entry.client_id
            if cid == self.client_id:
                # Another tab of ourselves thinks we left, or an old clock: reassert ours.
                if entry.clock >= self.clock and self.local_state is not None:
                    self.clock = entry.clock
                    self.set_local_state(self.local_state)
                continue
            known = self._clocks.get(cid)
            if known is not None and entry.clock < known:
                continue
            if known is not None and entry.clock == known and not entry.removed:
                continue
            if entry.removed:
                self._clocks[cid] = entry.clock
                if self.states.pop(cid, None) is not None or cid in self._seen:
                    change.removed.append(cid)
                self._seen.pop(cid, None)
                continue
            (change.updated if cid in self.states else change.added).append(cid)
            self.states[cid] = entry.parsed()
            self._clocks[cid] = entry.clock
            self._seen[cid] = now
        self._emit(change)

    def renew_and_expire(self, renew_after: float = 15.0, timeout: float = 30.0) -> None:
        now = time.monotonic()
        if self.local_state is not None and now - self._last_set >= renew_after:
            self.set_local_state(self.local_state)
        stale = [cid for cid, seen in self._seen.items() if now - seen >= timeout]
        self._forget(stale)

    def forget_others(self) -> None:
        self._forget(list(self.states))

    def _forget(self, client_ids: list[int]) -> None:
        change = AwarenessChange()
        for cid in client_ids:
            self._seen.pop(cid, None)
            if self.states.pop(cid, None) is not None:
                change.removed.append(cid)
        self._emit(change)

    def _emit(self, change: AwarenessChange) -> None:
        if not (change.added or change.updated or change.removed):
            return
        for callback in list(self._callbacks):
            try:
                callback(change)
            except Exception:
                logging.getLogger(__name__).exception("awareness callback failed")
