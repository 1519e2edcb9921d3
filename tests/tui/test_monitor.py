"""The execution monitor against a real relay with history and the coordinator (local executor).

A pipeline is run from its diagram (ctrl+r); the monitor follows the execution document live:
statuses, plot points, console lines, a failed job's traceback, restart of one job.
Fixtures here are shared with test_executions.py and test_history_view.py.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
import uuid
from collections.abc import AsyncIterator, Callable
from multiprocessing import resource_tracker
from typing import Any

import pytest
import pytest_asyncio
from textual.widgets import Input

from forge_ops.schema import ProjectDoc
from forge_server.coordinator import CoordinatorConfig, coordinator_setup
from forge_server.history import HistoryConfig, history_setup
from forge_server.relay.app import ROOMS
from forge_server.relay.config import RelayConfig
from forge_server.relay.server import RelayServer
from forge_tui.app import ForgeApp, LinkState, ServerBackend
from forge_tui.app.api import ApiError, ForgeApi
from forge_tui.app.execution_view import execution_spec
from forge_tui.app.screens.modals import FuzzyPicker, TextScreen
from forge_tui.app.screens.monitor import MonitorScreen
from forge_tui.app.screens.project import ProjectScreen
from forge_tui.app.screens.run_dialog import RunDialog
from forge_tui.app.widgets.graph_editor import GraphEditor
from forge_tui.app.widgets.job_output import JobOutput, elapsed_seconds, format_elapsed
from forge_tui.render import render_graph

from .conftest import screen_text, shown

SIZE = (110, 40)

EMIT = """
import time

from forge_ops.runtime import Graph


def emit(*, steps: int = 12, pause: float = 0.1, scale: float = 1.0) -> int:
    line = Graph("Loss").line("loss")
    for step in range(steps):
        print("step", step)
        line.add(step, scale / (step + 1))
        time.sleep(pause)
    return steps
"""
AFTER = """
def after(value: int, /) -> int:
    print("got", value)
    return value + 1
"""
BOOM = """
def boom(value: int, /) -> int:
    raise ValueError("boom: the value was " + str(value))
"""
PICTURE = """
import numpy

from forge_ops.runtime import image


def picture() -> int:
    pixels = numpy.zeros((8, 8, 3), dtype=numpy.uint8)
    pixels[:4, :, 0] = 255  # upper half red
    pixels[4:, :, 2] = 255  # lower half blue
    image("sample", pixels)
    return 1
