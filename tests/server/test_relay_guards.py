"""The relay protects itself and others: bad frames, slow readers, limits, auth, readers."""

from __future__ import annotations

import asyncio
import logging
import socket
import sqlite3
from typing import Any, ClassVar

import aiohttp
import pytest
from pycrdt import Doc, Map, Text

from forge_server.client import AuthRefused, SyncClient, open_document, room_url
from forge_server.principal import Role, Unauthenticated
from forge_server.relay.app import LIMITER, ROOMS, STATS
from forge_server.relay.connection import CloseCode
from forge_server.relay.protocol import (
    AuthMessage,
    SyncMessage,
    SyncType,
    decode_message,
    encode_message,
)
from tests.conftest import ws_refusal

StartRelay = Any


def update_message(text: str, size: int = 0) -> bytes:
    doc = Doc()
    doc.get("text", type=Text).insert(0, text + "x" * size)
    return encode_message(SyncMessage(SyncType.UPDATE, doc.get_update()))


async def closed_with(ws: aiohttp.ClientWebSocketResponse, timeout: float = 5.0) -> int | None:
    """Read until the relay closes the socket; return the close code."""
    async with asyncio.timeout(timeout):
        while True:
            msg = await ws.receive()
            if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED):
                return ws.close_code
            if msg.type == aiohttp.WSMsgType.ERROR:
                return ws.close_code


async def wait_for(predicate: Any, timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.02)


class TestBadFrames:
    async def test_an_over_long_request_line_is_a_400_and_one_log_line(
            self, start_relay: StartRelay, caplog: pytest.LogCaptureFixture) -> None:
        relay = await start_relay()
        caplog.set_level(logging.INFO)

        def send(request: bytes) -> bytes:
            with socket.create_connection(("127.0.0.1", relay.port), timeout=10) as sock:
                sock.sendall(request)
                return sock.recv(100)

        for request in (b"GET /" + b"a" * 20_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
                        b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 20_000 + b"\r\n\r\n"):
            answer = await asyncio.to_thread(send, request)
            assert answer.startswith(b"HTTP/1.0 400") or answer.startswith(b"HTTP/1.1 400")
        await asyncio.sleep(0.1)
        server_records = [r for r in caplog.records if r.name == "aiohttp.server"]
        assert [r.levelname for r in server_records] == ["WARNING", "WARNING"]
        assert all(r.exc_info is None and "malformed request" in r.getMessage()
                   for r in server_records)
        assert all(len(r.getMessage()) < 300 for r in server_records)

    @pytest.mark.parametrize(
        ("frame", "reason"),
        [
            (b"\x07", "unknown message type"),
            (b"\x00\x01\x09abc", "exceeds"),  # step2 claiming 9 bytes, 3 present
            (b"\x00\x02\x03\xff\xff\xff", "invalid document update"),
            (b"\x01\x01\x01\x01\x01\x00", "JSON"),  # awareness with an empty (non-JSON) state
        ],
    )
    async def test_malformed_frame_closes_only_that_connection(
        self, start_relay: StartRelay, frame: bytes, reason: str
    ) -> None:
        relay = await start_relay()
        async with SyncClient(room_url(relay.url, "p/main")) as good, aiohttp.ClientSession() as s:
            await good.synced(5)
            bad = await s.ws_connect(relay.ws_url("p/main"))
            await bad.send_bytes(frame)
            assert await closed_with(bad) == CloseCode.MALFORMED
            assert relay.app[STATS].malformed_frames == 1
            good.doc.get("text", type=Text).insert(0, "still fine")
            await good.flush(5)
            assert good.connections == 1
            room = await relay.app[ROOMS].get("p/main")
            assert str(room.doc.get("text", type=Text)) == "still fine"

    async def test_close_reason_names_the_problem(self, start_relay: StartRelay) -> None:
        relay = await start_relay()
        async with aiohttp.ClientSession() as s:
            ws = await s.ws_connect(relay.ws_url("p/main"))
            await ws.send_str("hello")
            assert await closed_with(ws) == CloseCode.MALFORMED
            ws = await s.ws_connect(relay.ws_url("p/main"))
            await ws.send_bytes(b"\x09")
            msg = None
            async with asyncio.timeout(5):
                while True:
                    msg = await ws.receive()
                    if msg.type == aiohttp.WSMsgType.CLOSE:
                        break
            assert "malformed frame: unknown message type 9" in msg.extra

    async def test_oversized_frame_closed_with_1009(self, start_relay: StartRelay) -> None:
        relay = await start_relay(max_frame_bytes=4096)
        async with aiohttp.ClientSession() as s:
            ws = await s.ws_connect(relay.ws_url("p/main"))
            await ws.send_bytes(update_message("big", size=10_000))
            assert await closed_with(ws) == CloseCode.MESSAGE_TOO_BIG
        await wait_for(lambda: relay.app[STATS].oversized_frames == 1)
        room = await relay.app[ROOMS].get("p/main")
        assert str(room.doc.get("text", type=Text)) == ""


