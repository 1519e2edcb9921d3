"""Keys that never get in the way, at 80×24: arrows select in diagrams, Escape goes one level up
(never into a dead end), the focused pane is marked, the palette finds project items and every
action once, and each screen's footer fits."""

from __future__ import annotations

from typing import Any

import pytest
from textual.color import Color
from textual.command import CommandList, CommandPalette
from textual.widgets import Footer, Tree
from textual.widgets._footer import FooterKey

from forge_server.relay.server import RelayServer
from forge_tui.app import ForgeApp, MemoryBackend, MemoryHub, ServerBackend
from forge_tui.app.api import ForgeApi
from forge_tui.app.screens.executions import ExecutionsScreen
from forge_tui.app.screens.history import HistoryScreen
from forge_tui.app.screens.monitor import MonitorScreen
from forge_tui.app.screens.project import ProjectScreen
from forge_tui.app.widgets.code_editor import CodeEditor
from forge_tui.app.widgets.graph_canvas import GraphCanvas
from forge_tui.app.widgets.graph_editor import GraphEditor

from .conftest import build_paper_project, shown
from .test_monitor import finished_execution, new_project, open_project, server, until
from .test_snapshots_runs import RecordedApi

__all__ = ["server"]  # the module-scoped relay fixture of test_monitor

SMALL = (80, 24)


def paper_app() -> ForgeApp:
    hub = MemoryHub()
    paper = build_paper_project(hub)
    finished_execution(hub, paper.name)
    paper.view().record_execution("pipe1", "c0ffee", "Ada Lovelace", execution_id="x1",
                                  status="failed")
    return ForgeApp(MemoryBackend(hub, user="Ada Lovelace"), paper.name)


async def project_screen(pilot: Any, app: ForgeApp) -> ProjectScreen:
    await until(pilot, lambda: isinstance(app.screen, ProjectScreen) and app.screen.is_mounted)
    await pilot.pause()
    assert isinstance(app.screen, ProjectScreen)
    return app.screen


def is_accent(app: ForgeApp, colour: Color) -> bool:
    accent = Color.parse(str(app.current_theme.accent))
    return all(abs(a - b) <= 3 for a, b in zip(colour.rgb, accent.rgb, strict=True))


def box_top(editor: GraphEditor, node: str | None) -> int:
    assert node is not None
    return editor.canvas.rendered.boxes[node].y


class TestDiagrams:
    async def test_arrows_and_hjkl_move_the_selection_even_when_the_diagram_scrolls(self) -> None:
        app = paper_app()
        async with app.run_test(size=SMALL) as pilot:
            screen = await project_screen(pilot, app)
            await screen.open_now("pipeline", "pipe1")
            await pilot.pause()
            editor = screen.query_one(GraphEditor)
            assert app.focused is editor.canvas
            assert editor.canvas.virtual_size.height > editor.canvas.size.height  # it scrolls
            await pilot.press("down")
            first = editor.selected
            assert first is not None
            await pilot.press("down")
            second = editor.selected
            assert second != first and box_top(editor, second) > box_top(editor, first)
            await pilot.press("up")
            assert editor.selected == first
            await pilot.press("j")
            assert editor.selected == second
            await pilot.press("k")
            assert editor.selected == first


class TestEscape:
    async def test_escape_from_code_opened_in_the_list_then_down_moves_the_list(self) -> None:
        app = paper_app()
        # Wide enough for the interface panel, where Escape used to leave the keyboard.
        async with app.run_test(size=(140, 40)) as pilot:
            screen = await project_screen(pilot, app)
            tree = screen.query_one(Tree)
            line = next(
                i
                for i in range(tree.last_line + 1)
                if (node := tree.get_node_at_line(i)) and node.data == ("operation", "op3")
            )
            tree.cursor_line = line
            await pilot.press("enter")
            code = await shown(pilot, ProjectScreen, "#code-operation-op3")
            assert isinstance(code, CodeEditor)
            await until(pilot, lambda: app.focused is code.area)
            await pilot.press("escape")
            assert app.focused is tree
            await pilot.press("down")
            assert tree.cursor_line == line + 1

    async def test_escape_from_code_opened_in_a_diagram_then_down_moves_its_selection(
        self,
    ) -> None:
        app = paper_app()
        async with app.run_test(size=SMALL) as pilot:
            screen = await project_screen(pilot, app)
            await screen.open_now("pipeline", "pipe1")
            editor = screen.query_one(GraphEditor)
            editor.selected = "n2"  # Train
            await pilot.pause()
            await pilot.press("o")  # its code
            code = await shown(pilot, ProjectScreen, "#code-operation-op3")
            assert isinstance(code, CodeEditor)
            await until(pilot, lambda: app.focused is code.area)
            await pilot.press("escape")
            assert app.focused is editor.canvas
            await pilot.press("down")
            assert editor.selected not in (None, "n2")
            assert box_top(editor, editor.selected) > box_top(editor, "n2")
            await pilot.press("escape")  # from the diagram, up to the list
            assert app.focused is screen.query_one(Tree)

    async def test_the_focused_pane_is_marked(self) -> None:
        app = paper_app()
        async with app.run_test(size=SMALL) as pilot:
            screen = await project_screen(pilot, app)
            tree = screen.query_one(Tree)
            await screen.open_now("pipeline", "pipe1")
            await pilot.pause()
            canvas = screen.query_one(GraphCanvas)
            assert is_accent(app, canvas.styles.border_left[1])  # the diagram has the keys
            assert tree.styles.border_right[0] != "thick"
            await pilot.press("escape")
            await pilot.pause()
            assert tree.styles.border_right[0] == "thick"  # now the list has them
            assert is_accent(app, tree.styles.border_right[1])
            assert not is_accent(app, canvas.styles.border_left[1])