"""


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def server(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[RelayServer]:
    """A relay on a real port with history and the coordinator running jobs locally."""
    # Jobs start from a forkserver whose resource tracker is spawned with this process's
    # stderr; under a Textual test app stderr is captured (no file descriptor), so start the
    # tracker now, as a real `forge serve` process would have it.
    resource_tracker.ensure_running()
    data_dir = tmp_path_factory.mktemp("tui-runs")
    config = CoordinatorConfig(
        artifacts=str(data_dir / "artifacts"),
        executor="local",
        local_workers=2,
        cancel_grace_s=2.0,
    )
    setups = [
        history_setup(HistoryConfig(debounce_s=30, max_interval_s=60)),
        coordinator_setup(config),
    ]
    async with RelayServer(RelayConfig(data_dir=data_dir), setups=setups) as relay:
        yield relay


def build_project(name: str) -> tuple[ProjectDoc, dict[str, str]]:
    """Pipelines "good" (Emit → After), "bad" (Emit → Boom), "broken" (Boom, unconnected),
    "pictures" (Picture, which shows an image)."""
    project = ProjectDoc.create(name)
    ops = {
        op: project.add_operation(op, code)
        for op, code in (("Emit", EMIT), ("After", AFTER), ("Boom", BOOM), ("Picture", PICTURE))
    }
    ids = {}
    for pipeline, second in (("good", "After"), ("bad", "Boom")):
        pid = ids[pipeline] = project.add_pipeline(pipeline)
        emit = project.add_node(pid, ops["Emit"])
        other = project.add_node(pid, ops[second])
        project.connect(pid, emit, "out", other, "value")
    ids["broken"] = project.add_pipeline("broken")
    ids["broken.Boom"] = project.add_node(ids["broken"], ops["Boom"])
    ids["pictures"] = project.add_pipeline("pictures")
    project.add_node(ids["pictures"], ops["Picture"])
    return project, ids


async def new_project(server: RelayServer) -> tuple[str, dict[str, str]]:
    name = f"m-{uuid.uuid4().hex[:10]}"
    project, ids = build_project(name)
    await server.app[ROOMS].create(f"{name}/main", project.doc.get_update())
    return name, ids


async def until(pilot: Any, condition: Callable[[], Any], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            screen = pilot.app.screen
            state = ""
            if isinstance(screen, MonitorScreen) and screen.plain is not None:
                state = f"; execution: {screen.plain['meta']['status']}, jobs: " + ", ".join(
                    f"{job_id} {job['status']}" for job_id, job in screen.plain["jobs"].items()
                )
            raise AssertionError(f"condition not met in time on {screen!r}{state}")
        await pilot.pause(0.05)


async def open_project(pilot: Any, app: ForgeApp) -> ProjectScreen:
    await until(
        pilot,
        lambda: (
            isinstance(app.screen, ProjectScreen)
            and app.workspace is not None
            and app.workspace.link.state is LinkState.CONNECTED
            and app.workspace.snapshot()["pipelines"]
        ),
    )
    assert isinstance(app.screen, ProjectScreen)
    return app.screen


def status_of(screen: MonitorScreen, name: str) -> str | None:
    plain = screen.plain
    if plain is None:
        return None
    specs = plain["meta"]["pipeline"].get("jobs") or {}
    for job_id, job in plain["jobs"].items():
        if specs.get(job_id, {}).get("name") == name:
            return str(job["status"])
    return None


def job_id(screen: MonitorScreen, name: str) -> str:
    assert screen.plain is not None
    specs = screen.plain["meta"]["pipeline"]["jobs"]
    return next(j for j, spec in specs.items() if spec["name"] == name)


async def set_scale(server: RelayServer, project: str, pipeline: str, scale: float) -> None:
    """Set the scale of the Emit node of ``pipeline`` on the server's copy of ``project``."""
    async with server.app[ROOMS].hold(f"{project}/main") as room:
        with room.edit("test") as doc:
            view = ProjectDoc(doc)
            nodes = view.to_plain()["pipelines"][pipeline]["nodes"]
            emit = next(n for n, node in nodes.items() if node["name"] == "Emit")
            view.set_attribute(pipeline, emit, "scale", scale)


def first_start(meta: Any) -> dt.datetime:
    return dt.datetime.fromisoformat(meta["started"])


async def until_finished(server: RelayServer, execution: str) -> None:
    from forge_server.coordinator import COORDINATOR

    await asyncio.wait_for(server.app[COORDINATOR].wait(execution), 60)


