"""Presence is the account: the relay binds awareness to the connection that sent it and to its
authenticated user, and caps its size and rate (issue 18)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest_asyncio
from pycrdt import Doc
from test_relay_awareness import TwoUsers, awareness_frame, next_awareness, wait_for

from forge_server.auth import AuthStore, TokenAuthorizer
from forge_server.client import SyncClient, room_url
from forge_server.relay.app import ROOMS, STATS
from forge_server.relay.config import RelayConfig
from forge_server.relay.protocol import (
    AwarenessEntry,
    AwarenessMessage,
    QueryAwarenessMessage,
    decode_awareness,
    decode_message,
    encode_message,
)
from forge_server.relay.server import RelayServer

StartRelay = Any


@pytest_asyncio.fixture(loop_scope="session")
async def lab(tmp_path: Path) -> AsyncIterator[tuple[RelayServer, dict[str, str]]]:
    """A relay with real accounts: alice owns project "lab", rita may only read it."""
    store = AuthStore.open(tmp_path)
    for user in ("alice", "rita"):
        store.add_user(user)
    store.create_project("lab", "alice")
    store.grant("rita", "lab", "reader")
    tokens = {user: store.create_token(user)[0] for user in ("alice", "rita")}
    config = RelayConfig(data_dir=tmp_path)
    async with RelayServer(config, authorizer=TokenAuthorizer(store)) as relay:
        await relay.app[ROOMS].create("lab/main", Doc().get_update())  # readers open it too
        yield relay, tokens
    store.close()


async def states_seen(ws: aiohttp.ClientWebSocketResponse) -> list[AwarenessEntry]:
    """Every awareness entry the relay holds for the room, as a query answers."""
    await ws.send_bytes(encode_message(QueryAwarenessMessage()))
    return await next_awareness(ws)


async def test_a_reader_cannot_appear_as_someone_else(
    lab: tuple[RelayServer, dict[str, str]],
) -> None:
    relay, tokens = lab
    url = room_url(relay.url, "lab/main")
    async with (
        SyncClient(url, token=tokens["alice"]) as alice,
        SyncClient(url, token=tokens["rita"]) as rita,
    ):
        await asyncio.gather(alice.synced(5), rita.synced(5))
        rita_id = rita.awareness.client_id
        seen: list[Any] = []
        alice.awareness.on_change(lambda _: seen.append(alice.awareness.states.get(rita_id)))
        alice.awareness.set_local_state({"user": {"name": "alice", "colour": 1}})
        rita.awareness.set_local_state({"user": {"name": "owner", "colour": 3}, "view": "x"})
        await wait_for(lambda: rita_id in alice.awareness.states)
        bound = {"user": {"name": "rita", "colour": 3}, "view": "x"}
        assert alice.awareness.states[rita_id] == bound
        rita.awareness.set_local_state({"user": {"name": "alice", "display": "Alice"}})
        await wait_for(lambda: "display" in alice.awareness.states[rita_id]["user"])
        # Her own name for herself travels beside the account, never in its place.
        assert alice.awareness.states[rita_id] == {"user": {"name": "rita", "display": "Alice"}}
        rita.awareness.set_local_state({"user": "owner"})
        await wait_for(lambda: "display" not in alice.awareness.states[rita_id]["user"])
        assert alice.awareness.states[rita_id] == {"user": {"name": "rita"}}
        # No state of hers ever reached Alice under another name; Alice's own is untouched.
        assert all(state["user"]["name"] == "rita" for state in seen if state is not None)
        assert rita.awareness.states[alice.awareness.client_id]["user"]["name"] == "alice"
        assert relay.app[STATS].awareness_renamed == 3


async def test_with_accounts_a_state_must_be_an_object(
    lab: tuple[RelayServer, dict[str, str]],
) -> None:
    relay, tokens = lab
    async with aiohttp.ClientSession() as s:
        url = relay.ws_url("lab/main")
        rita = await s.ws_connect(url, headers={"Authorization": f"Bearer {tokens['rita']}"})
        alice = await s.ws_connect(url, headers={"Authorization": f"Bearer {tokens['alice']}"})
        await rita.send_bytes(awareness_frame(7, 1, '"I am alice"'))  # no user to bind
        await rita.send_bytes(awareness_frame(7, 2, '{"cursor": 4}'))
        assert await next_awareness(alice) == [
            AwarenessEntry(7, 2, '{"cursor":4,"user":{"name":"rita"}}')
        ]
        assert relay.app[STATS].awareness_refused == 1
        await rita.close()
        await alice.close()


async def test_without_accounts_names_are_the_clients_own(start_relay: StartRelay) -> None:
    relay = await start_relay()  # --no-auth: one anonymous principal for everyone
    async with aiohttp.ClientSession() as s:
        a = await s.ws_connect(relay.ws_url("p/main"))
        b = await s.ws_connect(relay.ws_url("p/main"))
        await a.send_bytes(awareness_frame(1, 1, '{"user":{"name":"Ada"}}'))
        assert await next_awareness(b) == [AwarenessEntry(1, 1, '{"user":{"name":"Ada"}}')]
        await a.close()
        await b.close()


async def test_another_connection_of_the_same_user_cannot_take_a_client_id(
    start_relay: StartRelay,
) -> None:
    relay = await start_relay(authorizer=TwoUsers())
    url = relay.ws_url("p/main")
    async with aiohttp.ClientSession() as s:
        first = await s.ws_connect(url + "?token=ann")
        second = await s.ws_connect(url + "?token=ann")
        watcher = await s.ws_connect(url + "?token=bob")
        await first.send_bytes(awareness_frame(1, 1, '{"user":{"name":"ann"},"tab":1}'))
        assert (await next_awareness(watcher))[0].clock == 1
        await second.send_bytes(awareness_frame(1, 9, '{"user":{"name":"ann"},"tab":2}'))
        await second.send_bytes(awareness_frame(1, 10, "null"))
        assert await states_seen(watcher) == [
            AwarenessEntry(1, 1, '{"user":{"name":"ann"},"tab":1}')
        ]
        assert relay.app[STATS].awareness_foreign == 2
        for ws in (first, second, watcher):
            await ws.close()


async def test_a_connection_owns_the_first_client_id_it_publishes(
    start_relay: StartRelay,
) -> None:
    relay = await start_relay()
    async with aiohttp.ClientSession() as s:
        ws = await s.ws_connect(relay.ws_url("p/main"))
        watcher = await s.ws_connect(relay.ws_url("p/main"))
        await ws.send_bytes(awareness_frame(10, 1, '{"user":{"name":"one"}}'))
        await ws.send_bytes(awareness_frame(11, 1, '{"user":{"name":"two"}}'))
        await next_awareness(watcher)
        assert [e.client_id for e in await states_seen(watcher)] == [10]
        await ws.close()
        await watcher.close()


async def test_an_echo_of_a_departed_client_does_not_come_back(start_relay: StartRelay) -> None:
    """y-websocket clients echo the states they receive; an echo of a client that has just left
    must not bring it back as a ghost owned by the echoing connection."""
    relay = await start_relay(authorizer=TwoUsers())
    url = relay.ws_url("p/main")
    async with aiohttp.ClientSession() as s:
        ann = await s.ws_connect(url + "?token=ann")
        bob = await s.ws_connect(url + "?token=bob")
        await ann.send_bytes(awareness_frame(5, 3, ANN := '{"user":{"name":"ann"}}'))
        assert await next_awareness(bob) == [AwarenessEntry(5, 3, ANN)]
        await ann.close()
        assert await next_awareness(bob) == [AwarenessEntry(5, 4, "null")]
        await bob.send_bytes(awareness_frame(5, 3, ANN))  # the echo, late
        await bob.send_bytes(awareness_frame(6, 1, '{"user":{"name":"bob"}}'))  # bob's own
        assert [e.client_id for e in await states_seen(bob)] == [6]
        await bob.close()


async def test_oversized_presence_is_not_relayed(start_relay: StartRelay) -> None:
    relay = await start_relay()
    async with aiohttp.ClientSession() as s:
        ws = await s.ws_connect(relay.ws_url("p/main"))
        watcher = await s.ws_connect(relay.ws_url("p/main"))
        big = json.dumps({"user": {"name": "big"}, "blob": "x" * 100_000})  # 100 kB
        await ws.send_bytes(awareness_frame(3, 1, big))
        await ws.send_bytes(awareness_frame(3, 2, '{"user":{"name":"small"}}'))
        assert await next_awareness(watcher) == [AwarenessEntry(3, 2, '{"user":{"name":"small"}}')]
        assert relay.app[STATS].awareness_refused == 1
        assert not ws.closed  # dropped, not a reason to disconnect
        await ws.close()
        await watcher.close()


async def test_fast_presence_is_merged_and_the_latest_state_goes_out(
    start_relay: StartRelay,
) -> None:
    relay = await start_relay(max_awareness_updates_per_second=5)
    async with aiohttp.ClientSession() as s:
        ws = await s.ws_connect(relay.ws_url("p/main"))
        watcher = await s.ws_connect(relay.ws_url("p/main"))
        for clock in range(1, 101):  # 100 cursor moves at once
            await ws.send_bytes(awareness_frame(3, clock, json.dumps({"cursor": clock})))
        clocks: list[int] = []
        async with asyncio.timeout(5):
            while not clocks or clocks[-1] != 100:
                message = decode_message(await watcher.receive_bytes())
                if isinstance(message, AwarenessMessage):
                    clocks += [e.clock for e in decode_awareness(message.payload)]
        # One second's burst (5), then the merged rest once the budget allows: not 100.
        assert clocks[:5] == [1, 2, 3, 4, 5] and clocks[-1] == 100
        assert len(clocks) <= 7, clocks
        assert relay.app[STATS].awareness_throttled >= 95
        await ws.close()
        await watcher.close()


async def test_a_held_back_removal_still_goes_out_when_the_client_leaves(
    start_relay: StartRelay,
) -> None:
    relay = await start_relay(max_awareness_updates_per_second=1)
    async with aiohttp.ClientSession() as s:
        ws = await s.ws_connect(relay.ws_url("p/main"))
        watcher = await s.ws_connect(relay.ws_url("p/main"))
        await ws.send_bytes(awareness_frame(3, 1, "{}"))
        assert await next_awareness(watcher) == [AwarenessEntry(3, 1, "{}")]
        await ws.send_bytes(awareness_frame(3, 2, "null"))  # over budget: held back
        await ws.close()
        assert await next_awareness(watcher) == [AwarenessEntry(3, 2, "null")]
        await watcher.close()
