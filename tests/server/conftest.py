"""Server-test fixtures: relays with their own settings and data dirs (stopped after the test)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from forge_server.principal import Authorizer
from forge_server.relay.config import RelayConfig
from forge_server.relay.server import RelayServer

StartRelay = Callable[..., Awaitable[RelayServer]]


@pytest_asyncio.fixture(loop_scope="session")
async def start_relay(tmp_path: Path) -> AsyncIterator[StartRelay]:
    """``await start_relay(port=0, data_dir=None, authorizer=None, **settings)`` → a running
    relay; settings are RelayConfig fields. Reuse ``data_dir``/``port`` to restart one."""
    servers: list[RelayServer] = []

    async def start(
        *,
        port: int = 0,
        data_dir: Path | None = None,
        authorizer: Authorizer | None = None,
        **settings: Any,
    ) -> RelayServer:
        config = RelayConfig(data_dir=data_dir or tmp_path / "data", **settings)
        server = RelayServer(config, port=port, authorizer=authorizer)
        await server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        await server.stop()


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"
