"""The executions list and compare runs, against a real relay running jobs locally."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from forge_ops.schema import ProjectDoc
from forge_server.coordinator import COORDINATOR
from forge_server.relay.app import ROOMS
from forge_server.relay.server import RelayServer
from forge_tui.app import ForgeApp, ServerBackend
from forge_tui.app._compare import RunDetails, default_metric, flatten_metrics, metric_value
from forge_tui.app.api import ForgeApi
from forge_tui.app.screens.compare import CompareScreen
from forge_tui.app.screens.executions import ExecutionsScreen
from forge_tui.app.widgets.plots import PlotPanel, overlay
from forge_tui.app.widgets.run_table import RunTable

from .conftest import screen_text
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
            rows = {xid: listing.cells_of(xid) for xid in listing.rows}
            assert set(rows) == {first, second}
            when = [rows[xid]["when"] for xid in listing.rows]
            assert when == sorted(when, reverse=True)  # newest first
            assert all("succeeded" in row["status"] and row["pipeline"] == "good"
                       for row in rows.values())
            # Nothing published: the key metric is the last loss point (scale / steps).
            assert listing.metric == "loss (last)"
            assert rows[first]["metric"] == "0.1667" and rows[second]["metric"] == "0.3333"
            assert all(row["duration"].endswith("s") for row in rows.values())

            # compare needs two marked runs
            await pilot.press("space")
            await pilot.press("c")
            assert isinstance(app.screen, ExecutionsScreen)
            assert "two or more" in str(listing.query_one("#executions-message").render())
            await pilot.press("down", "space", "c")
            await until(pilot, lambda: isinstance(app.screen, CompareScreen))
            compare = app.screen
            await pilot.pause()
            assert isinstance(compare, CompareScreen)
            # one run set 2, the other kept the code's 1.0 (columns in the list's order, which
            # runs started within the same second may take either way)
            assert sorted(compare.row("Emit.scale")) == ["1.0", "2"]
            charts = compare.query_one(PlotPanel).charts()
            assert list(charts) == ["Loss"]
            lines = charts["Loss"].lines
            assert set(lines) == {f"{first[:8]} loss", f"{second[:8]} loss"}
            assert lines[f"{first[:8]} loss"][0] == (0.0, 1.0)
            assert lines[f"{second[:8]} loss"][0] == (0.0, 2.0)
            await pilot.press("escape")
            await until(pilot, lambda: isinstance(app.screen, ExecutionsScreen))


FIT = """
from forge_ops.runtime import Graph, Metrics


def fit(*, learning_rate: float = 0.01, steps: int = 4) -> Metrics:
    line = Graph("Loss").line("loss")
    for step in range(steps):
        line.add(step, learning_rate * (steps - step))
    accuracy = 1 - learning_rate * 10
    return {"accuracy": accuracy, "accuracy/cat": accuracy / 2}
"""
OUTPUT = """
from forge_ops.runtime import Any


def output(data: Any, /, *, name: str = "output") -> None:
    if not name.strip():
        raise ValueError("set the name attribute")
