"""The execution monitor at 80×24 and up, on execution documents in an in-process hub: every
pane reachable, follow mode (the running job, the newest line), search, cached jobs."""

from __future__ import annotations

from typing import Any

from forge_ops.schema import ExecutionDoc
from forge_tui.app import ForgeApp, MemoryBackend, MemoryHub
from forge_tui.app.screens.monitor import MonitorScreen
from forge_tui.app.widgets.job_output import JobOutput

from .conftest import build_paper_project, screen_text
from .test_monitor import AFTER, EMIT, until

SMALL = (80, 24)
START = "2026-01-01T10:00:00+00:00"


def job(status: str, *, started: str | None = START, finished: str | None = None,
        **fields: Any) -> dict[str, Any]:
    return {
        "node": "n", "operation": "op", "status": status, "started": started,
        "finished": finished, "error": None, "cache_key": None, "cached_from": None,
        "outputs": {}, **fields,
    }


def write_execution(hub: MemoryHub, execution_id: str, jobs: dict[str, Any],
                    status: str = "running", **content: Any) -> ExecutionDoc:
    """Execution ``execution_id`` of project "cifar": Emit (j1) → After (j2)."""
    plain = {
        "meta": {
            "pipeline": {
                "name": "good",
                "order": ["j1", "j2"],
                "jobs": {
                    "j1": {"name": "Emit", "operation": "op1", "code": EMIT, "inputs": {}},
                    "j2": {"name": "After", "operation": "op2", "code": AFTER,
                           "inputs": {"value": ["j1", "out"]}},
                },
            },
            "commit": "c0ffee", "status": status, "executor": "local",
            "started": START, "finished": None if status == "running" else START,
        },
        "jobs": jobs,
        **content,
    }
    return ExecutionDoc.from_plain(plain, hub.room_doc(f"cifar/executions/{execution_id}"))


async def open_monitor_on(pilot: Any, app: ForgeApp, execution_id: str) -> MonitorScreen:
    await pilot.pause()
    await app.screen.open_now("execution", execution_id)  # type: ignore[attr-defined]
    await until(pilot, lambda: isinstance(app.screen, MonitorScreen))
    monitor = app.screen
    assert isinstance(monitor, MonitorScreen)
    await until(pilot, lambda: monitor.plain and monitor.plain["jobs"])
    await pilot.pause()
    return monitor


def new_app() -> tuple[ForgeApp, MemoryHub]:
    hub = MemoryHub()
    build_paper_project(hub)
    return ForgeApp(MemoryBackend(hub, user="Ada Lovelace"), "cifar"), hub


def lines(count: int, word: str = "iteration") -> list[str]:
    return [f"{word} {i:03d}" for i in range(count)]


LOSS = {"Loss": {"loss": [[i, 1 / (i + 1)] for i in range(30)]}}


class TestPanesAt80x24:
    async def test_console_plot_code_and_outputs_are_each_one_key_away(self) -> None:
        app, hub = new_app()
        write_execution(
            hub, "x1",
            {"j1": job("succeeded", finished="2026-01-01T10:00:09+00:00",
                       outputs={"out": "ab" * 32}),
             "j2": job("succeeded", finished="2026-01-01T10:00:10+00:00")},
            status="succeeded",
            console={"j1": lines(60)},
            graphs={"j1": LOSS},
        )
        async with app.run_test(size=SMALL) as pilot:
            monitor = await open_monitor_on(pilot, app, "x1")
            await pilot.press("up")  # to Emit, which plotted and printed
            await pilot.pause()
            assert monitor.selected == "j1"
            shown = screen_text(app)
            assert "iteration 059" in shown, shown  # the console, at its newest line
            assert "1 Console" in shown and "4 Outputs" in shown
            await pilot.press("2")
            await pilot.pause()
            shown = screen_text(app)
            assert "Loss" in shown and "iteration 059" not in shown, shown
            await pilot.press("3")
            await pilot.pause()
            assert "def emit(" in screen_text(app)
            await pilot.press("4")
            await pilot.pause()
            assert "output out → abababab" in screen_text(app)
            await pilot.press("1")
            await pilot.pause()
            assert "iteration 059" in screen_text(app)

    async def test_a_large_terminal_shows_code_plot_and_console_side_by_side(self) -> None:
        app, hub = new_app()
        write_execution(
            hub, "x1", {"j1": job("running"), "j2": job("queued", started=None)},
            console={"j1": lines(60)}, graphs={"j1": LOSS},
        )
        async with app.run_test(size=(140, 40)) as pilot:
            monitor = await open_monitor_on(pilot, app, "x1")
            shown = screen_text(app)
            for visible in ("def emit(", "Loss", "iteration 059", "Emit  ▶ running"):
                assert visible in shown, (visible, shown)
            assert "1 Console" not in shown  # no pane bar: every pane is on screen
            output = monitor.query_one(JobOutput)
            await pilot.press("1")  # the number keys take the keyboard to that pane
            assert app.focused is output.console
            await pilot.press("escape")  # and Escape brings it back to the job graph
            assert app.focused is monitor.query_one("#monitor-graph")
            assert app.screen is monitor


