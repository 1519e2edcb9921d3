"""The Python sync client: status, synced, flush, auth refusal, unreachable server, serve CLI."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from pycrdt import Doc, Map, Text

from forge_server.client import (
    AuthRefused,
    ConnectionStatus,
    SyncClient,
    SyncError,
    TransportClosed,
    open_document,
    room_url,
)
from forge_server.principal import Unauthenticated
from forge_server.relay.config import RelayConfig
from forge_server.relay.protocol import SyncMessage, SyncType, decode_message, encode_message

StartRelay = Any


async def wait_for(predicate: Any, timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.02)


def test_room_url() -> None:
    assert room_url("http://h:8700", "p/main") == "ws://h:8700/sync/p/main"
    assert room_url("https://h/", "p/executions/e1") == "wss://h/sync/p/executions/e1"
    assert room_url("ws://h:1", "/p/b/") == "ws://h:1/sync/p/b"
    with pytest.raises(ValueError, match="must start with"):
        room_url("h:8700", "p/main")


async def test_status_changes_and_synced(start_relay: StartRelay) -> None:
    relay = await start_relay()
    seen: list[ConnectionStatus] = []
    client = SyncClient(room_url(relay.url, "p/main"))
    client.on_status(seen.append)
    assert client.status == ConnectionStatus.OFFLINE
    async with client:
        await client.synced(5)
        assert client.is_synced
        assert client.status == ConnectionStatus.CONNECTED
    assert seen == [
        ConnectionStatus.CONNECTING,
        ConnectionStatus.CONNECTED,
        ConnectionStatus.OFFLINE,
    ]


async def test_open_document_exit_waits_until_stored(start_relay: StartRelay) -> None:
    relay = await start_relay()
    doc: Doc = Doc()
    async with open_document(relay.url, None, "p/main", doc=doc) as client:
        assert client.doc is doc
        doc.get("map", type=Map)["k"] = "v"
        doc.get("text", type=Text).insert(0, "é中🎉")
    # Straight from the store of a restarted relay: the edits were on disk at exit.
    data_dir = relay.config.data_dir
    await relay.stop()
    relay = await start_relay(data_dir=data_dir)
    async with open_document(relay.url, None, "p/main") as again:
        assert again.doc.get("map", type=Map).to_py() == {"k": "v"}
        assert str(again.doc.get("text", type=Text)) == "é中🎉"


class Nobody:
    async def authenticate(self, token: str | None) -> str:
        raise Unauthenticated("no such token")

    async def role(self, user: str, project: str) -> None:
        return None


async def test_refused_token_is_final(start_relay: StartRelay) -> None:
    relay = await start_relay(authorizer=Nobody())
    async with SyncClient(room_url(relay.url, "p/main"), token="t0ken-s3cret") as client:
        with pytest.raises(AuthRefused, match="401") as info:
            await client.synced(5)
        assert client.status == ConnectionStatus.OFFLINE
        assert "t0ken-s3cret" not in str(info.value)


async def test_unreachable_server_is_a_clear_error() -> None:
    with pytest.raises(SyncError, match="could not sync room 'p/main'"):
        async with open_document("http://127.0.0.1:9", None, "p/main", timeout=0.5):
            pass


def test_forge_serve_prints_url_serves_and_stops(tmp_path: Path, serve_process: Any) -> None:
    server = serve_process(tmp_path / "data", "--no-auth")
    assert any("listening on http://127.0.0.1:" in line for line in server.output)

    async def edit_and_check() -> dict[str, Any]:
        async with open_document(server.url, None, "p/main") as client:
            client.doc.get("text", type=Text).insert(0, "served")
        async with aiohttp.ClientSession() as s, s.get(f"{server.url}/health") as resp:
            return dict(await resp.json())

    health = asyncio.run(edit_and_check())
    assert health["status"] == "ok"
    assert server.stop() == 0  # SIGTERM: graceful
    assert (tmp_path / "data" / "forge.db").exists()


def test_forge_serve_reports_a_busy_port(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "forge_tui",
                "serve",
                "--no-auth",
                "--port",
                str(port),
                "--data-dir",
                str(tmp_path / "data"),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "choose another --port" in result.stderr


def test_relay_settings_from_the_command_line(tmp_path: Path) -> None:
    config = RelayConfig.from_settings(
        tmp_path, ["max_rooms_loaded=5", "heartbeat-s=2.5", "max_frame_bytes=1e6"]
    )
    assert (config.max_rooms_loaded, config.heartbeat_s, config.max_frame_bytes) == (5, 2.5, 10**6)
    with pytest.raises(ValueError, match="NAME=VALUE with NAME one of: max_frame_bytes"):
        RelayConfig.from_settings(tmp_path, ["bogus=1"])
    with pytest.raises(ValueError, match="needs a number"):
        RelayConfig.from_settings(tmp_path, ["max_rooms_loaded=many"])
    with pytest.raises(ValueError, match="must be positive"):
        RelayConfig.from_settings(tmp_path, ["max_rooms_loaded=0"])


async def test_many_small_edits_are_paced_and_merged(start_relay: StartRelay) -> None:
    relay = await start_relay(max_messages_per_second=50)
    async with SyncClient(room_url(relay.url, "p/main"), max_messages_per_second=40) as client:
        await client.synced(5)
        items = client.doc.get("map", type=Map)
        for i in range(400):  # 400 transactions, far above the relay's 50 messages/s
            items[f"k{i}"] = i
            await asyncio.sleep(0.002)  # let the sender run between edits
        await client.flush(10)
        assert client.connections == 1  # never closed for exceeding the rate
    async with open_document(relay.url, None, "p/main") as check:
        assert len(check.doc.get("map", type=Map).to_py()) == 400


class MemoryTransport:
    """One end of an in-memory channel: what the client sends, the test reads, and back."""

    def __init__(self) -> None:
        self.to_client: asyncio.Queue[bytes | None] = asyncio.Queue()
        self.from_client: asyncio.Queue[bytes] = asyncio.Queue()

    async def send(self, message: bytes) -> None:
        await self.from_client.put(message)

    async def recv(self) -> bytes:
        message = await self.to_client.get()
        if message is None:
            raise TransportClosed(1000, "test closed it")
        return message

    async def close(self) -> None:
        pass


async def test_client_protocol_over_an_in_memory_transport() -> None:
    transports: list[MemoryTransport] = []
    gate = asyncio.Event()  # cleared: the "relay" is unreachable
    gate.set()

    async def connect() -> MemoryTransport:
        await gate.wait()
        transports.append(MemoryTransport())
        return transports[-1]

    async def next_message(t: MemoryTransport) -> object:
        return decode_message(await asyncio.wait_for(t.from_client.get(), 5))

    server = Doc()
    server.get("text", type=Text).insert(0, "server text")
    async with SyncClient("mem://room", connector=connect, backoff_initial=0.01) as client:
        t = await asyncio.wait_for(_first(transports), 5)
        step1 = await next_message(t)
        assert isinstance(step1, SyncMessage) and step1.kind == SyncType.STEP1
        # The "relay" answers the client's step 1 and sends its own.
        update = server.get_update(step1.payload)
        await t.to_client.put(encode_message(SyncMessage(SyncType.STEP2, update)))
        await t.to_client.put(encode_message(SyncMessage(SyncType.STEP1, server.get_state())))
        await client.synced(5)
        assert str(client.doc.get("text", type=Text)) == "server text"
        reply = await next_message(t)
        assert isinstance(reply, SyncMessage) and reply.kind == SyncType.STEP2

        client.doc.get("map", type=Map)["k"] = 1
        sent = await next_message(t)
        assert isinstance(sent, SyncMessage) and sent.kind == SyncType.UPDATE
        server.apply_update(sent.payload)
        assert server.get("map", type=Map).to_py() == {"k": 1.0}

        # Dropped: edits made offline travel in the next handshake's step 2.
        gate.clear()
        await t.to_client.put(None)
        await wait_for(lambda: client.status == ConnectionStatus.RECONNECTING)
        client.doc.get("map", type=Map)["offline"] = True
        gate.set()
        await wait_for(lambda: len(transports) == 2)
        t2 = transports[1]
        step1 = await next_message(t2)
        assert isinstance(step1, SyncMessage) and step1.kind == SyncType.STEP1
        await t2.to_client.put(encode_message(SyncMessage(SyncType.STEP1, server.get_state())))
        reply = await next_message(t2)
        assert isinstance(reply, SyncMessage) and reply.kind == SyncType.STEP2
        server.apply_update(reply.payload)
        assert server.get("map", type=Map).to_py() == {"k": 1.0, "offline": True}


async def _first(items: list[MemoryTransport]) -> MemoryTransport:
    while not items:
        await asyncio.sleep(0.01)
    return items[0]
