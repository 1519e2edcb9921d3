"""Each relay limit, exceeded, closes only the offending connection with its code and reason.

Real relays (in-process, real port, token auth) with small limits; real WebSocket clients.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest_asyncio
from pycrdt import Doc, Text

from forge_server.auth import AuthStore, TokenAuthorizer
from forge_server.relay.app import ROOMS, STATS
from forge_server.relay.config import RelayConfig
from forge_server.relay.connection import CloseCode
from forge_server.relay.protocol import (
    AwarenessEntry,
    AwarenessMessage,
    QueryAwarenessMessage,
    SyncMessage,
    SyncType,
    decode_message,
    encode_awareness,
    encode_message,
)
from forge_server.relay.server import RelayServer

STEP1 = encode_message(SyncMessage(SyncType.STEP1, b"\x00"))


class Relay:
    def __init__(self, server: RelayServer, store: AuthStore, http: aiohttp.ClientSession):
        self.server = server
        self.store = store
        self.http = http
        self.tokens: dict[str, str] = {}

    def token(self, user: str) -> str:
        if user not in self.tokens:
            self.store.add_user(user)
            self.store.grant(user, "lim", "writer")
            self.tokens[user] = self.store.create_token(user)[0]
        return self.tokens[user]

    async def connect(self, user: str = "ann", room: str = "lim/main") -> Any:
        return await self.http.ws_connect(
            self.server.ws_url(room), headers={"Authorization": f"Bearer {self.token(user)}"}
        )

    @property
    def stats(self) -> Any:
        return self.server.app[STATS]


StartRelay = Callable[..., Awaitable[Relay]]


@pytest_asyncio.fixture(loop_scope="session")
async def start_relay(tmp_path: Path) -> AsyncIterator[StartRelay]:
    servers: list[RelayServer] = []
    stores: list[AuthStore] = []
    http = aiohttp.ClientSession()

    async def start(**limits: Any) -> Relay:
        data_dir = tmp_path / f"relay{len(servers)}"
        store = AuthStore.open(data_dir)
        server = RelayServer(
            RelayConfig(data_dir=data_dir, **limits), authorizer=TokenAuthorizer(store)
        )
        await server.start()
        servers.append(server)
        stores.append(store)
        return Relay(server, store, http)

    yield start
    await http.close()
    for server in servers:
        await server.stop()
    for store in stores:
        store.close()


async def synced(ws: Any) -> bytes:
    """Ask for the document (sync step 1) and return the step 2 payload."""
    await ws.send_bytes(STEP1)
    async with asyncio.timeout(10):
        while True:
            msg = await ws.receive()
            assert msg.type == aiohttp.WSMsgType.BINARY, (msg.type, msg.extra)
            message = decode_message(msg.data)
            if isinstance(message, SyncMessage) and message.kind == SyncType.STEP2:
                return message.payload


async def closed_with(ws: Any) -> tuple[int | None, str]:
    async with asyncio.timeout(10):
        while True:
            msg = await ws.receive()
            if msg.type in (
                aiohttp.WSMsgType.CLOSE,
                aiohttp.WSMsgType.CLOSED,
                aiohttp.WSMsgType.CLOSING,
            ):
                return ws.close_code, msg.extra or ""
            if msg.type == aiohttp.WSMsgType.ERROR:
                return ws.close_code, str(msg.data)


def text_update(text: str) -> bytes:
    doc = Doc()
    doc.get("text", type=Text).insert(0, text)
    return encode_message(SyncMessage(SyncType.UPDATE, doc.get_update()))


async def bystander_still_works(relay: Relay, ws: Any) -> None:
    """Another connection in the same room is unaffected: it still syncs and edits."""
    await ws.send_bytes(text_update("still here"))
    payload = await synced(ws)
    doc = Doc()
    doc.apply_update(payload)
    assert "still here" in str(doc.get("text", type=Text))


class TestLimits:
    async def test_frame_size(self, start_relay: StartRelay) -> None:
        relay = await start_relay(max_frame_bytes=64 * 1024)
        bystander = await relay.connect("bob")
        ws = await relay.connect("ann")
        await synced(ws)
        await ws.send_bytes(text_update("x" * 100_000))
        code, _ = await closed_with(ws)
        assert code == CloseCode.MESSAGE_TOO_BIG
        await asyncio.sleep(0.05)
        assert relay.stats.oversized_frames == 1
        await bystander_still_works(relay, bystander)

    async def test_connections_per_user(self, start_relay: StartRelay) -> None:
        relay = await start_relay(max_connections_per_user=3)
        held = [await relay.connect("ann") for _ in range(3)]
        for ws in held:
            await synced(ws)
        extra = await relay.connect("ann")
        code, reason = await closed_with(extra)
        assert code == CloseCode.TOO_MANY_CONNECTIONS
        assert "max_connections_per_user" in reason
        assert relay.stats.connection_limit == 1
        other_user = await relay.connect("bob")  # the limit is per user
        await bystander_still_works(relay, other_user)
        await held[0].close()
        await asyncio.sleep(0.1)
        again = await relay.connect("ann")  # a slot was freed
        await synced(again)

    async def test_one_user_cannot_lock_out_others_at_the_same_address(
            self, start_relay: StartRelay) -> None:
        # Behind an SSH tunnel or a proxy every user is 127.0.0.1: open connections count per
        # user, so one user at their limit leaves room for everyone else.
        relay = await start_relay(max_connections_per_ip=2, max_connections_per_user=3)
        held = [await relay.connect("ann") for _ in range(3)]
        for ws in held:
            await synced(ws)
        code, reason = await closed_with(await relay.connect("ann"))
        assert code == CloseCode.TOO_MANY_CONNECTIONS and "max_connections_per_user" in reason
        others = [await relay.connect(f"user{i}") for i in range(3)]
        for ws in others:
            await synced(ws)
        await bystander_still_works(relay, others[0])

    async def test_messages_per_second(self, start_relay: StartRelay) -> None:
        relay = await start_relay(max_messages_per_second=50)
        bystander = await relay.connect("bob")
        ws = await relay.connect("ann")
        query = encode_message(QueryAwarenessMessage())
        for _ in range(500):  # far more than 50 within a moment
            try:
                await ws.send_bytes(query)
            except (ConnectionError, RuntimeError):
                break  # already closed by the relay
        code, reason = await closed_with(ws)
        assert code == CloseCode.RATE_LIMITED
        assert "max_messages_per_second" in reason
        assert relay.stats.rate_limited == 1
        await bystander_still_works(relay, bystander)

    async def test_bytes_per_second(self, start_relay: StartRelay) -> None:
        relay = await start_relay(max_bytes_per_second=200_000)
        bystander = await relay.connect("bob")
        ws = await relay.connect("ann")
        state = json.dumps({"blob": "x" * 50_000})
        for clock in range(1, 11):  # 500 kB within a moment: well over 200 kB/s
            payload = encode_awareness([AwarenessEntry(4242, clock, state)])
            try:
                await ws.send_bytes(encode_message(AwarenessMessage(payload)))
            except (ConnectionError, RuntimeError):
                break
        code, reason = await closed_with(ws)
        assert code == CloseCode.RATE_LIMITED
        assert "max_bytes_per_second" in reason
        await bystander_still_works(relay, bystander)

    async def test_rooms_loaded(self, start_relay: StartRelay) -> None:
        relay = await start_relay(max_rooms_loaded=3, room_idle_s=60)
        held = [await relay.connect("ann", f"lim/b{i}") for i in range(3)]
        for ws in held:
            await synced(ws)
        extra = await relay.connect("ann", "lim/b3")
        code, reason = await closed_with(extra)
        assert code == CloseCode.AT_CAPACITY
        assert "max_rooms_loaded" in reason
        assert relay.stats.rooms_refused == 1
        assert len(relay.server.app[ROOMS].rooms) == 3
        await bystander_still_works(relay, held[0])  # loaded rooms keep working

    async def test_document_size(self, start_relay: StartRelay) -> None:
        relay = await start_relay(max_document_bytes=50_000)
        bystander = await relay.connect("bob")
        ws = await relay.connect("ann")
        await ws.send_bytes(text_update("small"))
        await synced(ws)
        await ws.send_bytes(text_update("y" * 60_000))
        code, reason = await closed_with(ws)
        assert code == CloseCode.DOCUMENT_TOO_LARGE
        assert "max_document_bytes" in reason
        assert relay.stats.documents_too_large == 1
        room = relay.server.app[ROOMS].loaded("lim/main")
        assert room is not None
        assert "y" not in str(room.doc.get("text", type=Text))  # refused, not applied
        await bystander_still_works(relay, bystander)

    async def test_malformed_frame(self, start_relay: StartRelay) -> None:
        relay = await start_relay()
        bystander = await relay.connect("bob")
        ws = await relay.connect("ann")
        await ws.send_bytes(b"\x00\x02\xff\xff\xff\xff\xff\xff\xff\xff\xff")
        code, reason = await closed_with(ws)
        assert code == CloseCode.MALFORMED
        assert reason.startswith("malformed frame")
        assert relay.stats.malformed_frames == 1
        await bystander_still_works(relay, bystander)
