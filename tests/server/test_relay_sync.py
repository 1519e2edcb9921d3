"""Clients editing through the real relay on a real port converge; rooms stay isolated."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from typing import Any

import aiohttp
from pycrdt import Array, Decoder, Doc, Map, Text

from forge_server.client import SyncClient
from forge_server.relay.app import ROOMS
from forge_server.relay.server import RelayServer

MakeClient = Any
NewRoom = Callable[..., str]


def state_vector(doc: Doc) -> dict[int, int]:
    """Decoded state vector (its bytes list clients in no fixed order, so compare this)."""
    decoder = Decoder(doc.get_state())
    count = decoder.read_var_uint()
    return dict((decoder.read_var_uint(), decoder.read_var_uint()) for _ in range(count))


def content(doc: Doc) -> dict[str, object]:
    return {
        "text": str(doc.get("text", type=Text)),
        "map": doc.get("map", type=Map).to_py(),
        "array": doc.get("array", type=Array).to_py(),
    }


async def converged(clients: list[SyncClient], timeout: float = 20.0) -> None:
    """Wait until every client has the same state vector and content."""
    async with asyncio.timeout(timeout):
        while True:
            for client in clients:
                await client.flush()
            vectors = [state_vector(c.doc) for c in clients]
            contents = [content(c.doc) for c in clients]
            if all(v == vectors[0] for v in vectors) and all(c == contents[0] for c in contents):
                return
            await asyncio.sleep(0.05)


def random_edit(doc: Doc, rng: random.Random, who: int, step: int) -> None:
    text = doc.get("text", type=Text)
    shared_map = doc.get("map", type=Map)
    array = doc.get("array", type=Array)
    # pycrdt's Text positions count UTF-8 bytes: pick a character position, then convert.
    current = str(text)

    def offset(index: int) -> int:
        return len(current[:index].encode("utf-8"))

    with doc.transaction():
        kind = rng.randrange(4)
        if kind == 0 or not current:
            text.insert(offset(rng.randint(0, len(current))), f"[{who}.{step} é中🎉]")
        elif kind == 1:
            start = rng.randrange(len(current))
            stop = min(len(current), start + rng.randint(1, 4))
            del text[offset(start) : offset(stop)]
        elif kind == 2:
            shared_map[f"k{rng.randrange(8)}"] = {"by": who, "step": step}
        else:
            array.append(f"{who}:{step}")
            if len(array) > 3 and rng.random() < 0.3:
                del array[rng.randrange(len(array))]


async def test_two_clients_converge(make_client: MakeClient, new_room: NewRoom) -> None:
    room = new_room()
    a = await make_client(room)
    b = await make_client(room)
    await asyncio.gather(a.synced(5), b.synced(5))
    a.doc.get("text", type=Text).insert(0, "héllo 中文 🎉")
    b.doc.get("map", type=Map)["nested"] = {"list": [1, 2], "x": {"y": None}}
    b.doc.get("array", type=Array).extend([1, "two", 3.5])
    await converged([a, b])
    assert content(b.doc)["text"] == "héllo 中文 🎉"
    assert content(a.doc)["map"] == {"nested": {"list": [1.0, 2.0], "x": {"y": None}}}
    assert content(a.doc)["array"] == [1.0, "two", 3.5]


async def test_twenty_clients_editing_concurrently_converge(
    make_client: MakeClient, new_room: NewRoom
) -> None:
    room = new_room()
    clients = [await make_client(room) for _ in range(20)]
    await asyncio.gather(*(c.synced(10) for c in clients))

    async def edit(index: int, client: SyncClient) -> None:
        rng = random.Random(index)
        for step in range(15):
            random_edit(client.doc, rng, index, step)
            await asyncio.sleep(rng.random() * 0.01)

    await asyncio.gather(*(edit(i, c) for i, c in enumerate(clients)))
    await converged(clients, timeout=30)
    # Every client's array appends that were not deleted are there, from all 20 writers.
    writers = {item.split(":")[0] for item in content(clients[0].doc)["array"]}  # type: ignore[union-attr]
    assert len(writers) > 10
    # A late joiner gets the same state from the relay.
    late = await make_client(room)
    await late.synced(5)
    assert state_vector(late.doc) == state_vector(clients[0].doc)
    assert content(late.doc) == content(clients[0].doc)


async def test_rooms_are_isolated(
    make_client: MakeClient, new_room: NewRoom, relay: RelayServer
) -> None:
    project = new_room().split("/")[0]
    # Only the server makes execution rooms (opening an unknown one is 404).
    await relay.app[ROOMS].create(f"{project}/executions/abc123", Doc().get_update())
    a = await make_client(f"{project}/main")
    b = await make_client(f"{project}/other")
    c = await make_client(f"{project}/executions/abc123")
    await asyncio.gather(a.synced(5), b.synced(5), c.synced(5))
    a.doc.get("text", type=Text).insert(0, "only in main")
    c.doc.get("map", type=Map)["job"] = "running"
    await a.flush(5)
    await c.flush(5)
    a2 = await make_client(f"{project}/main")
    await a2.synced(5)
    await asyncio.sleep(0.1)
    assert str(a2.doc.get("text", type=Text)) == "only in main"
    assert a2.doc.get("map", type=Map).to_py() == {}
    assert str(b.doc.get("text", type=Text)) == ""
    assert b.doc.get("map", type=Map).to_py() == {}
    assert str(c.doc.get("text", type=Text)) == ""


async def test_health_reports_rooms_and_connections(
    relay: RelayServer, make_client: MakeClient, new_room: NewRoom
) -> None:
    client = await make_client(new_room())
    await client.synced(5)
    async with aiohttp.ClientSession() as session, session.get(f"{relay.url}/health") as resp:
        body = await resp.json()
    assert resp.status == 200
    assert body["status"] == "ok"
    assert body["rooms"] >= 1
    assert body["connections"] >= 1
    assert "malformed_frames" in body["counters"]


async def test_not_a_websocket_gets_a_clear_400(relay: RelayServer) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{relay.url}/sync/p/main") as resp:
            assert resp.status == 400
            assert "WebSocket" in await resp.text()
        async with session.get(f"{relay.url}/sync/..bad/main") as resp:
            assert resp.status == 400
            assert "invalid room name" in await resp.text()