class TestMonitor:
    async def test_run_from_diagram_follows_live_then_restart_reruns_one_job(
        self, server: RelayServer
    ) -> None:
        name, ids = await new_project(server)
        app = ForgeApp(ServerBackend(server.url, None, "Ada Lovelace"), name)
        async with app.run_test(size=SIZE) as pilot:
            screen = await open_project(pilot, app)
            await screen.open_now("pipeline", ids["good"])
            await pilot.pause()
            await pilot.press("ctrl+r")
            await until(pilot, lambda: isinstance(app.screen, MonitorScreen))
            monitor = app.screen
            assert isinstance(monitor, MonitorScreen)
            output = monitor.query_one(JobOutput)
            # Emit is selected first; it runs, plotting and printing as it goes.
            await until(pilot, lambda: status_of(monitor, "Emit") == "running")
            assert "▶" in monitor.query_one("#monitor-graph").rendered.text()  # type: ignore[attr-defined]
            await until(pilot, lambda: "Loss" in output.plots.charts())
            first_points = output.plots.charts()["Loss"].point_count
            # Pinned to Emit (follow mode would move on to After when Emit is done).
            monitor.select(job_id(monitor, "Emit"))
            await until(pilot, lambda: output.plots.charts()["Loss"].point_count == 12)
            assert first_points < 12, "points arrive while the job runs"
            await until(pilot, lambda: status_of(monitor, "After") == "succeeded")
            assert status_of(monitor, "Emit") == "succeeded"
            assert output.console.shown[:2] == ["step 0", "step 1"]
            assert "def emit(" in monitor.query_one("#job-code").text  # type: ignore[attr-defined]
            drawn = monitor.query_one("#monitor-graph").rendered.text()  # type: ignore[attr-defined]
            assert drawn.count("✓") == 2
            await until(
                pilot, lambda: monitor.plain and monitor.plain["meta"]["status"] == "succeeded"
            )

            # Restart After: it runs again; Emit keeps its result.
            before = dict(monitor.plain["jobs"])  # type: ignore[index]
            emit, after = job_id(monitor, "Emit"), job_id(monitor, "After")
            monitor.select(after)
            await pilot.press("R")
            await until(
                pilot,
                lambda: (
                    monitor.plain["jobs"][after]["started"]  # type: ignore[index]
                    != before[after]["started"]
                    and status_of(monitor, "After") == "succeeded"
                ),
            )
            assert monitor.plain["jobs"][emit] == before[emit]  # type: ignore[index]
            # The rerun is a new attempt with a console of its own (the first is kept with
            # the job's earlier attempts).
            await until(pilot, lambda: output.console.shown == ["got 12"])
            earlier = monitor.execution.earlier_attempts(after)
            assert [(a["status"], a["console"], a["ended_by"]) for a in earlier] == [
                ("succeeded", ["got 12"], "restart")]
            monitor.selected = after  # A shows the selected job's earlier attempts
            await pilot.press("A")
            await until(pilot, lambda: isinstance(app.screen, TextScreen))
            shown_text = str(app.screen.query_one("#text-body").render())
            assert "attempt 1: succeeded" in shown_text and "ended by restart" in shown_text
            assert "│ got 12" in shown_text

    async def test_at_80x24_the_newest_line_shows_and_a_restart_leaves_no_stale_line(
        self, server: RelayServer
    ) -> None:
        name, ids = await new_project(server)
        # A scale of its own: no other test's run can be a cache hit for this one.
        await set_scale(server, name, ids["good"], 1 + uuid.uuid4().int % 997 / 997)
        app = ForgeApp(ServerBackend(server.url, None, "Ada Lovelace"), name)
        async with app.run_test(size=(80, 24)) as pilot:
            screen = await open_project(pilot, app)
            await screen.open_now("pipeline", ids["good"])
            await pilot.pause()
            await pilot.press("ctrl+r")
            await until(pilot, lambda: isinstance(app.screen, MonitorScreen))
            monitor = app.screen
            assert isinstance(monitor, MonitorScreen)
            finished = lambda: monitor.plain and monitor.plain["meta"]["status"] == "succeeded"  # noqa: E731
            await until(pilot, finished)
            await pilot.press("up")  # from After, where following ended, to Emit
            await pilot.pause()
            assert "step 11" in screen_text(app), screen_text(app)
            first = dict(monitor.plain["meta"])  # type: ignore[index]

            await pilot.press("R")  # restart Emit (and After)
            await until(pilot, lambda: not finished())
            await until(pilot, finished)
            meta = monitor.plain["meta"]  # type: ignore[index]
            # The header's clock counts from the restart, not from the first run's start.
            restarted = dt.datetime.fromisoformat(meta["started"])
            first_end = dt.datetime.fromisoformat(first["finished"])
            assert restarted >= first_end.replace(microsecond=0) > first_start(first)
            await until(pilot, lambda: not monitor.query_one("#monitor-message").display)
            assert "Restarting" not in screen_text(app)
            await pilot.press("q")  # back to the diagram: it says nothing stale either
            await until(pilot, lambda: isinstance(app.screen, ProjectScreen))
            editor = app.screen.query_one(GraphEditor)
            assert str(editor.query_one("#message").render()).strip() == ""

    async def test_a_cached_job_shows_the_console_of_the_run_it_came_from(
        self, server: RelayServer
    ) -> None:
        """A cached job's console and plot come from the execution it was cached from (in this
        project: a hit from another project's run names none of its executions, issue 18)."""
        scale = 1 + uuid.uuid4().int % 997 / 997
        name, ids = await new_project(server)
        await set_scale(server, name, ids["good"], scale)
        api = ForgeApi(server.url, None, name)
        record = await api.run("good")
        await until_finished(server, record["execution"])
        again = await api.run("good")
        await until_finished(server, again["execution"])
        app = ForgeApp(ServerBackend(server.url, None, "Ada Lovelace"), name)
        async with app.run_test(size=(80, 24)) as pilot:
            screen = await open_project(pilot, app)
            await screen.open_now("execution", again["execution"])
            await until(pilot, lambda: isinstance(app.screen, MonitorScreen))
            monitor = app.screen
            assert isinstance(monitor, MonitorScreen)
            await until(pilot, lambda: status_of(monitor, "Emit") == "cached")
            monitor.select(job_id(monitor, "Emit"))
            output = monitor.query_one(JobOutput)
            await until(pilot, lambda: "step 11" in output.console.shown)
            await pilot.pause()
            shown = screen_text(app)
            assert "step 11" in shown and f"cached: from {record['execution']}" in shown
            await pilot.press("2")
            await until(pilot, lambda: "Loss" in output.plots.charts())

    async def test_failed_job_shows_its_traceback(self, server: RelayServer) -> None:
        name, _ids = await new_project(server)
        api = ForgeApi(server.url, None, name)
        record = await api.run("bad")
        app = ForgeApp(ServerBackend(server.url, None, "Ada Lovelace"), name)
        async with app.run_test(size=SIZE) as pilot:
            screen = await open_project(pilot, app)
            await screen.open_now("execution", record["execution"])
            await until(pilot, lambda: isinstance(app.screen, MonitorScreen))
            monitor = app.screen
            assert isinstance(monitor, MonitorScreen)
            await until(pilot, lambda: status_of(monitor, "Boom") == "failed")
            monitor.select(job_id(monitor, "Boom"))
            await pilot.pause()
            output = monitor.query_one(JobOutput)
            assert output.has_class("-failed")
            error = str(output.query_one("#job-error").render())
            assert "ValueError" in error and "boom: the value was 12" in error
            assert "Traceback" in error
            monitor.select(job_id(monitor, "Emit"))
            await pilot.pause()
            drawn = monitor.query_one("#monitor-graph").rendered.text()  # type: ignore[attr-defined]
            assert "✗" in drawn and "╔" in drawn  # failed: cross glyph and a double border
            # Nothing is running: cancelling is refused and the refusal is shown.
            await pilot.press("C")
            await until(
                pilot, lambda: "refused" in str(monitor.query_one("#monitor-message").render())
            )
            await pilot.press("escape")
            await until(pilot, lambda: isinstance(app.screen, ProjectScreen))

    async def test_refused_run_marks_the_nodes_it_names(self, server: RelayServer) -> None:
        name, ids = await new_project(server)
        app = ForgeApp(ServerBackend(server.url, None, "Ada Lovelace"), name)
        async with app.run_test(size=SIZE) as pilot:
            screen = await open_project(pilot, app)
            await screen.open_now("pipeline", ids["broken"])
            editor = screen.query_one(GraphEditor)
            await pilot.press("ctrl+r")
            await until(pilot, lambda: editor.run_problems)
            assert set(editor.run_problems) == {ids["broken.Boom"]}
            assert "✗" in editor.canvas.rendered.text()
            assert "Boom" in str(editor.query_one("#message").render())
            assert isinstance(app.screen, ProjectScreen)  # no monitor for a refused run

            # run with options (the run dialog, tests/tui/test_run_dialog.py): refused too
            editor.run_problems = {}
            await pilot.press("ctrl+t")
            await shown(pilot, RunDialog, "#executor")
            await pilot.press("ctrl+s")
            await until(pilot, lambda: editor.run_problems)
            assert set(editor.run_problems) == {ids["broken.Boom"]}