def palette_prompts(app: ForgeApp) -> list[str]:
    palette = app.screen
    assert isinstance(palette, CommandPalette)
    commands = palette.query_one(CommandList)
    return [
        str(commands.get_option_at_index(i).prompt).split("\n")[0]
        for i in range(commands.option_count)
    ]


async def open_palette(pilot: Any, app: ForgeApp, query: str) -> list[str]:
    await pilot.press("ctrl+p")
    await until(pilot, lambda: isinstance(app.screen, CommandPalette))
    if query:
        await pilot.press(*query)
    else:
        await pilot.press("down")  # an empty search shows the discovery list
    await pilot.pause(0.5)
    await until(pilot, lambda: palette_prompts(app))
    return palette_prompts(app)


class TestPalette:
    async def test_the_palette_finds_a_pipeline_by_name_and_opens_it(self) -> None:
        app = paper_app()
        async with app.run_test(size=SMALL) as pilot:
            screen = await project_screen(pilot, app)
            prompts = await open_palette(pilot, app, "cifar10")
            assert prompts[0] == "Pipeline: cifar10", prompts
            await pilot.press("enter")
            editor = await shown(pilot, ProjectScreen, "#editor-pipeline-pipe1")
            assert app.screen is screen and app.focused is editor.query_one(GraphCanvas)

    async def test_items_of_every_kind_and_each_action_once(self) -> None:
        app = paper_app()
        async with app.run_test(size=SMALL) as pilot:
            await project_screen(pilot, app)
            prompts = await open_palette(pilot, app, "")
            assert len(prompts) == len(set(prompts)), prompts
            for item in ("Pipeline: cifar10", "Operation: Train", "Architecture: VGG",
                         "Execution: cifar10 "):
                assert any(p.startswith(item) for p in prompts), (item, prompts)
            for action in ("New", "Executions", "History", "Help", "Quit", "Theme"):
                assert prompts.count(action) == 1, (action, prompts)
            assert "Keys" not in prompts and "Commands" not in prompts

    async def test_an_execution_opens_from_the_palette_anywhere(self) -> None:
        app = paper_app()
        async with app.run_test(size=SMALL) as pilot:
            await project_screen(pilot, app)
            await pilot.press("E")
            await until(pilot, lambda: isinstance(app.screen, ExecutionsScreen))
            prompts = await open_palette(pilot, app, "x1")
            assert prompts[0].startswith("Execution: cifar10"), prompts
            await pilot.press("enter")
            await until(pilot, lambda: isinstance(app.screen, MonitorScreen))
            assert [type(s).__name__ for s in app.screen_stack[-2:]] == [
                "ProjectScreen", "MonitorScreen"
            ]


class TestPaletteOnAServer:
    async def test_the_palette_switches_to_a_branch_by_name(self, server: RelayServer) -> None:
        name, _ids = await new_project(server)
        api = ForgeApi(server.url, None, name)
        await api.commit_now()
        await api.create_branch("experiment")
        app = ForgeApp(ServerBackend(server.url, None, "Ada Lovelace"), name)
        async with app.run_test(size=SMALL) as pilot:
            first = await open_project(pilot, app)
            prompts = await open_palette(pilot, app, "experim")
            assert prompts[0] == "Branch: experiment", prompts
            await pilot.press("enter")
            await until(pilot, lambda: app.branch == "experiment")
            await until(pilot, lambda: isinstance(app.screen, ProjectScreen)
                        and app.screen is not first)


async def footer_keys(pilot: Any, app: ForgeApp) -> list[FooterKey]:
    await pilot.pause()
    footer = app.screen.query_one(Footer)
    await until(pilot, lambda: footer.query(FooterKey))
    return list(footer.query(FooterKey))


class TestFooters:
    @pytest.mark.parametrize(
        "place", ["list", "diagram", "code", "monitor", "executions", "history"]
    )
    async def test_every_footer_fits_80_columns_once_each(self, place: str) -> None:
        app = paper_app()
        async with app.run_test(size=SMALL) as pilot:
            screen = await project_screen(pilot, app)
            if place == "diagram":
                await screen.open_now("pipeline", "pipe1")
            elif place == "code":
                await screen.open_now("operation", "op3")
            elif place == "monitor":
                await screen.open_now("execution", "x1")
                await until(pilot, lambda: isinstance(app.screen, MonitorScreen))
            elif place == "executions":
                await pilot.press("E")
                await until(pilot, lambda: isinstance(app.screen, ExecutionsScreen))
            elif place == "history":
                await app.push_screen(HistoryScreen(RecordedApi()))
            keys = await footer_keys(pilot, app)
            labels = [f"{key.key_display} {key.description}".strip() for key in keys]
            assert len(labels) == len(set(labels)), labels  # no key twice (^p Commands)
            assert all(key.region.right <= SMALL[0] for key in keys), [
                (label, key.region) for label, key in zip(labels, keys, strict=True)
            ]
            assert any(key.description == "Help" for key in keys), labels  # F1: the rest
