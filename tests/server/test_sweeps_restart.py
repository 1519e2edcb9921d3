"""A sweep outlives its server: stopped mid-run, the next server resumes it from its study, keeps
the trials that finished and runs the interrupted one again; cancel and resume by hand too."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sweep_fixtures import (
    RATES,
    define,
    example_project,
    finish,
    sweep_api,
    sweep_setups,
    tiny_example,
)

from forge_server.client import open_document
from forge_server.relay.config import RelayConfig
from forge_server.relay.server import RelayServer
from forge_server.sweeps import SWEEPS


async def until(server: Any, path: str, done: Any, timeout: float = 120) -> dict[str, Any]:
    """Poll a run's record until ``done(record)``."""
    call = sweep_api(server)
    async with asyncio.timeout(timeout):
        while True:
            status, record = await call("GET", path)
            assert status == 200, record
            if done(record):
                return dict(record)
            await asyncio.sleep(0.1)


def statuses(record: dict[str, Any]) -> list[str]:
    return [t["status"] for t in record["trials"]]


async def test_a_sweep_survives_a_server_restart(tmp_path: Path) -> None:
    data = tmp_path / "data"
    config = RelayConfig(data_dir=data)
    async with RelayServer(config, setups=sweep_setups(data)) as server:
        project = await example_project(server, {"max_iterations": 60})
        await define(server, project, budget={"concurrency": 1})
        status, run = await sweep_api(server)("POST", f"{project}/sweeps/lr/runs", {})
        assert status == 201, run
        path = f"{project}/sweeps/lr/runs/{run['run']}"
        # Stop the server while the second trial runs.
        before = await until(server, path, lambda r: statuses(r)[:2] == ["succeeded", "running"])
    first = before["trials"][0]
    async with RelayServer(config, setups=sweep_setups(data), port=0) as server:
        resumed = await until(server, path, lambda r: r["status"] == "running" and r["running"])
        record = await finish(server, project, "lr", run["run"])
    assert resumed["trials"][1]["status"] == "interrupted"
    assert record["status"] == "finished", record
    done = [t for t in record["trials"] if t["status"] == "succeeded"]
    assert sorted(t["settings"]["Train.learning_rate"] for t in done) == sorted(RATES)
    assert done[0] == {**first, "best": done[0]["best"]}  # kept, not run again
    retry = next(t for t in record["trials"] if t["retry_of"] == 1)
    assert retry["values"] == record["trials"][1]["values"] and retry["status"] == "succeeded"


async def test_cancel_then_resume(tmp_path: Path) -> None:
    data = tmp_path / "data"
    async with RelayServer(RelayConfig(data_dir=data), setups=sweep_setups(data)) as server:
        project = await example_project(server, {"max_iterations": 60})
        await define(server, project, budget={"concurrency": 1, "trials": 3})
        call = sweep_api(server)
        status, run = await call("POST", f"{project}/sweeps/lr/runs", {})
        path = f"{project}/sweeps/lr/runs/{run['run']}"
        await until(server, path, lambda r: statuses(r)[:1] == ["running"])
        status, cancelled = await call("POST", f"{path}/cancel", {})
        assert status == 202, cancelled
        await asyncio.wait_for(server.app[SWEEPS].wait(project, run["run"]), 60)
        status, record = await call("GET", path)
        assert record["status"] == "cancelled" and statuses(record) == ["cancelled"]
        assert "cancelled by" in record["note"]
        status, body = await call("POST", f"{path}/cancel", {})
        assert status == 409 and "not running" in body["error"]
        status, resumed = await call("POST", f"{path}/resume", {})
        assert status == 202, resumed
        record = await finish(server, project, "lr", run["run"])
        assert record["status"] == "finished"
        assert statuses(record) == ["cancelled", "succeeded", "succeeded", "succeeded"]
        assert record["trials"][1]["retry_of"] == 0
        status, body = await call("POST", f"{path}/resume", {})
        assert status == 409 and "finished its budget" in body["error"]


async def test_a_sweep_survives_kill_9_of_forge_serve(
        tmp_path: Path, serve_process: Callable[..., Any],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FORGE_CONFIG_DIR", str(tmp_path / "config"))
    server = serve_process(tmp_path / "data", "--no-auth", "--executor", "local")
    project = "killed"
    async with open_document(server.url, None, f"{project}/main") as client:
        client.doc.apply_update(tiny_example(project, {"max_iterations": 60}).doc.get_update())
    await define(server, project, budget={"concurrency": 1, "trials": 3})
    status, run = await sweep_api(server)("POST", f"{project}/sweeps/lr/runs", {})
    assert status == 201, run
    path = f"{project}/sweeps/lr/runs/{run['run']}"
    await until(server, path, lambda r: statuses(r)[:2] == ["succeeded", "running"])
    server.kill()
    server.start()
    record = await until(server, path, lambda r: r["status"] != "running", timeout=180)
    assert record["status"] == "finished", record
    assert statuses(record)[:2] == ["succeeded", "interrupted"]
    assert statuses(record).count("succeeded") == 3