class TestImages:
    async def test_a_job_image_shows_as_half_blocks_and_outputs_have_summaries(
        self, server: RelayServer
    ) -> None:
        import zlib

        import aiohttp

        from forge_tui.app.screens.modals import TextScreen

        name, _ids = await new_project(server)
        api = ForgeApi(server.url, None, name)
        record = await api.run("pictures")
        execution = record["execution"]
        app = ForgeApp(ServerBackend(server.url, None, "Ada Lovelace"), name)
        async with app.run_test(size=SIZE) as pilot:
            screen = await open_project(pilot, app)
            await screen.open_now("execution", execution)
            await until(pilot, lambda: isinstance(app.screen, MonitorScreen))
            monitor = app.screen
            assert isinstance(monitor, MonitorScreen)
            images = monitor.query_one(JobOutput).images
            await until(pilot, lambda: "sample" in images.pictures, timeout=60)
            picture = images.pictures["sample"]
            # 8×8 pixels: 8 columns, 4 rows of ▀; red above, blue below.
            assert (picture.width, picture.height) == (8, 4)
            red, blue = (255, 0, 0), (0, 0, 255)
            assert picture.rows[0][0] == (red, red) and picture.rows[1][7] == (red, red)
            assert picture.rows[2][0] == (blue, blue) and picture.rows[3][3] == (blue, blue)
            drawn = str(images.render())
            assert "image sample" in drawn and "▀" * 8 in drawn

            # Summaries by hash of the output and the image (Picture is no Output operation).
            await until(pilot, lambda: status_of(monitor, "Picture") == "succeeded", timeout=60)
            for choice, expected in (("out", "kind     json"), ("sample", "shape    [8, 8, 3]")):
                await pilot.press("a")
                picker_input = await shown(pilot, FuzzyPicker, "Input")
                assert isinstance(picker_input, Input)
                picker_input.value = choice
                await pilot.pause()
                await pilot.press("enter")
                body = str((await shown(pilot, TextScreen, "#text-body")).render())
                assert expected in body and "made by  job" in body and "provenance:" in body
                await pilot.press("escape")
                await until(pilot, lambda: app.screen is monitor)

        job = job_id(monitor, "Picture")
        digest = monitor.plain["images"][job]["sample"]  # type: ignore[index]
        summary = await api.execution_artifact(execution, digest)
        assert summary["summary"]["shape"] == [8, 8, 3]
        assert summary["produced_by"] == [{"job": job, "image": "sample"}]
        with pytest.raises(ApiError) as refused:
            await api.execution_artifact(execution, "ab" * 32)
        assert refused.value.status == 404 and "produced no artifact" in refused.value.message

        base = f"{server.url}/api/projects/{name}/executions/{execution}/jobs/{job}/images"
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{base}/sample") as answer:
                png = await answer.read()
                assert answer.content_type == "image/png"
                assert answer.headers["X-Forge-Shape"] == "8,8,3"
            assert png.startswith(b"\x89PNG\r\n\x1a\n")
            idat = png.index(b"IDAT")
            length = int.from_bytes(png[idat - 4 : idat], "big")
            rows = zlib.decompress(png[idat + 4 : idat + 4 + length])
            assert rows[:4] == b"\x00\xff\x00\x00"  # filter byte, then a red pixel
            async with session.get(f"{base}/sample", params={"max_side": "2"}) as answer:
                assert answer.headers["X-Forge-Shape"] == "2,2,3"
            async with session.get(f"{base}/nothing") as answer:
                assert answer.status == 404
                assert "its images: sample" in (await answer.json())["error"]
            async with session.get(f"{base}/sample", params={"format": "bmp"}) as answer:
                assert answer.status == 400
            by_name = base.replace(f"/jobs/{job}/", "/jobs/Picture/")  # as restart takes them
            async with session.get(f"{by_name}/sample") as answer:
                assert answer.status == 200 and await answer.read() == png


