"""Shared fixtures: a real relay on a real port, sync clients for it, `forge serve` subprocesses.

- ``relay``: a session-wide in-process relay (``RelayServer``) on a free port with a temporary
  data dir and ``AllowAll`` auth. Rooms are shared across tests: take fresh names from the
  ``new_room`` fixture (``new_room()`` → ``"t-1a2b3c…/main"``; ``new_room("proj")``).
- ``make_client``: ``await make_client(room, doc=None, token=None)`` → a started ``SyncClient``
  on ``relay`` (stopped after the test); pass ``server=...`` to use another relay.
- ``serve_process``: ``serve_process(data_dir, *extra_args)`` → a ``ServeProcess`` running
  ``forge serve`` in a subprocess (``.url``, ``.kill()`` for SIGKILL, ``.stop()``, ``.restart()``;
  ``env=`` adds environment variables); every process is stopped after the test.
"""

from __future__ import annotations

import asyncio
import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from pycrdt import Doc

from forge_server.client import SyncClient, room_url
from forge_server.relay.config import RelayConfig
from forge_server.relay.server import RelayServer


def unique_room(project: str = "t") -> str:
    """A fresh room name ``{project}-{random}/main`` so tests never share documents."""
    return f"{project}-{uuid.uuid4().hex[:10]}/main"


@pytest.fixture
def new_room() -> Callable[..., str]:
    """``new_room(project="t")`` → a fresh room name (tests share one relay)."""
    return unique_room


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def relay(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[RelayServer]:
    data_dir = tmp_path_factory.mktemp("relay-data")
    async with RelayServer(RelayConfig(data_dir=data_dir)) as server:
        yield server


MakeClient = Callable[..., Awaitable[SyncClient]]


@pytest_asyncio.fixture(loop_scope="session")
async def make_client(relay: RelayServer) -> AsyncIterator[MakeClient]:
    clients: list[SyncClient] = []

    async def make(
        room: str,
        doc: Doc | None = None,
        *,
        token: str | None = None,
        server: str | None = None,
        **kwargs: Any,
    ) -> SyncClient:
        client = SyncClient(room_url(server or relay.url, room), doc, token=token, **kwargs)
        clients.append(client)
        await client.start()
        return client

    yield make
    for client in clients:
        await client.stop()


class ServeProcess:
    """``forge serve`` in a subprocess on a free port (kept across restarts)."""

    def __init__(self, data_dir: Path, *extra_args: str, port: int = 0,
                 env: dict[str, str] | None = None) -> None:
        self.data_dir = Path(data_dir)
        self.extra_args = extra_args
        self.port = port
        self.env = dict(env or {})
        self.proc: subprocess.Popen[str] | None = None
        self.output: list[str] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def token(self) -> str | None:
        """The administrator token written on first start (None with ``--no-auth``)."""
        path = self.owner_credentials
        return json.loads(path.read_text())["token"] if path.exists() else None

    @property
    def owner_credentials(self) -> Path:
        """Where first start writes the administrator's token: beside the data directory."""
        return self.data_dir.with_name(self.data_dir.name + "-owner.json")

    def create_project(self, name: str) -> None:
        """``POST /api/projects`` as the administrator: opening a room never creates one."""
        headers = {"Content-Type": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        request = urllib.request.Request(
            f"{self.url}/api/projects", data=json.dumps({"name": name}).encode(),
            headers=headers, method="POST",
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            assert response.status == 201, response.read()

    def start(self, timeout: float = 30.0) -> ServeProcess:
        """Start and wait (at most ``timeout`` s) until it serves. The CLI announces that only
        after writing the owner's credentials (first start with auth), so :attr:`token` is
        set from then on."""
        args = [
            sys.executable,
            "-m",
            "forge_tui",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--data-dir",
            str(self.data_dir),
            "--owner-credentials",
            str(self.owner_credentials),
            *self.extra_args,
        ]
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **self.env}
        self.proc = subprocess.Popen(
            args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
        )
        lines = self._pump()
        deadline = time.monotonic() + timeout
        # The CLI prints this line after it has written the owner credentials (the relay's own
        # "relay listening" log line comes earlier, so it is not the signal to wait for).
        ready = re.compile(r"Forge server listening on http://[^\s:]+:(\d+)")
        while True:  # returns on the announcement, raises on exit or timeout
            # A queue read with a timeout, never a blocking readline: a server that hangs
            # without printing must fail this start in `timeout` seconds, not hang the test.
            try:
                line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                self.proc.kill()
                raise RuntimeError(
                    f"forge serve did not start in {timeout}s:\n{''.join(self.output)}"
                ) from None
            if line is None:
                self.proc.wait(timeout=10)  # reaped: no ResourceWarning at collection
                raise RuntimeError(f"forge serve exited early:\n{''.join(self.output)}")
            match = ready.search(line)
            if match:
                self.port = int(match.group(1))
                return self

    def _pump(self) -> queue.Queue[str | None]:
        """Read the server's output in a thread (into ``output`` and the returned queue, None
        at the end), so a chatty server never blocks on a full pipe."""
        proc = self.proc
        assert proc is not None and proc.stdout is not None
        stdout = proc.stdout
        lines: queue.Queue[str | None] = queue.Queue()

        def pump() -> None:
            with stdout:  # closed at the server's exit, so no pipe outlives its process
                for line in stdout:
                    self.output.append(line)
                    lines.put(line)
            lines.put(None)

        threading.Thread(target=pump, daemon=True).start()
        return lines

    def kill(self) -> None:
        """SIGKILL: no chance to flush anything."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM and wait: the graceful shutdown path."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        return self.proc.returncode

    def restart(self) -> ServeProcess:
        self.stop()
        return self.start()


@pytest.fixture
def serve_process() -> Iterator[Callable[..., ServeProcess]]:
    started: list[ServeProcess] = []

    def start(data_dir: Path, *extra_args: str, env: dict[str, str] | None = None
              ) -> ServeProcess:
        process = ServeProcess(data_dir, *extra_args, env=env).start()
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()


async def ws_refusal(session: Any, url: str, **kwargs: Any) -> tuple[int | None, str]:
    """Open a WebSocket the relay refuses; the close code and reason it gets at once (final
    refusals are 4401/4403/4404 closes, so y-websocket clients stop retrying)."""
    import aiohttp

    async with session.ws_connect(url, **kwargs) as ws:
        message = await asyncio.wait_for(ws.receive(), 5)
    assert message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED), message
    return ws.close_code, str(message.extra or "")
