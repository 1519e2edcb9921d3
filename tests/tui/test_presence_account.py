"""Presence in the TUI against a real relay: people appear by account (not by the OS login,
`root` for everyone on a shared box), and switching branch leaves no ghost in the old room."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from forge_ops.schema import ProjectDoc
from forge_server.auth import AuthStore, TokenAuthorizer
from forge_server.auth.routes import setup_auth_routes
from forge_server.history import HistoryConfig, history_setup
from forge_server.relay.app import ROOMS
from forge_server.relay.config import RelayConfig
from forge_server.relay.server import RelayServer
from forge_tui.app import ForgeApp, LinkState, ServerBackend
from forge_tui.app.api import ForgeApi
from forge_tui.app.screens.history import HistoryScreen
from forge_tui.app.screens.project import ProjectScreen
from forge_tui.app.screens.projects import ProjectsScreen

from .test_history_view import answer

SIZE = (110, 30)


async def until(pilots: Any, condition: Callable[[], object], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        for pilot in pilots:
            await pilot.pause(0.02)


def presence_bar(app: ForgeApp) -> str:
    return str(app.screen.query_one("#presence").render())


def on_project(app: ForgeApp, branch: str = "main") -> bool:
    return (
        isinstance(app.screen, ProjectScreen)
        and app.branch == branch
        and app.workspace is not None
        and app.screen.workspace is app.workspace
        and app.workspace.link.state is LinkState.CONNECTED
    )


async def new_room(relay: RelayServer, name: str) -> None:
    await relay.app[ROOMS].create(f"{name}/main", ProjectDoc.create(name).doc.get_update())


@pytest_asyncio.fixture(loop_scope="session")
async def accounts(tmp_path: Path) -> AsyncIterator[tuple[RelayServer, dict[str, str]]]:
    """A relay with accounts: alice owns "lab", bob writes to it."""
    store = AuthStore.open(tmp_path)
    for user in ("alice", "bob"):
        store.add_user(user)
    store.create_project("lab", "alice")
    store.grant("bob", "lab", "writer")
    tokens = {user: store.create_token(user)[0] for user in ("alice", "bob")}
    config = RelayConfig(data_dir=tmp_path)
    async with RelayServer(
        config, authorizer=TokenAuthorizer(store), setups=[setup_auth_routes]
    ) as relay:
        await new_room(relay, "lab")
        yield relay, tokens
    store.close()


async def test_people_appear_by_account_with_a_display_name_beside_it(
    accounts: tuple[RelayServer, dict[str, str]],
) -> None:
    relay, tokens = accounts
    # Alice gives no name: the TUI used to fall back on the login name (`root` on a shared
    # box); Bob gives a display name, and even claims to be Alice.
    alice = ServerBackend(relay.url, tokens["alice"])
    bob = ServerBackend(relay.url, tokens["bob"], "Robert")
    sneaky = ServerBackend(relay.url, tokens["bob"], "alice")
    app_a, app_b = ForgeApp(alice, "lab"), ForgeApp(bob, "lab")
    async with app_a.run_test(size=SIZE) as pa, app_b.run_test(size=SIZE) as pb:
        pilots = (pa, pb)
        await until(pilots, lambda: on_project(app_a) and on_project(app_b))
        await until(pilots, lambda: "bob" in presence_bar(app_a) and "alice" in presence_bar(app_b))
        assert presence_bar(app_a).split() == ["AL", "alice", "(you)", "BO", "bob", "·", "Robert"]
        assert presence_bar(app_b).split() == ["BO", "bob", "·", "Robert", "(you)", "AL", "alice"]
    await sneaky.identify()
    assert (sneaky.user, sneaky.display) == ("bob", "alice")  # beside the account, not instead


async def test_the_projects_screen_names_the_account(
    accounts: tuple[RelayServer, dict[str, str]],
) -> None:
    relay, tokens = accounts
    app = ForgeApp(ServerBackend(relay.url, tokens["bob"]))
    async with app.run_test(size=SIZE) as pilot:
        await until(
            [pilot],
            lambda: isinstance(app.screen, ProjectsScreen)
            and str(app.screen.query_one("#projects-title").render()).endswith("· bob"),
        )


@pytest_asyncio.fixture(loop_scope="session")
async def history_relay(tmp_path: Path) -> AsyncIterator[RelayServer]:
    setups = [history_setup(HistoryConfig(debounce_s=30, max_interval_s=60))]
    async with RelayServer(RelayConfig(data_dir=tmp_path), setups=setups) as relay:
        yield relay


@pytest.mark.parametrize("how", ["history", "projects"])
async def test_switching_branch_or_project_leaves_no_ghost(
    history_relay: RelayServer, how: str
) -> None:
    relay = history_relay
    await new_room(relay, "lab")
    await new_room(relay, "other")
    api = ForgeApi(relay.url, None, "lab")
    start = await api.commit_now(message="start")
    await api.create_branch("exp", start["id"])
    ada = ForgeApp(ServerBackend(relay.url, None, "Ada Lovelace"), "lab")
    bob = ForgeApp(ServerBackend(relay.url, None, "Bob Kahn"), "lab")
    async with ada.run_test(size=SIZE) as pa, bob.run_test(size=SIZE) as pb:
        pilots = (pa, pb)
        await until(pilots, lambda: on_project(ada) and on_project(bob))
        await until(pilots, lambda: "Ada Lovelace" in presence_bar(bob))
        if how == "history":  # Ada switches to branch exp in the history view
            await pa.press("ctrl+g")
            await until(pilots, lambda: isinstance(ada.screen, HistoryScreen))
            history = ada.screen
            assert isinstance(history, HistoryScreen)
            await until(pilots, lambda: any(b["name"] == "exp" for b in history.branches))
            await pa.press("s")
            await answer(pa, "exp")
            await until(pilots, lambda: on_project(ada, "exp"))
        else:  # Ada opens another project from the projects screen
            await pa.press("ctrl+o")
            await until(pilots, lambda: isinstance(ada.screen, ProjectsScreen))
            ada.open_project("other")
            await until(pilots, lambda: on_project(ada) and ada.workspace.project_name == "other")  # type: ignore[union-attr]
        # Bob, still on lab/main, no longer sees her; the relay holds only his presence there.
        await until(pilots, lambda: "Ada Lovelace" not in presence_bar(bob))
        main = relay.app[ROOMS].loaded("lab/main")
        assert main is not None
        names = [p.state for p in main.presence.entries.values()]
        assert len(names) == 1 and "Bob Kahn" in names[0]
        # Her old screens went with the room: one project screen, on the new room.
        assert sum(isinstance(s, ProjectScreen) for s in ada.screen_stack) == 1
