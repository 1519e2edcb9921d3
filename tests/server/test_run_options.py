"""Run options over HTTP on a real relay (local executor): recompute everything, the executor
and a GPU count reach the coordinator; a restart runs on the executor the execution ran on
unless another is asked for, and never starts a Ray runtime nobody asked for."""

from __future__ import annotations

import asyncio

import aiohttp
import coordinator_fixtures as fixtures
import pytest
from coordinator_fixtures import api, coordinator_of, execution_doc

from forge_ops.execution._devices import local_gpu_count
from forge_ops.schema import ExecutionDoc
from forge_server.relay.app import ROOMS
from forge_server.relay.rooms import execution_room
from forge_server.relay.server import RelayServer

coordinated = fixtures.coordinated
http = fixtures.http
paper_project = fixtures.paper_project


async def run_and_wait(server: RelayServer, session: aiohttp.ClientSession, project: str,
                       **options: object) -> dict[str, object]:
    base = f"{server.url}/api/projects/{project}"
    status, record = await api(session, "POST", f"{base}/runs", {"pipeline": "paper", **options})
    assert status == 201, record
    await asyncio.wait_for(coordinator_of(server).wait(record["execution"]), 120)
    status, final = await api(session, "GET", f"{base}/executions/{record['execution']}")
    assert status == 200
    return final


async def test_recompute_executor_and_gpus_reach_the_coordinator(
    coordinated: RelayServer, http: aiohttp.ClientSession, paper_project
) -> None:
    project = await paper_project()
    first = await run_and_wait(coordinated, http, project)
    assert first["status"] == "succeeded"
    again = await run_and_wait(coordinated, http, project, no_cache=True, executor="local",
                               gpus=0.5)
    assert again["executor"] == "local"
    jobs = again["jobs"]
    assert isinstance(jobs, dict)
    by_name = {job["name"]: job for job in jobs.values()}
    assert by_name["SyntheticImages"]["status"] == "succeeded"  # nothing from the cache
    if local_gpu_count() == 0:  # the GPU jobs are refused, never trained on the CPU
        assert by_name["Train"]["status"] == "failed"
        assert "asks for num_gpus=0.5" in by_name["Train"]["error"]
    else:
        assert again["status"] == "succeeded"
        assert {job["status"] for job in jobs.values()} == {"succeeded"}
        assert again["tasks_launched"] == len(jobs)
    # The GPU count is for the jobs that run a network (Train's net, Test's model) only.
    ran = (await execution_doc(coordinated, project, str(again["execution"]))).to_plain()
    gpus = {spec["name"]: spec["settings"]["num_gpus"]
            for spec in ran["meta"]["pipeline"]["jobs"].values()}
    assert gpus == {"SyntheticImages": 0.0, "NormalizeData": 0.0, "Train": 0.5, "Test": 0.5,
                    "ModelOut": 0.0, "MetricsOut": 0.0}
    base = f"{coordinated.url}/api/projects/{project}"
    for bad in (-1, "1", True, float("inf")):  # inf travels as JSON's Infinity
        status, body = await api(http, "POST", f"{base}/runs", {"pipeline": "paper", "gpus": bad})
        assert status == 400, body
        assert "'gpus' must be a number of GPUs, 0 or more" in body["error"]


async def test_a_restart_starts_no_runtime_nobody_asked_for(
    coordinated: RelayServer, http: aiohttp.ClientSession, paper_project
) -> None:
    """The execution ran on Ray (the server had --executor ray then); this server runs jobs
    locally: a restart runs locally and says so, unless the request names an executor."""
    project = await paper_project()
    first = await run_and_wait(coordinated, http, project)
    execution = str(first["execution"])
    async with coordinated.app[ROOMS].hold(execution_room(project, execution)) as room:
        with room.edit("test") as doc:
            ExecutionDoc(doc).meta["executor"] = "ray"
        await room.written()
    base = f"{coordinated.url}/api/projects/{project}/executions/{execution}"
    # The request's executor is the one used: an unknown one is refused by name.
    status, body = await api(http, "POST", f"{base}/jobs/Test/restart", {"executor": "gpu-farm"})
    assert status == 400 and "unknown executor 'gpu-farm'" in body["error"], body
    status, body = await api(http, "POST", f"{base}/jobs/Test/restart")
    assert status == 202, body
    assert body["executor"] == "local"
    await asyncio.wait_for(coordinator_of(coordinated).wait(execution), 60)
    assert coordinator_of(coordinated).engines.started() == {"local"}
    _, after = await api(http, "GET", base)
    assert after["status"] == "succeeded" and after["executor"] == "local"
    # Its next restart keeps the executor it now runs on.
    status, body = await api(http, "POST", f"{base}/jobs/Test/restart", {"executor": "local"})
    assert status == 202 and body["executor"] == "local"
    await asyncio.wait_for(coordinator_of(coordinated).wait(execution), 60)


def test_forge_run_refuses_a_bad_gpu_count_before_asking_the_server(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from forge_tui.cli import main

    assert main(["run", "p", "paper", "--gpus", "-1", "--server", "http://127.0.0.1:9"]) == 1
    assert "--gpus must be a number of GPUs, 0 or more" in capsys.readouterr().err
