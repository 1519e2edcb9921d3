"""Close codes as the real JavaScript client reads them (y-websocket 3.1.0 under Node): after a
permanent refusal (4400-4499: token revoked, role removed) it stops reconnecting; after a
transient one (45xx: the relay at capacity, a rate limit) it keeps retrying with backoff and syncs
once it may again.

y-websocket's ``defaultShouldReconnect`` is ``!(code >= 4400 && code < 4500)``: these tests
check that the relay's codes land on the right side of it, with the real client."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from js_peer import JsPeer, missing_reason
from pycrdt import Text

from forge_server.auth import AuthStore, TokenAuthorizer
from forge_server.client import SyncClient, room_url
from forge_server.relay.app import STATS
from forge_server.relay.config import RelayConfig
from forge_server.relay.connection import CloseCode
from forge_server.relay.server import RelayServer

_MISSING = missing_reason()
pytestmark = [
    pytest.mark.interop,
    pytest.mark.skipif(_MISSING is not None, reason=_MISSING or ""),
]

# y-websocket backs off 2**n * 100 ms between attempts, at most maxBackoffTime (2500 ms): a
# client that meant to reconnect has tried again well within this.
LONGEST_BACKOFF_S = 2.5


@pytest_asyncio.fixture(loop_scope="session")
async def js() -> AsyncIterator[JsPeer]:
    peer = await JsPeer.start()
    yield peer
    await peer.close()


async def eventually(check: Callable[[], Any], timeout: float = 10.0) -> Any:
    """Poll an async predicate until it returns something true; that value."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = await check()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(0.05)


def sync_url(relay: RelayServer) -> str:
    # y-websocket connects to `${serverUrl}/${roomname}`: /sync/{project}/{branch}
    return relay.ws_url("").rstrip("/")


@pytest_asyncio.fixture(loop_scope="session")
async def lab(tmp_path: Path) -> AsyncIterator[tuple[RelayServer, AuthStore]]:
    store = AuthStore.open(tmp_path)
    for user in ("alice", "bob"):
        store.add_user(user)
    store.create_project("lab", "alice")
    store.grant("bob", "lab", "writer")
    config = RelayConfig(data_dir=tmp_path)
    async with RelayServer(config, authorizer=TokenAuthorizer(store)) as relay:
        yield relay, store
    store.close()


@pytest.mark.parametrize("revoke", ["token", "role"])
async def test_js_client_stops_after_a_permanent_refusal(
    js: JsPeer, lab: tuple[RelayServer, AuthStore], revoke: str
) -> None:
    relay, store = lab
    token, info = store.create_token("bob")
    await js.connect(sync_url(relay), "lab/main", {"token": token})
    assert (await js.closes())["codes"] == []
    if revoke == "token":
        store.revoke_token(info.token_id)
        expected = CloseCode.UNAUTHENTICATED
    else:
        store.revoke_role("bob", "lab")
        expected = CloseCode.FORBIDDEN

    async def stopped() -> dict[str, Any] | None:
        seen = await js.closes()
        return seen if seen["terminal"] is not None else None

    seen = await eventually(stopped, timeout=5)
    assert seen["terminal"] == expected and seen["codes"] == [expected]
    assert seen["shouldConnect"] is False
    opened = relay.app[STATS].connections_opened
    await asyncio.sleep(LONGEST_BACKOFF_S + 0.5)  # a retry would have come by now
    later = await js.closes()
    assert later["attempts"] == seen["attempts"] == 1
    assert later["codes"] == [expected]
    assert relay.app[STATS].connections_opened == opened
    await js.disconnect()


