"""Ctrl+T's run dialog and restarts, against a real relay whose coordinator runs jobs locally:
the dialog's choices (recompute everything, executor, GPUs) reach the coordinator, and a
restart keeps to the executor this server runs unless another is picked."""

from __future__ import annotations

import asyncio
import uuid

from textual.widgets import Checkbox, Input, RadioButton, RadioSet

from forge_ops.arch import small_cnn, write_architecture
from forge_ops.execution._devices import local_gpu_count
from forge_ops.operations import builtin_code
from forge_ops.schema import ExecutionDoc, ProjectDoc
from forge_server.coordinator import COORDINATOR
from forge_server.relay.app import ROOMS
from forge_server.relay.rooms import execution_room
from forge_server.relay.server import RelayServer
from forge_tui.app import ForgeApp, ServerBackend
from forge_tui.app.api import ForgeApi
from forge_tui.app.screens.monitor import MonitorScreen
from forge_tui.app.screens.run_dialog import RunDialog, RunOptions, parse_gpus

from .conftest import shown
from .test_monitor import job_id, new_project, open_project, server, status_of, until

__all__ = ["server"]  # the module-scoped relay fixture of test_monitor

SIZE = (80, 24)


async def tiny_training_project(server: RelayServer) -> tuple[str, str]:
    """SyntheticImages → NormalizeData → Train(SmallCNN) → Test, small enough for seconds."""
    name = f"r-{uuid.uuid4().hex[:10]}"
    project = ProjectDoc.create(name)
    ops = {op: project.add_operation(op, builtin_code(op), builtin=True)
           for op in ("SyntheticImages", "NormalizeData", "Train", "Test")}
    net = write_architecture(project, small_cnn())
    pid = project.add_pipeline("tiny")
    data = project.add_node(pid, ops["SyntheticImages"],
                            attributes={"train_size": 64, "test_size": 20, "seed": 1})
    normalize = project.add_node(pid, ops["NormalizeData"])
    train = project.add_node(pid, ops["Train"], attributes={"max_iterations": 2,
                                                            "batch_size": 16},
                             references={"net": net})
    test = project.add_node(pid, ops["Test"])
    project.connect(pid, data, "train", normalize, "train")
    project.connect(pid, data, "test", normalize, "test")
    project.connect(pid, normalize, "train", train, "data")
    project.connect(pid, normalize, "test", test, "data")
    project.connect(pid, train, "out", test, "model")
    await server.app[ROOMS].create(f"{name}/main", project.doc.get_update())
    return name, pid


class TestRunDialog:
    async def test_the_dialogs_choices_reach_the_coordinator(self, server: RelayServer) -> None:
        name, pipeline = await tiny_training_project(server)
        api = ForgeApi(server.url, None, name)
        first = await api.run("tiny")  # so that a plain run would come from the cache
        await asyncio.wait_for(server.app[COORDINATOR].wait(first["execution"]), 120)
        app = ForgeApp(ServerBackend(server.url, None, "Ada Lovelace"), name)
        async with app.run_test(size=SIZE) as pilot:
            screen = await open_project(pilot, app)
            await screen.open_now("pipeline", pipeline)
            await pilot.pause()
            await pilot.press("ctrl+t")
            await shown(pilot, RunDialog, "#recompute")
            dialog = app.screen
            assert isinstance(dialog, RunDialog)
            await pilot.press("space")  # the checkbox has the focus first
            assert dialog.query_one("#recompute", Checkbox).value
            await pilot.press("tab")  # the executors; the third is "local"
            await pilot.press("down", "down", "enter")
            pressed = dialog.query_one("#executor", RadioSet).pressed_button
            assert isinstance(pressed, RadioButton) and pressed.id == "executor-local"
            await pilot.press("tab")
            gpus = dialog.query_one("#gpus", Input)
            assert gpus.has_focus
            await pilot.press(*"0.5", "enter")
            await until(pilot, lambda: isinstance(app.screen, MonitorScreen), timeout=60)
            monitor = app.screen
            assert isinstance(monitor, MonitorScreen)
            execution = monitor.execution_id
            assert execution != first["execution"]
            await asyncio.wait_for(server.app[COORDINATOR].wait(execution), 120)
            record = await api.execution(execution)
            assert record["executor"] == "local"
            jobs = {job["name"]: job for job in record["jobs"].values()}
            assert jobs["SyntheticImages"]["status"] == "succeeded"  # recomputed, not cached
            if local_gpu_count() == 0:  # a GPU job is never trained on the CPU without a word
                assert jobs["Train"]["status"] == "failed"
                assert "asks for num_gpus=0.5" in jobs["Train"]["error"]
            else:
                assert {job["status"] for job in jobs.values()} == {"succeeded"}
            room = await server.app[ROOMS].get(execution_room(name, execution))
            specs = ExecutionDoc(room.doc).to_plain()["meta"]["pipeline"]["jobs"]
            assert {spec["name"]: spec["settings"]["num_gpus"] for spec in specs.values()} == {
                "SyntheticImages": 0.0, "NormalizeData": 0.0, "Train": 0.5, "Test": 0.5}

    async def test_a_bad_gpu_count_is_refused_in_the_dialog(self, server: RelayServer) -> None:
        name, ids = await new_project(server)
        app = ForgeApp(ServerBackend(server.url, None, "Ada Lovelace"), name)
        async with app.run_test(size=SIZE) as pilot:
            screen = await open_project(pilot, app)
            await screen.open_now("pipeline", ids["good"])
            await pilot.pause()
            await pilot.press("ctrl+t")
            field = await shown(pilot, RunDialog, "#gpus")
            assert isinstance(field, Input)
            field.value = "-2"
            await pilot.pause()
            field.focus()
            await pilot.press("enter")
            assert isinstance(app.screen, RunDialog)  # still asking, with the reason
            assert "0 or more" in str(app.screen.query_one("#run-error").render())
            await pilot.press("escape")
            await until(pilot, lambda: not isinstance(app.screen, RunDialog))
            assert app.workspace is not None and not app.workspace.snapshot()["executions"]