class TestPureParts:
    def test_execution_spec_draws_status_and_elapsed(self) -> None:
        execution: Any = {
            "meta": {
                "pipeline": {
                    "jobs": {
                        "a": {"name": "Emit", "operation": "op", "code": EMIT, "inputs": {}},
                        "b": {
                            "name": "After",
                            "operation": "op2",
                            "code": AFTER,
                            "inputs": {"value": ["a", "out"]},
                        },
                    }
                }
            },
            "jobs": {
                "a": {
                    "status": "succeeded",
                    "started": "2026-01-01T00:00:00+00:00",
                    "finished": "2026-01-01T00:01:05+00:00",
                },
                "b": {"status": "queued", "started": None, "finished": None},
            },
        }
        spec = execution_spec(execution, selected="b")
        assert [n.extra for n in spec.nodes] == ["1m05s", ""]
        assert spec.edges[0].src_port == "out" and spec.edges[0].dst_port == "value"
        text = render_graph(spec).text()
        assert "✓" in text and "·" in text and "1m05s" in text

    def test_elapsed(self) -> None:
        assert elapsed_seconds(None, None) is None
        assert (
            format_elapsed(elapsed_seconds("2026-01-01T00:00:00", "2026-01-01T00:00:02.5"))
            == "2.5s"
        )
        assert format_elapsed(7300) == "2h01m"


class TestConsoleView:
    async def test_follow_search_and_dropped_lines(self) -> None:
        from textual.app import App, ComposeResult

        from forge_tui.app.widgets.console_view import ConsoleView

        class One(App[None]):
            def compose(self) -> ComposeResult:
                yield ConsoleView(id="console")

        app = One()
        async with app.run_test(size=(60, 12)) as pilot:
            console = app.query_one(ConsoleView)
            lines = [f"line {i}" for i in range(100)]
            console.show(lines[:50])
            await pilot.pause()
            assert console.following and console.scroll_y == console.max_scroll_y
            console.show(lines)  # only the new 50 are written
            await pilot.pause()
            assert console.line_count == 100 and console.scroll_y == console.max_scroll_y
            assert console.search("LINE 1") == 11  # 1, 10..19; case-insensitive
            await pilot.pause()
            assert not console.following  # searching pauses follow mode
            assert console.next_match() == 10
            assert console.next_match(-1) == 1
            assert "/LINE 1: 1/11" in console.border_title
            console.follow(True)
            # the job's console was capped: older lines dropped and counted
            console.show(lines[60:], dropped=60)
            await pilot.pause()
            assert console.lines[0] == "… 60 earlier lines dropped"
            assert console.line_count == 41