@pytest.mark.parametrize("refusal", ["revoked token", "no role", "unknown project"])
async def test_js_client_refused_at_connect_stops_at_once(
    js: JsPeer, lab: tuple[RelayServer, AuthStore], refusal: str
) -> None:
    """Refused before it ever syncs: the relay accepts the upgrade only to close it with
    4401/4403/4404, so the client stops; an HTTP 401 would look like a network error that
    y-websocket retries every 2.5 s forever."""
    relay, store = lab
    if not store.user_exists("carol"):
        store.add_user("carol")
    token, info = store.create_token("bob" if refusal != "no role" else "carol")
    room, expected = "lab/main", {
        "revoked token": CloseCode.UNAUTHENTICATED,
        "no role": CloseCode.FORBIDDEN,
        "unknown project": CloseCode.NOT_FOUND,
    }[refusal]
    if refusal == "revoked token":
        store.revoke_token(info.token_id)
    if refusal == "unknown project":
        room = "nowhere/main"
    failures = relay.app[STATS].auth_failures
    await js.connect(sync_url(relay), room, {"token": token}, wait=False)

    async def stopped() -> dict[str, Any] | None:
        seen = await js.closes()
        return seen if seen["terminal"] is not None else None

    seen = await eventually(stopped, timeout=5)
    assert seen["terminal"] == expected and seen["shouldConnect"] is False
    await asyncio.sleep(LONGEST_BACKOFF_S + 0.5)  # a retry would have come by now
    assert (await js.closes())["attempts"] == 1
    assert relay.app[STATS].auth_failures == failures + 1
    await js.disconnect()


async def test_js_client_keeps_retrying_a_full_relay_and_syncs_when_it_has_room(
    js: JsPeer, tmp_path: Path
) -> None:
    config = RelayConfig(
        data_dir=tmp_path, max_rooms_loaded=1, room_idle_s=0.2, sweep_interval_s=0.1
    )
    async with RelayServer(config) as relay:
        holder = SyncClient(room_url(relay.url, "p/held"))
        await holder.start()
        await holder.synced(5)  # the one room the relay may load
        await js.connect(sync_url(relay), "p/wanted", wait=False)

        async def refused_twice() -> dict[str, Any] | None:
            seen = await js.closes()
            return seen if seen["codes"].count(CloseCode.AT_CAPACITY) >= 2 else None

        seen = await eventually(refused_twice, timeout=5)
        assert seen["terminal"] is None and seen["shouldConnect"] is True
        assert relay.app[STATS].rooms_refused >= 2
        await holder.stop()  # its room unloads after room_idle_s: room for one more
        await js.synced(timeout=10)
        await js.edit({"op": "text_insert", "text": "code", "index": 0, "value": "made it"})
        async with SyncClient(room_url(relay.url, "p/wanted")) as reader:
            await reader.synced(5)
            text = reader.doc.get("code", type=Text)
            await eventually(_is(lambda: str(text) == "made it"), timeout=5)
        seen = await js.closes()
        assert seen["terminal"] is None and set(seen["codes"]) == {CloseCode.AT_CAPACITY}
        await js.disconnect()


def _is(predicate: Callable[[], bool]) -> Callable[[], Any]:
    async def check() -> bool:
        return predicate()

    return check


async def test_js_client_reconnects_after_being_rate_limited_and_its_edits_arrive(
    js: JsPeer, tmp_path: Path
) -> None:
    config = RelayConfig(data_dir=tmp_path, max_messages_per_second=3)
    async with RelayServer(config) as relay:
        await js.connect(sync_url(relay), "p/fast")
        for index in range(10):  # ten edits, ten messages at once: over 3 per second
            await js.edit({"op": "text_insert", "text": "code", "index": 0, "value": str(index)})

        async def limited() -> dict[str, Any] | None:
            seen = await js.closes()
            return seen if CloseCode.RATE_LIMITED in seen["codes"] else None

        seen = await eventually(limited, timeout=5)
        assert seen["terminal"] is None and seen["shouldConnect"] is True
        await js.synced(timeout=10)  # reconnected; its sync step 2 carries every edit
        async with SyncClient(room_url(relay.url, "p/fast")) as reader:
            await reader.synced(5)
            text = reader.doc.get("code", type=Text)
            await eventually(_is(lambda: str(text) == "9876543210"), timeout=5)
        assert (await js.closes())["terminal"] is None
        await js.disconnect()