class TestSlowConsumer:
    async def test_client_that_never_reads_is_disconnected(self, start_relay: StartRelay) -> None:
        relay = await start_relay(
            send_queue_messages=20, send_queue_bytes=256 * 1024, max_bytes_per_second=1e9
        )
        # A raw socket that completes the upgrade and then never reads a byte.
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", relay.port))
        sock.sendall(
            b"GET /sync/p/main HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            b"Sec-WebSocket-Version: 13\r\n\r\n"
        )
        try:
            async with SyncClient(room_url(relay.url, "p/main")) as writer:
                await writer.synced(5)
                await wait_for(lambda: relay.app[ROOMS].connection_count == 2)
                text = writer.doc.get("text", type=Text)
                for i in range(150):  # ~6 MB: more than the kernel's socket buffers hold
                    text.insert(0, f"{i:04d}" + "y" * 40_000)
                    if i % 10 == 0:
                        await writer.flush(5)  # the writer keeps being served meanwhile
                await wait_for(lambda: relay.app[STATS].slow_consumers == 1)
                await wait_for(lambda: relay.app[ROOMS].connection_count == 1)
                await writer.flush(5)
                assert writer.connections == 1
        finally:
            sock.close()


def test_clients_are_told_which_refusals_are_final() -> None:
    # y-websocket gives up on 4400-4499 and retries everything else with backoff.
    final = {CloseCode.MALFORMED, CloseCode.UNAUTHENTICATED, CloseCode.FORBIDDEN,
             CloseCode.NOT_FOUND, CloseCode.DOCUMENT_TOO_LARGE}
    for code in CloseCode:
        assert (4400 <= code < 4500) == (code in final), code


