"""Snapshots of the executions list and the history view, with fixed content.

The executions list reads an in-process hub (fixed ids and times). The history view reads the
HTTP API; here a ForgeApi answers from recorded server replies (fixed ids, times and authors,
which a live server cannot give), so the snapshot checks the drawing, not the server.
"""

from __future__ import annotations

import time
from typing import Any

from forge_ops.schema import ProjectDoc
from forge_tui.app import ForgeApp, MemoryBackend, MemoryHub
from forge_tui.app.api import ForgeApi
from forge_tui.app.screens.executions import ExecutionsScreen
from forge_tui.app.screens.history import HistoryScreen

from .conftest import build_paper_project
from .test_monitor import finished_execution


async def wait_until(pilot: Any, condition: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await pilot.pause(0.05)


def test_executions_list(snap_compare: Any) -> None:
    hub = MemoryHub()
    paper = build_paper_project(hub)
    project = ProjectDoc(hub.room_doc(f"{paper.name}/main"))
    for xid, by, created in (
        ("x1", "Ada Lovelace", "2026-01-01T10:00:00+00:00"),
        ("x2", "Grace Hopper", "2026-01-02T09:30:00+00:00"),
    ):
        project.record_execution("pipe1", "c0ffee", by, execution_id=xid, status="failed")
        project.executions[xid]["created"] = created
        finished_execution(hub, paper.name, xid)
    app = ForgeApp(MemoryBackend(hub, user="Ada Lovelace"), paper.name)

    async def open_list(pilot: Any) -> None:
        await pilot.pause()
        await pilot.press("E")
        await wait_until(pilot, lambda: isinstance(app.screen, ExecutionsScreen))
        screen = app.screen
        assert isinstance(screen, ExecutionsScreen)
        await wait_until(pilot, lambda: len(screen.details) == 2)
        await pilot.press("space")  # mark the newest run for comparing
        await pilot.pause()

    assert snap_compare(app, terminal_size=(100, 24), run_before=open_list)


def commit(
    cid: str,
    message: str,
    created: str,
    parents: list[str],
    branch: str,
    authors: list[str],
    tags: list[str] | None = None,
) -> dict[str, Any]:
    return {
        "id": cid * 8,
        "short": (cid * 2)[:10],
        "message": message,
        "created": created,
        "parents": [p * 8 for p in parents],
        "branch": branch,
        "authors": authors,
        "tags": tags or [],
    }


C1 = commit(
    "a1b2c3d4", "Create project cifar", "2026-01-01T09:00:00+00:00", [], "main", ["Ada Lovelace"]
)
C2 = commit(
    "b2c3d4e5",
    "Edit Train: learning rate",
    "2026-01-01T10:00:00+00:00",
    ["a1b2c3d4"],
    "main",
    ["Ada Lovelace"],
    ["run/x1"],
)
C3 = commit(
    "c3d4e5f6",
    "Add operation Augment",
    "2026-01-01T11:00:00+00:00",
    ["a1b2c3d4"],
    "exp",
    ["Grace Hopper"],
)
C4 = commit(
    "d4e5f6a7",
    "Merge exp into main",
    "2026-01-01T12:00:00+00:00",
    ["b2c3d4e5", "c3d4e5f6"],
    "main",
    ["Ada Lovelace", "Grace Hopper"],
    ["v1"],
)


class RecordedApi(ForgeApi):
    """The history routes' answers for a project with a merged branch (recorded shapes)."""

    def __init__(self) -> None:
        super().__init__("http://recorded.invalid", None, "cifar")

    async def branches(self) -> list[dict[str, Any]]:
        return [{"name": "main", "head": C4["id"]}, {"name": "exp", "head": C3["id"]}]

    async def tags(self) -> list[dict[str, Any]]:
        return [{"name": "run/x1", "commit": C2["id"]}, {"name": "v1", "commit": C4["id"]}]

    async def log(self, branch: str = "main", limit: int = 200) -> list[dict[str, Any]]:
        return [C4, C2, C3, C1] if branch == "main" else [C3, C1]

    async def commit(self, ref: str) -> dict[str, Any]:
        found = next(c for c in (C1, C2, C3, C4) if c["id"] == ref)
        changes = [
            {"text": "operation Augment added"},
            {
                "text": "operation Train: code changed",
                "detail": "--- a\n+++ b\n-    lr = 0.1\n+    lr = 0.01\n",
            },
        ]
        return {"commit": found, "changes": changes if found is C4 else []}


def test_history_view(snap_compare: Any) -> None:
    hub = MemoryHub()
    build_paper_project(hub)
    app = ForgeApp(MemoryBackend(hub, user="Ada Lovelace"), "cifar")

    async def open_history(pilot: Any) -> None:
        await pilot.pause()
        screen = HistoryScreen(RecordedApi())
        await app.push_screen(screen)
        await wait_until(pilot, lambda: len(screen.commits) == 4)
        await wait_until(
            pilot, lambda: "Merge exp" in str(screen.query_one("#commit-text").render())
        )
        await pilot.pause()

    assert snap_compare(app, terminal_size=(120, 24), run_before=open_history)
