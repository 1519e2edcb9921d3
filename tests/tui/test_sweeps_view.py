"""The sweep view at 80×24 against a real relay: trials with settings, status and objective,
the best starred, sorting, the importance summary, a trial opened in the monitor, and "apply
best" committed to the pipeline."""

from __future__ import annotations

from collections.abc import AsyncIterator
from multiprocessing import resource_tracker
from typing import Any

import pytest
import pytest_asyncio
from textual.widgets import DataTable, Static

from forge_ops.schema import ProjectDoc
from forge_server.history import HISTORY
from forge_server.relay.app import ROOMS
from forge_server.relay.config import RelayConfig
from forge_server.relay.server import RelayServer
from forge_tui.app import ForgeApp, ServerBackend
from forge_tui.app._sweep_view import importance, sorted_trials, summary
from forge_tui.app.screens.monitor import MonitorScreen
from forge_tui.app.screens.sweeps import SweepsScreen
from tests.server.sweep_fixtures import (
    PIPELINE,
    define,
    example_project,
    finish,
    sweep_api,
    sweep_setups,
)

from .conftest import shown
from .test_monitor import open_project, until


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def relay(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[RelayServer]:
    resource_tracker.ensure_running()  # see test_monitor.server
    data_dir = tmp_path_factory.mktemp("tui-sweeps")
    async with RelayServer(RelayConfig(data_dir=data_dir),
                           setups=sweep_setups(data_dir)) as server:
        yield server


def cells(screen: SweepsScreen) -> list[list[str]]:
    table = screen.query_one("#trials", DataTable)
    return [[str(cell) for cell in table.get_row_at(i)] for i in range(table.row_count)]


def text(screen: SweepsScreen, selector: str) -> str:
    return str(screen.query_one(selector, Static).render())


async def test_sweep_view_shows_the_best_and_applies_it(relay: RelayServer) -> None:
    project = await example_project(relay)
    await define(relay, project)
    status, run = await sweep_api(relay)("POST", f"{project}/sweeps/lr/runs", {})
    assert status == 201, run
    record = await finish(relay, project, "lr", run["run"])
    best = next(t for t in record["trials"] if t["best"])
    rate = best["settings"]["Train.learning_rate"]

    app = ForgeApp(ServerBackend(relay.url, None, "Ada Lovelace"), project)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_project(pilot, app)
        await pilot.press("S")
        await shown(pilot, SweepsScreen, "#trials")
        screen = app.screen
        assert isinstance(screen, SweepsScreen)
        await until(pilot, lambda: len(cells(screen)) == 4)
        rows = cells(screen)
        starred = [row for row in rows if row[0] == "★"]
        assert len(starred) == 1 and starred[0][1] == str(best["number"])
        assert all(row[2] == "succeeded" for row in rows)
        assert f"best #{best['number']}" in text(screen, "#sweep-summary")
        assert "importance: Train.learning_rate" in text(screen, "#sweep-importance")

        await pilot.press("s")  # by objective: the best first
        await pilot.pause()
        assert cells(screen)[0][0] == "★"
        await until(pilot, lambda: len(screen.curves) == 4)

        await pilot.press("a")
        await until(pilot, lambda: "applied trial" in text(screen, "#sweep-message"))
        assert f"Set Train.learning_rate 0.0005 → {rate}" in text(screen, "#sweep-message")

        screen.query_one("#trials", DataTable).move_cursor(row=0)  # the best trial
        await pilot.press("enter")
        await shown(pilot, MonitorScreen, "*")
        monitor = app.screen
        assert isinstance(monitor, MonitorScreen)
        assert monitor.execution_id == best["execution"]

    room = await relay.app[ROOMS].get(f"{project}/main")
    pipeline = next(p for p in ProjectDoc(room.doc).to_plain()["pipelines"].values()
                    if p["name"] == PIPELINE)
    train = next(n for n in pipeline["nodes"].values() if n["name"] == "Train")
    assert train["attributes"]["learning_rate"] == rate
    head = relay.app[HISTORY].store.head(project, "main")
    assert head.message.startswith(f"Applied sweep lr trial {best['number']}")


RECORD: dict[str, Any] = {
    "run": "r1", "sweep_name": "lr", "status": "running", "running": True,
    "objective": {"goal": "maximize", "describe": "maximize accuracy of artifact metrics"},
    "budget": {"trials": 4}, "counts": {"succeeded": 2, "pruned": 1, "running": 1},
    "parameters": {"lr": "Train.learning_rate", "batch": "Train.batch_size"},
    "trials": [
        {"number": 0, "status": "succeeded", "objective": 0.5, "duration": 3.0, "best": False,
         "settings": {"Train.learning_rate": 0.1, "Train.batch_size": 32}},
        {"number": 1, "status": "succeeded", "objective": 0.9, "duration": 2.0, "best": True,
         "settings": {"Train.learning_rate": 0.01, "Train.batch_size": 32}},
        {"number": 2, "status": "pruned", "objective": None, "duration": 0.5, "best": False,
         "settings": {"Train.learning_rate": 1.0, "Train.batch_size": 64}},
        {"number": 3, "status": "running", "objective": None, "duration": None, "best": False,
         "settings": {"Train.learning_rate": 0.001, "Train.batch_size": 64}},
    ],
}


class TestSweepText:
    def test_sorts(self) -> None:
        assert [t["number"] for t in sorted_trials(RECORD, "objective")] == [1, 0, 2, 3]
        assert [t["number"] for t in sorted_trials(RECORD, "duration")] == [0, 1, 2, 3]
        assert [t["number"] for t in sorted_trials(RECORD, "status")] == [3, 0, 1, 2]

    def test_summary_and_importance(self) -> None:
        assert summary(RECORD) == ("lr · run r1 running · 3/4 trials (1 pruned) · best #1 0.9 "
                                   "(maximize accuracy of artifact metrics)")
        # The rate moves the objective (0.1 → 0.5, 0.01 → 0.9); the batch size never varies
        # among the scored trials.
        assert importance(RECORD) == ["Train.learning_rate: spread 0.4, best at 0.01 (100%)"]