def finished_execution(hub: Any, project: str, execution_id: str = "x1") -> None:
    """An execution document in the in-process hub: Emit succeeded, After failed."""
    from forge_ops.schema import ExecutionDoc

    start, end = "2026-01-01T10:00:00+00:00", "2026-01-01T10:00:04.5+00:00"
    ExecutionDoc.from_plain(
        {
            "meta": {
                "pipeline": {
                    "name": "good",
                    "by": "Ada Lovelace",
                    "order": ["j1", "j2"],
                    "jobs": {
                        "j1": {
                            "name": "Emit",
                            "operation": "op1",
                            "code": EMIT,
                            "inputs": {},
                            "attributes": {"steps": 4},
                        },
                        "j2": {
                            "name": "After",
                            "operation": "op2",
                            "code": BOOM,
                            "inputs": {"value": ["j1", "out"]},
                            "attributes": {},
                        },
                    },
                },
                "commit": "c0ffee",
                "status": "failed",
                "executor": "local",
                "started": start,
                "finished": end,
            },
            "jobs": {
                "j1": {
                    "node": "j1",
                    "operation": "op1",
                    "status": "succeeded",
                    "started": start,
                    "finished": "2026-01-01T10:00:02+00:00",
                    "error": None,
                    "cache_key": None,
                    "cached_from": None,
                    "outputs": {"out": "ab" * 32},
                },
                "j2": {
                    "node": "j2",
                    "operation": "op2",
                    "status": "failed",
                    "started": "2026-01-01T10:00:02+00:00",
                    "finished": end,
                    "error": 'Traceback (most recent call last):\n  File "boom.py", line 3'
                    "\nValueError: boom: the value was 4",
                    "cache_key": None,
                    "cached_from": None,
                    "outputs": {},
                },
            },
            "console": {"j1": [f"step {i}" for i in range(4)]},
            "graphs": {"j1": {"Loss": {"loss": [[i, 1 / (i + 1)] for i in range(4)]}}},
        },
        hub.room_doc(f"{project}/executions/{execution_id}"),
    )


class TestMonitorInProcess:
    def test_snapshot(self, snap_compare: Any) -> None:
        from forge_tui.app import MemoryBackend, MemoryHub

        from .conftest import build_paper_project

        paper = build_paper_project(MemoryHub())
        finished_execution(paper.hub, paper.name)
        app = ForgeApp(MemoryBackend(paper.hub, user="Ada Lovelace"), paper.name)

        async def open_it(pilot: Any) -> None:
            await pilot.pause()
            await app.screen.open_now("execution", "x1")  # type: ignore[attr-defined]
            await pilot.pause()

        assert snap_compare(app, terminal_size=(100, 34), run_before=open_it)

    async def test_keys_without_a_server_say_what_is_needed(self, paper: Any) -> None:
        from forge_tui.app import MemoryBackend

        finished_execution(paper.hub, paper.name)
        app = ForgeApp(MemoryBackend(paper.hub, user="Ada Lovelace"), paper.name)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            await app.screen.open_now("execution", "x1")  # type: ignore[attr-defined]
            await until(pilot, lambda: isinstance(app.screen, MonitorScreen))
            monitor = app.screen
            assert isinstance(monitor, MonitorScreen)
            await until(pilot, lambda: monitor.plain and monitor.plain["jobs"])
            assert monitor.selected == "j2"  # a finished run opens on the job that failed
            output = monitor.query_one(JobOutput)
            await pilot.press("up")  # spatial move to Emit
            assert monitor.selected == "j1"
            assert output.console.shown == ["step 0", "step 1", "step 2", "step 3"]
            await pilot.press("down")  # and back to After
            assert monitor.selected == "j2"
            assert "boom: the value was 4" in str(output.query_one("#job-error").render())
            await pilot.press("R")
            assert "needs a Forge server" in str(monitor.query_one("#monitor-message").render())
            # a live change to the document (as the coordinator writes it) shows at once
            from forge_ops.schema import ExecutionDoc

            ExecutionDoc(paper.hub.room_doc(f"{paper.name}/executions/x1")).append_console(
                "j2", ["late line"]
            )
            await until(pilot, lambda: output.console.shown == ["late line"])
