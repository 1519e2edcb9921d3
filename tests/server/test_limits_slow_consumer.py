"""A client that never reads: it stays within its bounded queue and does not hold others up.

Real `forge serve` subprocess (default limits: 1000 messages / 16 MiB queued per connection);
the slow consumer is a raw socket that completes the WebSocket handshake and then never reads.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import threading
from pathlib import Path
from typing import Any

import aiohttp
import psutil
import pytest

from forge_server.relay.protocol import (
    AwarenessEntry,
    AwarenessMessage,
    decode_awareness,
    decode_message,
    encode_awareness,
    encode_message,
)

MESSAGES = 1000
STATE = json.dumps({"user": {"name": "sender"}, "blob": "z" * 48_000})  # ~48 kB each
SENDER_ID = 777


def never_reading_client(port: int, room: str, token: str) -> socket.socket:
    """A WebSocket client that completes the handshake and then never reads again."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            f"GET /sync/{room} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            "Upgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            f"Authorization: Bearer {token}\r\n\r\n"
        ).encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(1)
    assert head.startswith(b"HTTP/1.1 101"), head
    return sock


class RssSampler:
    def __init__(self, pid: int) -> None:
        self.process = psutil.Process(pid)
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.process.memory_info().rss)
            self._stop.wait(0.01)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


@pytest.mark.slow
async def test_slow_consumer_is_bounded_and_does_not_delay_others(
    tmp_path: Path, serve_process: Any
) -> None:
    # Large, fast presence updates are this test's traffic: lift the presence caps.
    server = serve_process(
        tmp_path,
        "--log-level",
        "WARNING",
        "--relay-setting",
        "max_awareness_state_bytes=65536",
        "--relay-setting",
        "max_awareness_updates_per_second=10000",
    )
    server.create_project("slow")
    token = server.token
    headers = {"Authorization": f"Bearer {token}"}
    ws_url = server.url.replace("http", "ws") + "/sync/slow/main"
    received = 0
    async with aiohttp.ClientSession() as http:
        reader = await http.ws_connect(ws_url, headers=headers)
        sender = await http.ws_connect(ws_url, headers=headers)
        slow = never_reading_client(server.port, "slow/main", token)

        async def read_all() -> None:
            nonlocal received
            while received < MESSAGES:
                msg = await reader.receive()
                assert msg.type == aiohttp.WSMsgType.BINARY, msg
                message = decode_message(msg.data)
                if isinstance(message, AwarenessMessage):
                    entries = decode_awareness(message.payload)
                    received += sum(e.client_id == SENDER_ID for e in entries)

        reading = asyncio.ensure_future(read_all())
        await asyncio.sleep(0.3)  # everyone joined
        baseline = psutil.Process(server.proc.pid).memory_info().rss
        with RssSampler(server.proc.pid) as rss:
            for clock in range(1, MESSAGES + 1):
                entry = AwarenessEntry(SENDER_ID, clock, STATE)
                await sender.send_bytes(encode_message(AwarenessMessage(encode_awareness([entry]))))
                if clock % 25 == 0:
                    # ~6 MB/s, 125 messages/s: well under the per-connection rate limits
                    await asyncio.sleep(0.2)
            async with asyncio.timeout(60):
                await reading
        async with http.get(f"{server.url}/health") as response:
            health = await response.json()
        await reader.close()
        await sender.close()
    slow.close()

    backlog = MESSAGES * len(STATE)  # what the slow consumer would hold if it were not bounded
    growth = rss.peak - baseline
    print(f"backlog {backlog / 2**20:.0f} MiB, server RSS growth {growth / 2**20:.1f} MiB")
    assert received == MESSAGES  # the reader got every message while the other one stalled
    assert health["counters"]["slow_consumers"] == 1
    assert health["counters"]["rate_limited"] == 0
    assert growth < backlog / 2, (growth, backlog)
