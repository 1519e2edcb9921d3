"""Awareness through the relay: relayed, owned per connection, cleared, queried, timed out."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp

from forge_server.client import SyncClient, room_url
from forge_server.principal import Role, Unauthenticated
from forge_server.relay.app import STATS
from forge_server.relay.protocol import (
    AwarenessEntry,
    AwarenessMessage,
    QueryAwarenessMessage,
    decode_awareness,
    decode_message,
    encode_awareness,
    encode_message,
)

StartRelay = Any


async def wait_for(predicate: Any, timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.02)


def awareness_frame(client_id: int, clock: int, state: str) -> bytes:
    return encode_message(
        AwarenessMessage(encode_awareness([AwarenessEntry(client_id, clock, state)]))
    )


async def next_awareness(ws: aiohttp.ClientWebSocketResponse) -> list[AwarenessEntry]:
    async with asyncio.timeout(5):
        while True:
            message = decode_message(await ws.receive_bytes())
            if isinstance(message, AwarenessMessage):
                return decode_awareness(message.payload)


class TwoUsers:
    async def authenticate(self, token: str | None) -> str:
        if token not in ("ann", "bob"):
            raise Unauthenticated("unknown token")
        return token

    async def role(self, user: str, project: str) -> Role | None:
        return Role.WRITER


async def test_presence_relayed_and_cleared_on_leave(start_relay: StartRelay) -> None:
    relay = await start_relay()
    url = room_url(relay.url, "p/main")
    async with SyncClient(url) as watcher:
        await watcher.synced(5)
        async with SyncClient(url) as a:
            await a.synced(5)
            a.awareness.set_local_state({"user": {"name": "Zoë"}, "selection": ["node1"]})
            await wait_for(lambda: a.doc.client_id in watcher.awareness.states)
            assert watcher.awareness.states[a.doc.client_id]["user"]["name"] == "Zoë"
            a.awareness.set_local_field("selection", ["node2"])
            await wait_for(
                lambda: watcher.awareness.states[a.doc.client_id]["selection"] == ["node2"]
            )
            # A late joiner receives the current presence at once.
            async with SyncClient(url) as late:
                await late.synced(5)
                await wait_for(lambda: a.doc.client_id in late.awareness.states)
        await wait_for(lambda: a.doc.client_id not in watcher.awareness.states)


async def test_connection_drop_clears_its_presence(start_relay: StartRelay) -> None:
    relay = await start_relay()
    async with SyncClient(room_url(relay.url, "p/main")) as watcher, aiohttp.ClientSession() as s:
        await watcher.synced(5)
        ws = await s.ws_connect(relay.ws_url("p/main"))
        await ws.send_bytes(awareness_frame(4242, 1, '{"user":"raw"}'))
        await wait_for(lambda: watcher.awareness.states.get(4242) == {"user": "raw"})
        await ws.close()  # no goodbye: the relay removes what this connection owned
        await wait_for(lambda: 4242 not in watcher.awareness.states)


ANN = '{"user":{"name":"ann"}}'


async def test_presence_is_owned_by_its_connection(start_relay: StartRelay) -> None:
    relay = await start_relay(authorizer=TwoUsers())
    async with aiohttp.ClientSession() as s:
        ann = await s.ws_connect(relay.ws_url("p/main") + "?token=ann")
        bob = await s.ws_connect(relay.ws_url("p/main") + "?token=bob")
        await ann.send_bytes(awareness_frame(1, 1, ANN))
        assert await next_awareness(bob) == [AwarenessEntry(1, 1, ANN)]
        # Bob may not change or remove Ann's presence, even with a newer clock.
        await bob.send_bytes(awareness_frame(1, 5, '{"user":{"name":"bob"}}'))
        await bob.send_bytes(awareness_frame(1, 6, "null"))
        await bob.send_bytes(encode_message(QueryAwarenessMessage()))
        assert await next_awareness(bob) == [AwarenessEntry(1, 1, ANN)]
        await ann.close()
        assert await next_awareness(bob) == [AwarenessEntry(1, 2, "null")]
        await bob.close()


async def test_stale_presence_times_out(start_relay: StartRelay) -> None:
    relay = await start_relay(awareness_timeout_s=0.3, sweep_interval_s=0.05)
    async with SyncClient(room_url(relay.url, "p/main")) as watcher, aiohttp.ClientSession() as s:
        await watcher.synced(5)
        ws = await s.ws_connect(relay.ws_url("p/main"))
        await ws.send_bytes(awareness_frame(77, 1, '{"user":"silent"}'))
        await wait_for(lambda: 77 in watcher.awareness.states)
        await wait_for(lambda: 77 not in watcher.awareness.states, timeout=5)
        assert relay.app[STATS].awareness_timeouts >= 1
        await ws.close()


async def test_one_connection_cannot_flood_presence(start_relay: StartRelay) -> None:
    relay = await start_relay(max_awareness_ids_per_connection=3)
    async with aiohttp.ClientSession() as s:
        flooder = await s.ws_connect(relay.ws_url("p/main"))
        watcher = await s.ws_connect(relay.ws_url("p/main"))
        entries = [AwarenessEntry(cid, 1, "{}") for cid in range(1000, 1100)]
        await flooder.send_bytes(encode_message(AwarenessMessage(encode_awareness(entries))))
        relayed = await next_awareness(watcher)
        assert [e.client_id for e in relayed] == [1000, 1001, 1002]
        await flooder.close()
        await watcher.close()
