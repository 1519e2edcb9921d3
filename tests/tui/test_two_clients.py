"""Two apps against one real relay: edits and presence travel between them."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable

import pytest
import pytest_asyncio

from forge_server.projects import projects_setup
from forge_server.relay.config import RelayConfig
from forge_server.relay.server import RelayServer
from forge_tui.app import ForgeApp, LinkState, ServerBackend
from forge_tui.app.screens.project import ProjectScreen
from forge_tui.app.widgets.graph_editor import GraphEditor

SIZE = (100, 36)


async def until(pilots, condition: Callable[[], bool], timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        for pilot in pilots:
            await pilot.pause(0.02)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def relay(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[RelayServer]:
    """A relay that also creates projects (``POST /api/projects``), as the TUI asks it to."""
    data_dir = tmp_path_factory.mktemp("tui-two-clients")
    async with RelayServer(RelayConfig(data_dir=data_dir), setups=[projects_setup]) as server:
        yield server


async def test_edit_and_presence_travel(relay, new_room) -> None:  # type: ignore[no-untyped-def]
    project = new_room("tui").split("/")[0]
    ada = ServerBackend(relay.url, None, "Ada Lovelace")
    bob = ServerBackend(relay.url, None, "Bob Kahn")
    await ada.create_project(project)
    assert project in await bob.list_projects()
    app_a, app_b = ForgeApp(ada, project), ForgeApp(bob, project)
    async with app_a.run_test(size=SIZE) as pa, app_b.run_test(size=SIZE) as pb:
        pilots = (pa, pb)
        await until(
            pilots,
            lambda: all(
                isinstance(app.screen, ProjectScreen)
                and app.workspace is not None
                and app.workspace.link.state is LinkState.CONNECTED
                for app in (app_a, app_b)
            ),
        )
        screen_a, screen_b = app_a.screen, app_b.screen
        assert isinstance(screen_a, ProjectScreen) and isinstance(screen_b, ProjectScreen)
        # presence: each sees the other in the top bar
        await until(
            pilots,
            lambda: (
                "Bob Kahn" in str(screen_a.query_one("#presence").render())
                and "Ada Lovelace" in str(screen_b.query_one("#presence").render())
            ),
        )
        # an edit in A appears in B
        with app_a.workspace.edit() as doc:  # type: ignore[union-attr]
            op = doc.add_operation("Identity", "def identity(x: Tensor) -> Tensor:\n    return x\n")
        pipeline_id = screen_a.create("pipeline", "shared")
        await until(pilots, lambda: app_b.workspace.project.find("pipelines", "shared") is not None)  # type: ignore[union-attr]
        await until(pilots, lambda: bool(screen_a.query(GraphEditor)))
        editor_a = screen_a.query_one(GraphEditor)
        with app_a.workspace.edit() as doc:  # type: ignore[union-attr]
            node = doc.add_node(pipeline_id, op, "Shared node")
        editor_a.selected = node
        await screen_b.open_now("pipeline", pipeline_id)
        editor_b = screen_b.query_one(GraphEditor)
        # B draws the node, marked with A's initials because A has it selected
        await until(
            pilots,
            lambda: (
                "Shared node" in editor_b.canvas.rendered.text()
                and "AL" in editor_b.canvas.rendered.text()
            ),
        )
        tree_b = [str(n.label) for n in screen_b.query_one("#sidebar").root.children]  # type: ignore[attr-defined]
        assert "Pipelines (1)" in tree_b
