"""Presence is the account, with the real JavaScript client: a y-websocket client that names
itself after someone else appears under its own account, and the states of others it echoes
back (y-websocket relays every awareness change it receives) change nothing."""

from __future__ import annotations

from typing import Any

import pytest
from js_peer import JsPeer, missing_reason
from test_close_codes import eventually, js, lab, sync_url

from forge_server.auth import AuthStore
from forge_server.client import SyncClient, room_url
from forge_server.relay.app import ROOMS, STATS
from forge_server.relay.server import RelayServer

__all__ = ["js", "lab"]  # fixtures shared with test_close_codes

_MISSING = missing_reason()
pytestmark = [
    pytest.mark.interop,
    pytest.mark.skipif(_MISSING is not None, reason=_MISSING or ""),
]


async def test_a_js_client_appears_under_its_own_account(
    js: JsPeer, lab: tuple[RelayServer, AuthStore]
) -> None:
    relay, store = lab
    alice_token, _ = store.create_token("alice")
    bob_token, _ = store.create_token("bob")
    async with SyncClient(room_url(relay.url, "lab/main"), token=alice_token) as alice:
        await alice.synced(5)
        alice.awareness.set_local_state({"user": {"name": "alice", "colour": 2}})
        bob_id = await js.connect(sync_url(relay), "lab/main", {"token": bob_token})
        await js.set_awareness({"user": {"name": "alice", "color": "#f00"}, "cursor": 7})

        async def bob_seen() -> Any:
            return alice.awareness.states.get(bob_id)

        state = await eventually(bob_seen, timeout=5)
        assert state == {"user": {"name": "bob", "color": "#f00"}, "cursor": 7}

        async def alice_seen_by_js() -> Any:
            return (await js.peers()).get(alice.awareness.client_id)

        # The JS client sees Alice as she is, and what it echoed of her state was dropped.
        assert await eventually(alice_seen_by_js, timeout=5) == {
            "user": {"name": "alice", "colour": 2}
        }
        room = relay.app[ROOMS].loaded("lab/main")
        assert room is not None
        owners = {cid: p.owner.user for cid, p in room.presence.entries.items()}
        assert owners == {alice.awareness.client_id: "alice", bob_id: "bob"}
        assert relay.app[STATS].awareness_foreign == 0  # echoes carry the current clock
        await js.disconnect()