"""


async def fit_project(server: RelayServer) -> tuple[str, str, str]:
    """A project whose pipeline "fit" publishes metrics (accuracy, accuracy/cat) through an
    Output operation: (project, pipeline id, Fit node id)."""
    name = f"c-{uuid.uuid4().hex[:10]}"
    project = ProjectDoc.create(name)
    pid = project.add_pipeline("fit")
    fit = project.add_node(pid, project.add_operation("Fit", FIT))
    out = project.add_node(pid, project.add_operation("Output", OUTPUT, True))
    project.set_attribute(pid, out, "name", "metrics")
    project.connect(pid, fit, "out", out, "data")
    await server.app[ROOMS].create(f"{name}/main", project.doc.get_update())
    return name, pid, fit


class TestCompareResults:
    async def test_at_80x24_compare_shows_the_learning_rates_and_both_accuracies(
        self, server: RelayServer
    ) -> None:
        name, pid, fit = await fit_project(server)
        api = ForgeApi(server.url, None, name)
        runs = {}
        for rate in (0.01, 0.003):
            async with server.app[ROOMS].hold(f"{name}/main") as room:
                with room.edit("test") as doc:
                    ProjectDoc(doc).set_attribute(pid, fit, "learning_rate", rate)
            runs[rate] = await run_to_end(server, api, "fit")

        app = ForgeApp(ServerBackend(server.url, None, "Ada Lovelace"), name)
        async with app.run_test(size=(80, 24)) as pilot:
            await open_project(pilot, app)
            await until(pilot, lambda: len(app.workspace.snapshot()["executions"]) == 2)  # type: ignore[union-attr]
            await pilot.press("E")
            await until(pilot, lambda: isinstance(app.screen, ExecutionsScreen))
            listing = app.screen
            assert isinstance(listing, ExecutionsScreen)
            await until(
                pilot,
                lambda: all(listing.details.get(x) and listing.details[x].metrics
                            for x in runs.values()),
                timeout=60,
            )
            await pilot.pause()
            # The key metric is the first published one, not the last loss.
            assert listing.metric == "accuracy"
            assert listing.cells_of(runs[0.01])["metric"] == "0.9"
            assert listing.cells_of(runs[0.003])["metric"] == "0.97"
            assert "accuracy" in screen_text(app)

            # Sorted by the metric, best first; again: the other way round.
            listing.sort_by("metric")
            await pilot.pause()
            assert listing.rows == [runs[0.003], runs[0.01]]
            listing.sort_by("metric")
            await pilot.pause()
            assert listing.rows == [runs[0.01], runs[0.003]]
            listing.choose_metric("accuracy/cat")
            await pilot.pause()
            assert listing.cells_of(runs[0.01])["metric"] == "0.45"

            # Mark both (top row, then the next), compare.
            listing.query_one("#executions", RunTable).move_cursor(row=0)
            await pilot.press("space", "down", "space", "c")
            await until(pilot, lambda: isinstance(app.screen, CompareScreen))
            compare = app.screen
            assert isinstance(compare, CompareScreen)
            await pilot.pause()
            assert compare.row("Fit.learning_rate") == ("0.01", "0.003")
            assert compare.row("accuracy") == ("0.9", "0.97")
            assert compare.row("accuracy/cat") == ("0.45", "0.485")
            assert compare.row("Fit.steps") is None  # the same in both: not a difference
            assert all(cell.endswith("s") for cell in compare.row("duration") or ())
            shown = screen_text(app)
            for text in ("learning_rate", "0.01", "0.003", "accuracy", "0.9", "0.97"):
                assert text in shown, (text, shown)
            await pilot.press("2")  # the plots, overlaid
            await pilot.pause()
            charts = compare.query_one(PlotPanel).charts()
            assert set(charts["Loss"].lines) == {f"{runs[0.01][:8]} loss",
                                                 f"{runs[0.003][:8]} loss"}
            assert "Loss" in screen_text(app)


class TestLongList:
    async def test_hundreds_of_runs_scroll_and_sort_by_a_clicked_header(self) -> None:
        from forge_tui.app import MemoryBackend, MemoryHub

        from .conftest import build_paper_project

        hub = MemoryHub()
        paper = build_paper_project(hub)
        project = ProjectDoc(hub.room_doc(f"{paper.name}/main"))
        with project.doc.transaction():
            for i in range(300):
                xid = f"x{i:03d}"
                by = "Grace Hopper" if i % 2 else "Ada Lovelace"
                project.record_execution("pipe1", "c0ffee", by, execution_id=xid,
                                         status="succeeded")
                project.executions[xid]["created"] = f"2026-01-01T10:{i // 60:02d}:{i % 60:02d}"
        app = ForgeApp(MemoryBackend(hub, user="Ada Lovelace"), paper.name)
        async with app.run_test(size=(80, 24)) as pilot:
            await until(pilot, lambda: app.workspace is not None)
            await pilot.pause()
            await pilot.press("E")
            await until(pilot, lambda: isinstance(app.screen, ExecutionsScreen))
            listing = app.screen
            assert isinstance(listing, ExecutionsScreen)
            await until(pilot, lambda: len(listing.rows) == 300)
            assert listing.rows[0] == "x299"  # newest first
            await pilot.press("end")
            await pilot.pause()
            assert "x000" in screen_text(app) and "x299" not in screen_text(app)
            table = listing.query_one(RunTable)
            by = table.columns.index(("by", "by"))
            x = 2 + sum(width + 2 for width in table.widths[:by])
            await pilot.click(RunTable, offset=(x, 0))  # the "by" header
            await pilot.pause()
            assert listing.sort_key == "by"
            who = [listing.cells_of(xid)["by"] for xid in listing.rows]
            assert who == ["Ada Lovelace"] * 150 + ["Grace Hopper"] * 150


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

    def test_the_key_metric_is_the_first_published_one_else_the_last_plotted_point(
        self,
    ) -> None:
        execution: Any = {
            "meta": {"pipeline": {"jobs": {}}},
            "graphs": {"j": {"Loss": {"train": [[0, 1.0], [1, 0.25]]}}},
        }
        plotted = RunDetails("x1", execution=execution)
        assert default_metric([plotted]) == "train (last)"
        assert metric_value(plotted, "train (last)") == 0.25
        published = RunDetails("x2", metrics=flatten_metrics(
            {"metrics": {"accuracy": 0.9, "accuracy/cat": 0.5, "note": "text", "ok": True}}
        ))
        assert list(published.metrics) == ["accuracy", "accuracy/cat"]
        assert default_metric([plotted, published]) == "accuracy"
        assert default_metric([RunDetails("x3")]) is None