class TestFollow:
    async def test_the_newest_line_stays_on_screen_when_a_plot_appears_above_it(self) -> None:
        """The console shrinks as the first plot arrives; following keeps its end in view."""
        app, hub = new_app()
        doc = write_execution(
            hub, "x1", {"j1": job("running"), "j2": job("queued", started=None)},
            console={"j1": lines(40)},
        )
        async with app.run_test(size=(140, 40)) as pilot:
            monitor = await open_monitor_on(pilot, app, "x1")
            output = monitor.query_one(JobOutput)
            assert "iteration 039" in screen_text(app)
            doc.add_points("j1", "Loss", "loss", [(i, 1 / (i + 1)) for i in range(20)])
            await until(pilot, lambda: "Loss" in output.plots.charts())
            await pilot.pause()
            await pilot.pause()
            assert "iteration 039" in screen_text(app), screen_text(app)
            doc.append_console("j1", ["iteration 040"])
            await until(pilot, lambda: output.console.shown[-1] == "iteration 040")
            await pilot.pause()
            assert "iteration 040" in screen_text(app), screen_text(app)

    async def test_the_running_job_is_selected_until_the_user_picks_one(self) -> None:
        app, hub = new_app()
        doc = write_execution(
            hub, "x1", {"j1": job("running"), "j2": job("queued", started=None)},
            console={"j1": ["emitting"]},
        )
        async with app.run_test(size=SMALL) as pilot:
            monitor = await open_monitor_on(pilot, app, "x1")
            assert monitor.selected == "j1"
            doc.set_job_status("j1", "succeeded")
            doc.set_job_status("j2", "running")
            doc.append_console("j2", ["got 12"])
            await until(pilot, lambda: monitor.selected == "j2")
            assert "got 12" in screen_text(app)
            await pilot.press("up")  # the user picks Emit: it stays picked
            assert monitor.selected == "j1"
            doc.set_job_status("j2", "succeeded")
            await pilot.pause(0.2)
            assert monitor.selected == "j1"
            doc.set_job_status("j2", "running")
            await pilot.press("f")  # follow again: back to the running job
            await until(pilot, lambda: monitor.selected == "j2")

    async def test_search_brings_the_console_and_its_match_on_screen(self) -> None:
        app, hub = new_app()
        write_execution(
            hub, "x1",
            {"j1": job("succeeded", finished="2026-01-01T10:00:09+00:00"),
             "j2": job("succeeded", finished="2026-01-01T10:00:10+00:00")},
            status="succeeded", console={"j1": lines(300)}, graphs={"j1": LOSS},
        )
        async with app.run_test(size=SMALL) as pilot:
            monitor = await open_monitor_on(pilot, app, "x1")
            await pilot.press("up", "2")  # Emit, its plot pane
            await pilot.pause()
            assert "iteration" not in screen_text(app)
            await pilot.press("slash")
            await pilot.pause()
            for key in "iteration 042":
                await pilot.press("space" if key == " " else key)
            await pilot.press("enter")
            await until(pilot, lambda: app.screen is monitor)
            await pilot.pause()
            await pilot.pause()
            shown = screen_text(app)
            assert "iteration 042" in shown and "1/1" in shown, shown
            await pilot.press("n")  # the only match again: still on screen
            await pilot.pause()
            assert "iteration 042" in screen_text(app)


class TestStatusAndCache:
    async def test_a_status_line_goes_when_the_run_moves_on(self) -> None:
        app, hub = new_app()
        doc = write_execution(
            hub, "x1", {"j1": job("running"), "j2": job("queued", started=None)},
        )
        async with app.run_test(size=SMALL) as pilot:
            monitor = await open_monitor_on(pilot, app, "x1")
            message = monitor.query_one("#monitor-message")
            await pilot.press("R")
            assert "needs a Forge server" in str(message.render())
            doc.set_job_status("j1", "succeeded")
            await until(pilot, lambda: not message.display)
            assert "needs a Forge server" not in screen_text(app)

    async def test_a_cached_job_shows_the_console_and_plots_of_the_run_it_came_from(
        self,
    ) -> None:
        app, hub = new_app()
        done = "2026-01-01T10:00:09+00:00"
        write_execution(
            hub, "x1",
            {"j1": job("succeeded", finished=done, cache_key="k-emit"),
             "j2": job("succeeded", finished=done, cache_key="k-after")},
            status="succeeded",
            console={"j1": lines(20), "j2": ["got 12"]},
            graphs={"j1": LOSS},
        )
        cached = {"status": "cached", "started": done, "finished": done}
        write_execution(
            hub, "x2",
            {"j1": job(**cached, cache_key="k-emit", cached_from="x1"),
             "j2": job(**cached, cache_key="k-after", cached_from="x1")},
            status="succeeded",
        )
        async with app.run_test(size=SMALL) as pilot:
            monitor = await open_monitor_on(pilot, app, "x2")
            await pilot.press("up")
            output = monitor.query_one(JobOutput)
            await until(pilot, lambda: output.console.shown == lines(20))
            await pilot.pause()
            shown = screen_text(app)
            assert "iteration 019" in shown and "cached: from x1" in shown, shown
            await pilot.press("2")
            await pilot.pause()
            shown = screen_text(app)
            assert "No plots." not in shown and "Loss (cached: from x1)" in shown, shown


class TestLiveExecution:
    def test_reading_what_is_new_gives_what_reading_everything_gives(self) -> None:
        from forge_tui.app._live_execution import LiveExecution

        doc = ExecutionDoc(console_cap=5)
        doc.init({"name": "p", "jobs": {}}, "c0ffee", "local")
        first, second = doc.add_job("n1", "op"), doc.add_job("n2", "op")
        live = LiveExecution(doc)
        assert live.read() == doc.to_plain()
        for round_ in range(4):  # past the console's cap: lines dropped at its start
            doc.append_console(first, [f"a{round_}.{i}" for i in range(3)])
            points = [(round_ * 2 + i, 1.0 / (i + 1)) for i in (0, 1)]
            doc.add_points(first, "Loss", "train", points)
            doc.add_points(second, "Acc", "test", [(round_, 0.5)])
            assert live.read() == doc.to_plain(), round_
        doc.set_image(second, "sample", "ab" * 32)
        doc.set_job_status(first, "succeeded")
        assert live.read() == doc.to_plain()
        assert live.read()["console_dropped"] == {first: 7}
