"""The error screen: a refused token and an unreachable server say what to do."""

from __future__ import annotations

import socket

from forge_server.principal import Role, Unauthenticated
from forge_server.relay.config import RelayConfig
from forge_server.relay.server import RelayServer
from forge_tui.app import ForgeApp, LinkState, ServerBackend
from forge_tui.app.screens.info import ErrorScreen

from .conftest import shown
from .test_two_clients import until

SIZE = (100, 30)


class RefuseEveryone:
    async def authenticate(self, token: str | None) -> str:
        raise Unauthenticated("unknown token")

    async def role(self, user: str, project: str) -> Role | None:
        return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_unreachable_server() -> None:
    app = ForgeApp(ServerBackend(f"http://127.0.0.1:{free_port()}", None, "ada"))
    async with app.run_test(size=SIZE) as pilot:
        message = str((await shown(pilot, ErrorScreen, "#error-message")).render())
        assert "cannot reach" in message and "forge serve" in message


async def test_refused_token_on_listing_and_on_a_room(tmp_path) -> None:  # type: ignore[no-untyped-def]
    async with RelayServer(RelayConfig(data_dir=tmp_path), authorizer=RefuseEveryone()) as relay:
        app = ForgeApp(ServerBackend(relay.url, "bad-token", "ada"))
        async with app.run_test(size=SIZE) as pilot:
            message = await shown(pilot, ErrorScreen, "#error-message")
            assert isinstance(app.screen, ErrorScreen) and app.screen.refused
            assert "refused the token" in str(message.render())
        app = ForgeApp(ServerBackend(relay.url, "bad-token", "ada"), project="p")
        async with app.run_test(size=SIZE) as pilot:
            await until([pilot], lambda: isinstance(app.screen, ErrorScreen), timeout=15)
            assert app.workspace is not None
            assert app.workspace.link.state is LinkState.OFFLINE