class TestLimits:
    async def test_rate_limit_closes_for_a_retry(self, start_relay: StartRelay) -> None:
        relay = await start_relay(max_messages_per_second=20)
        async with aiohttp.ClientSession() as s:
            ws = await s.ws_connect(relay.ws_url("p/main"))
            for _ in range(40):
                await ws.send_bytes(b"\x03")  # queryAwareness
            assert await closed_with(ws) == CloseCode.RATE_LIMITED
        assert relay.app[STATS].rate_limited == 1

    async def test_byte_rate_limit(self, start_relay: StartRelay) -> None:
        relay = await start_relay(max_bytes_per_second=10_000)
        async with aiohttp.ClientSession() as s:
            ws = await s.ws_connect(relay.ws_url("p/main"))
            for i in range(5):
                await ws.send_bytes(update_message(str(i), size=4000))
            assert await closed_with(ws) == CloseCode.RATE_LIMITED

    async def test_document_size_limit(self, start_relay: StartRelay) -> None:
        relay = await start_relay(max_document_bytes=20_000)
        async with SyncClient(room_url(relay.url, "p/main")) as other, aiohttp.ClientSession() as s:
            await other.synced(5)
            ws = await s.ws_connect(relay.ws_url("p/main"))
            await ws.send_bytes(update_message("a", size=12_000))
            await ws.send_bytes(update_message("b", size=12_000))
            assert await closed_with(ws) == CloseCode.DOCUMENT_TOO_LARGE
            assert relay.app[STATS].documents_too_large == 1
            room = await relay.app[ROOMS].get("p/main")
            assert len(str(room.doc.get("text", type=Text))) == 12_001
            await other.flush(5)  # others unaffected
            assert other.connections == 1

    async def test_connections_per_user_and_ip(self, start_relay: StartRelay) -> None:
        relay = await start_relay(max_connections_per_user=2)
        async with aiohttp.ClientSession() as s:
            ws1 = await s.ws_connect(relay.ws_url("p/main"))
            ws2 = await s.ws_connect(relay.ws_url("p/other"))
            ws3 = await s.ws_connect(relay.ws_url("p/main"))
            assert await closed_with(ws3) == CloseCode.TOO_MANY_CONNECTIONS
            assert relay.app[STATS].connection_limit == 1
            await ws1.close()
            await wait_for(lambda: relay.app[ROOMS].connection_count == 1)
            ws4 = await s.ws_connect(relay.ws_url("p/main"))
            assert decode_message(await ws4.receive_bytes()) == SyncMessage(SyncType.STEP1, b"\x00")
            await ws2.close()
            await ws4.close()

        # Per address, only upgrades still being authenticated count: a flood of them waits
        # its turn (HTTP 429); authenticated connections count against their user only.
        gate = asyncio.Event()

        class SlowAuthorizer:
            async def authenticate(self, token: str | None) -> str:
                await gate.wait()
                return token or "anon"

            async def role(self, user: str, project: str) -> Role | None:
                return Role.WRITER

        relay = await start_relay(max_connections_per_ip=2, authorizer=SlowAuthorizer())
        async with aiohttp.ClientSession() as s:
            pending = [asyncio.ensure_future(s.ws_connect(relay.ws_url("p/main"),
                                                          params={"token": user}))
                       for user in ("ann", "bob")]
            await wait_for(lambda: relay.app[LIMITER].per_ip.get("127.0.0.1") == 2)
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await s.ws_connect(relay.ws_url("p/main"), params={"token": "cid"})
            assert refused.value.status == 429
            gate.set()
            sockets = [await p for p in pending]
            more = [await s.ws_connect(relay.ws_url("p/main"), params={"token": "ann"})
                    for _ in range(3)]  # same address, well past 2: per user now
            for ws in sockets + more:
                assert decode_message(await ws.receive_bytes()).kind == SyncType.STEP1  # type: ignore[union-attr]
                await ws.close()

    async def test_rooms_loaded_limit(self, start_relay: StartRelay) -> None:
        relay = await start_relay(max_rooms_loaded=2)
        async with aiohttp.ClientSession() as s:
            ws1 = await s.ws_connect(relay.ws_url("p/a"))
            ws2 = await s.ws_connect(relay.ws_url("p/b"))
            await ws1.receive_bytes()
            await ws2.receive_bytes()
            ws3 = await s.ws_connect(relay.ws_url("p/c"))
            assert await closed_with(ws3) == CloseCode.AT_CAPACITY
            assert relay.app[STATS].rooms_refused == 1
            # Once a room is idle, it makes way for a new one.
            await ws1.close()
            await wait_for(lambda: relay.app[ROOMS].connection_count == 1)
            ws4 = await s.ws_connect(relay.ws_url("p/c"))
            assert decode_message(await ws4.receive_bytes()).kind == SyncType.STEP1  # type: ignore[union-attr]
            assert relay.app[ROOMS].loaded("p/a") is None
            await ws2.close()
            await ws4.close()


class TokenTable:
    """An Authorizer over a fixed token table (the real one lives in forge_server.auth)."""

    users: ClassVar[dict[str, str]] = {
        "owner-token": "ann",
        "writer-token": "wes",
        "reader-token": "rita",
        "x-token": "xi",
    }
    roles: ClassVar[dict[str, Role]] = {"ann": Role.OWNER, "wes": Role.WRITER, "rita": Role.READER}

    async def authenticate(self, token: str | None) -> str:
        if token not in self.users:
            raise Unauthenticated("missing or unknown token")
        return self.users[token]

    async def role(self, user: str, project: str) -> Role | None:
        return self.roles.get(user) if project == "p" else None


