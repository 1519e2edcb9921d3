"""Open sockets follow their credentials: revoking a token or a role closes that user's open
WebSockets at once with a permanent (44xx) code, and a role changed to reader stops edits."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
import pytest_asyncio
from pycrdt import Map

from forge_server.auth import AuthStore, TokenAuthorizer
from forge_server.auth.routes import setup_auth_routes
from forge_server.client import SyncClient, room_url
from forge_server.relay.config import RelayConfig
from forge_server.relay.connection import CloseCode
from forge_server.relay.server import RelayServer


@pytest_asyncio.fixture(loop_scope="session")
async def relay(tmp_path: Path) -> AsyncIterator[tuple[RelayServer, AuthStore]]:
    store = AuthStore.open(tmp_path)
    for user in ("alice", "bob"):
        store.add_user(user)
    store.create_project("lab", "alice")
    store.grant("bob", "lab", "writer")
    async with RelayServer(RelayConfig(data_dir=tmp_path), authorizer=TokenAuthorizer(store),
                           setups=[setup_auth_routes]) as server:
        yield server, store
    store.close()


async def closed_within(ws: aiohttp.ClientWebSocketResponse, seconds: float) -> int | None:
    """The close code the relay sent within ``seconds`` (None if the socket stayed open)."""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        try:
            message = await ws.receive(timeout=left)
        except TimeoutError:
            return None
        if message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED):
            return ws.close_code
    return None


@pytest.mark.parametrize("revoke", ["token", "role"])
async def test_revoking_closes_open_sockets_at_once(
        relay: tuple[RelayServer, AuthStore], revoke: str) -> None:
    server, store = relay
    bob_token, bob_info = store.create_token("bob")
    alice_token, _ = store.create_token("alice")
    url = server.ws_url("lab/main")
    async with aiohttp.ClientSession() as http:
        bob = [await http.ws_connect(url, headers={"Authorization": f"Bearer {bob_token}"})
               for _ in range(2)]
        alice = await http.ws_connect(url, headers={"Authorization": f"Bearer {alice_token}"})
        if revoke == "token":
            store.revoke_token(bob_info.token_id)
            expected = CloseCode.UNAUTHENTICATED
        else:
            store.revoke_role("bob", "lab")
            expected = CloseCode.FORBIDDEN
        codes = await asyncio.gather(*(closed_within(ws, 1.5) for ws in bob))
        assert codes == [expected, expected]
        assert 4400 <= expected < 4500  # permanent: y-websocket clients do not retry
        assert await closed_within(alice, 1.0) is None  # everyone else is unaffected
        await alice.close()


async def test_a_writer_made_reader_can_no_longer_edit(
        relay: tuple[RelayServer, AuthStore]) -> None:
    server, store = relay
    token, _ = store.create_token("bob")
    client = SyncClient(room_url(server.url, "lab/main"), token=token)
    denied: list[str] = []
    client.on_permission_denied(denied.append)
    async with client:
        await client.synced(10)
        store.grant("bob", "lab", "reader")
        await asyncio.sleep(1.2)  # the relay checks open sockets twice a second
        client.doc["notes"] = Map({"by": "bob"})
        async with asyncio.timeout(5):
            while not denied:
                await asyncio.sleep(0.05)
    assert "read" in denied[0]