class TestRestart:
    async def test_a_restart_keeps_to_this_servers_executor(self, server: RelayServer) -> None:
        """The execution ran on Ray (an earlier --executor ray): R restarts it on the local
        executor this server runs, says so, and starts no Ray runtime."""
        name, _ = await new_project(server)
        api = ForgeApi(server.url, None, name)
        record = await api.run("good")
        execution = str(record["execution"])
        await asyncio.wait_for(server.app[COORDINATOR].wait(execution), 60)
        async with server.app[ROOMS].hold(execution_room(name, execution)) as room:
            with room.edit("test") as doc:
                ExecutionDoc(doc).meta["executor"] = "ray"
            await room.written()
        app = ForgeApp(ServerBackend(server.url, None, "Ada Lovelace"), name)
        async with app.run_test(size=(110, 40)) as pilot:
            screen = await open_project(pilot, app)
            await screen.open_now("execution", execution)
            await until(pilot, lambda: isinstance(app.screen, MonitorScreen))
            monitor = app.screen
            assert isinstance(monitor, MonitorScreen)
            await until(pilot, lambda: status_of(monitor, "After") == "succeeded")
            monitor.select(job_id(monitor, "After"))
            # Ctrl+T offers the executor only, the one it ran on first.
            await pilot.press("ctrl+t")
            await shown(pilot, RunDialog, "#executor")
            assert not app.screen.query("#recompute") and not app.screen.query("#gpus")
            assert str(app.screen.query_one("#executor-default", RadioButton).label) == (
                "as it ran (ray)")
            await pilot.press("escape")
            await until(pilot, lambda: isinstance(app.screen, MonitorScreen))
            said: list[str] = []
            say = monitor.say
            monitor.say = lambda text: (said.append(text), say(text))[1]  # type: ignore[method-assign]
            await pilot.press("R")
            # The line clears once the run moves on, which may be at once: what was said counts.
            await until(pilot, lambda: any("on local (it ran on ray" in m for m in said))
            await asyncio.wait_for(server.app[COORDINATOR].wait(execution), 60)
            assert server.app[COORDINATOR].engines.started() == {"local"}
            assert (await api.execution(execution))["executor"] == "local"


def test_gpu_counts() -> None:
    assert parse_gpus("") is None and parse_gpus(" 1 ") == 1.0 and parse_gpus("0.5") == 0.5
    for bad in ("-1", "nan", "inf", "two"):
        try:
            parse_gpus(bad)
        except ValueError as exc:
            assert "0 or more" in str(exc)
        else:
            raise AssertionError(f"{bad!r} accepted")
    assert RunOptions() == RunOptions(executor=None, recompute=False, gpus=None)
