"""Snapshots of the main screens (pytest-textual-snapshot); update with --snapshot-update."""

from __future__ import annotations

from typing import Any

from forge_tui.app import ForgeApp, MemoryBackend, MemoryHub
from forge_tui.app.screens.project import ProjectScreen
from forge_tui.app.widgets.graph_editor import GraphEditor

from .conftest import build_paper_project


def paper_app(project: str | None = "cifar") -> ForgeApp:
    hub = MemoryHub()
    build_paper_project(hub)
    return ForgeApp(MemoryBackend(hub, user="Ada Lovelace"), project=project)


def open_entry(kind: str, entry_id: str, select: str | None = None) -> Any:
    async def run_before(pilot: Any) -> None:
        await pilot.pause()
        screen = pilot.app.screen
        assert isinstance(screen, ProjectScreen)
        await screen.open_now(kind, entry_id)
        if select is not None:
            screen.query_one(GraphEditor).selected = select
        await pilot.pause()

    return run_before


def test_projects_screen(snap_compare: Any) -> None:
    assert snap_compare(paper_app(None), terminal_size=(80, 24))


def test_pipeline_editor_at_80x24(snap_compare: Any) -> None:
    assert snap_compare(
        paper_app(), terminal_size=(80, 24), run_before=open_entry("pipeline", "pipe1", "n1")
    )


def test_pipeline_editor_with_inspector(snap_compare: Any) -> None:
    assert snap_compare(
        paper_app(), terminal_size=(120, 40), run_before=open_entry("pipeline", "pipe1", "n2")
    )


def test_code_editor(snap_compare: Any) -> None:
    assert snap_compare(
        paper_app(), terminal_size=(120, 30), run_before=open_entry("operation", "op3")
    )