class TestAuth:
    async def test_refused_before_upgrade(self, start_relay: StartRelay) -> None:
        relay = await start_relay(authorizer=TokenTable())
        async with aiohttp.ClientSession() as s:
            for headers, status in [
                ({}, 401),
                ({"Authorization": "Bearer garbage"}, 401),
                ({"Authorization": "Bearer x-token"}, 403),
            ]:
                code, _ = await ws_refusal(s, relay.ws_url("p/main"), headers=headers)
                assert code == 4000 + status
            ws = await s.ws_connect(relay.ws_url("p/main") + "?token=writer-token")
            assert decode_message(await ws.receive_bytes()).kind == SyncType.STEP1  # type: ignore[union-attr]
            await ws.close()
            async with s.get(f"{relay.url}/api/projects?token=reader-token") as resp:
                assert (await resp.json())["projects"][0]["role"] == "reader"
            async with s.get(f"{relay.url}/api/projects") as resp:
                assert resp.status == 401
        assert relay.app[STATS].auth_failures == 4

        with pytest.raises(AuthRefused, match="401"):
            async with open_document(relay.url, "garbage", "p/main"):
                pass

    async def test_reader_updates_refused_and_document_unchanged(
        self, start_relay: StartRelay
    ) -> None:
        relay = await start_relay(authorizer=TokenTable())
        url = room_url(relay.url, "p/main")
        async with (
            SyncClient(url, token="writer-token") as writer,
            SyncClient(url, token="reader-token") as reader,
        ):
            await asyncio.gather(writer.synced(5), reader.synced(5))
            refusals: list[str] = []
            reader.on_permission_denied(refusals.append)
            writer.doc.get("map", type=Map)["by"] = "writer"
            await writer.flush(5)
            await wait_for(lambda: reader.doc.get("map", type=Map).to_py() == {"by": "writer"})
            # The reader edits: the relay refuses, tells it, and nobody else sees the edit.
            reader.doc.get("map", type=Map)["by"] = "reader"
            await wait_for(lambda: reader.permission_denied is not None)
            assert "permission denied" in (reader.permission_denied or "")
            assert refusals == [reader.permission_denied]
            assert relay.app[STATS].refused_updates == 1
            room = await relay.app[ROOMS].get("p/main")
            assert room.doc.get("map", type=Map).to_py() == {"by": "writer"}
            await writer.flush(5)
            assert writer.doc.get("map", type=Map).to_py() == {"by": "writer"}
            # Readers still see live edits and presence.
            writer.awareness.set_local_state({"user": {"name": "wes"}})
            writer.doc.get("text", type=Text).insert(0, "live")
            await wait_for(lambda: str(reader.doc.get("text", type=Text)) == "live")
            await wait_for(lambda: {"user": {"name": "wes"}} in reader.awareness.states.values())

    async def test_raw_reader_gets_permission_denied_message(self, start_relay: StartRelay) -> None:
        relay = await start_relay(authorizer=TokenTable())
        # Readers open existing branches only (an unknown one is 404).
        await relay.app[ROOMS].create("p/main", Doc().get_update())
        async with aiohttp.ClientSession() as s:
            ws = await s.ws_connect(
                relay.ws_url("p/main"), headers={"Authorization": "Bearer reader-token"}
            )
            await ws.receive_bytes()  # the relay's sync step 1
            await ws.send_bytes(update_message("sneaky"))
            reply = decode_message(await ws.receive_bytes())
            assert isinstance(reply, AuthMessage)
            assert reply.reason.startswith("permission denied")
            await ws.close()


async def test_tokens_never_reach_the_logs(
    start_relay: StartRelay, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    relay = await start_relay(authorizer=TokenTable())
    async with aiohttp.ClientSession() as s:
        ws = await s.ws_connect(relay.ws_url("p/main") + "?token=writer-token")
        await ws.receive_bytes()
        await ws.send_bytes(b"\x09")  # malformed: logged with the connection's details
        await closed_with(ws)
        for token in ("garbage-s3cret", "x-token"):
            assert (await ws_refusal(s, relay.ws_url("p/main") + f"?token={token}"))[0] in (
                4401, 4403)
        async with s.get(f"{relay.url}/api/projects?token=reader-token") as resp:
            assert resp.status == 200
    await relay.stop()
    assert "GET /sync/p/main" in caplog.text  # the access log ran, without the query
    assert "malformed frame" in caplog.text
    for secret in ("writer-token", "garbage-s3cret", "x-token", "reader-token"):
        assert secret not in caplog.text


async def test_a_room_that_cannot_load_is_refused_clearly(start_relay: StartRelay) -> None:
    relay = await start_relay()
    with sqlite3.connect(relay.config.db_path) as db:
        db.execute(
            "INSERT INTO room_updates (room, data, author, created) VALUES (?, ?, NULL, 0)",
            ("p/broken", b"\xff\xff\xff"),
        )
    async with aiohttp.ClientSession() as s:
        ws = await s.ws_connect(relay.ws_url("p/broken"))
        assert await closed_with(ws) == CloseCode.INTERNAL_ERROR
        ws = await s.ws_connect(relay.ws_url("p/fine"))  # the relay carries on
        assert decode_message(await ws.receive_bytes()).kind == SyncType.STEP1  # type: ignore[union-attr]
        await ws.close()
