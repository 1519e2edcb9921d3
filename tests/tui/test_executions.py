"""The executions list and compare runs, against a real relay running jobs locally."""

from __future__ import annotations

import asyncio
from typing import Any

from forge_ops.schema import ProjectDoc
from forge_server.coordinator import COORDINATOR
from forge_server.relay.app import ROOMS
from forge_server.relay.server import RelayServer
from forge_tui.app import ForgeApp, ServerBackend
from forge_tui.app.api import ForgeApi
from forge_tui.app.screens.executions import CompareScreen, ExecutionsScreen, key_metric
from forge_tui.app.widgets.plots import PlotPanel, overlay

from .test_monitor import SIZE, new_project, open_project, server, until

__all__ = ["server"]  # the module-scoped relay fixture of test_monitor


async def set_emit(server: RelayServer, project: str, pipeline_id: str, **values: Any) -> None:
    """Change the Emit node's attributes on the server's copy of the project."""
    async with server.app[ROOMS].hold(f"{project}/main") as room:
        with room.edit("test") as doc:
            view = ProjectDoc(doc)
            nodes = view.to_plain()["pipelines"][pipeline_id]["nodes"]
            emit = next(n for n, node in nodes.items() if node["name"] == "Emit")
            for key, value in values.items():
                view.set_attribute(pipeline_id, emit, key, value)


async def run_to_end(server: RelayServer, api: ForgeApi, pipeline: str) -> str:
    record = await api.run(pipeline)
    await asyncio.wait_for(server.app[COORDINATOR].wait(record["execution"]), 60)
    return str(record["execution"])


class TestExecutionsList:
    async def test_list_shows_runs_and_compare_overlays_their_graphs(
        self, server: RelayServer
    ) -> None:
        name, ids = await new_project(server)
        api = ForgeApi(server.url, None, name)
        await set_emit(server, name, ids["good"], pause=0.0, steps=6)
        first = await run_to_end(server, api, "good")
        await set_emit(server, name, ids["good"], scale=2.0)
        second = await run_to_end(server, api, "good")

        app = ForgeApp(ServerBackend(server.url, None, "Ada Lovelace"), name)
        async with app.run_test(size=SIZE) as pilot:
            await open_project(pilot, app)
            await until(pilot, lambda: len(app.workspace.snapshot()["executions"]) == 2)  # type: ignore[union-attr]
            await pilot.press("E")
            await until(pilot, lambda: isinstance(app.screen, ExecutionsScreen))
            listing = app.screen
            assert isinstance(listing, ExecutionsScreen)
            await until(pilot, lambda: len(listing.details) == 2)
            await pilot.pause()
            table = listing.query_one("#executions")
            rows = {xid: [str(c) for c in table.get_row(xid)] for xid in listing.rows}  # type: ignore[attr-defined]
            assert set(rows) == {first, second}
            when = [rows[xid][4] for xid in listing.rows]
            assert when == sorted(when, reverse=True)  # newest first
            assert all("succeeded" in row[1] and row[2] == "good" for row in rows.values())
            # the key metric: the last loss point (scale / steps)
            assert rows[first][6] == "loss=0.1667" and rows[second][6] == "loss=0.3333"
            assert all(row[5].endswith("s") for row in rows.values())  # a duration

            # compare needs two marked runs
            await pilot.press("space")
            await pilot.press("c")
            assert isinstance(app.screen, ExecutionsScreen)
            assert "two or more" in str(listing.query_one("#executions-message").render())
            await pilot.press("down", "space", "c")
            await until(pilot, lambda: isinstance(app.screen, CompareScreen))
            compare = app.screen
            await pilot.pause()
            charts = compare.query_one(PlotPanel).charts()
            assert list(charts) == ["Loss"]
            lines = charts["Loss"].lines
            assert set(lines) == {f"{first[:8]} loss", f"{second[:8]} loss"}
            assert lines[f"{first[:8]} loss"][0] == (0.0, 1.0)
            assert lines[f"{second[:8]} loss"][0] == (0.0, 2.0)
            await pilot.press("escape")
            await until(pilot, lambda: isinstance(app.screen, ExecutionsScreen))


class TestPure:
    def test_overlay_names_lines_by_run(self) -> None:
        merged = overlay(
            {
                "a": {"Loss": {"train": [[0, 1]]}},
                "b": {"Loss": {"train": [[0, 2]]}, "Acc": {"test": [[1, 0.5]]}},
            }
        )
        assert merged == {
            "Loss": {"a train": [[0, 1]], "b train": [[0, 2]]},
            "Acc": {"b test": [[1, 0.5]]},
        }

    def test_key_metric_is_the_last_point_of_the_first_line(self) -> None:
        execution: Any = {
            "meta": {"pipeline": {"jobs": {}}},
            "graphs": {"j": {"Loss": {"train": [[0, 1.0], [1, 0.25]]}}},
        }
        assert key_metric(execution) == "train=0.25"
        assert key_metric({"meta": {"pipeline": {}}, "graphs": {}}) == ""  # type: ignore[arg-type]
