"""The coordinator over HTTP on a real relay: runs, validation, restart, cancel, rerun, artifacts.

Jobs run on the local executor (child processes) with a tiny version of the paper's pipeline;
the execution documents are read back from the relay's rooms.
"""

from __future__ import annotations

import asyncio
import io
from typing import Any

import aiohttp
import coordinator_fixtures as fixtures
from coordinator_fixtures import api, coordinator_of, execution_doc, project_doc

from forge_ops.schema import ExecutionDoc, ProjectDoc
from forge_server.client import room_url
from forge_server.relay.app import ROOMS
from forge_server.relay.rooms import execution_room, project_room
from forge_server.relay.server import RelayServer
from tests.conftest import ws_refusal

# Fixtures shared with test_run_cli.py (see coordinator_fixtures.py).
coordinated = fixtures.coordinated
http = fixtures.http
paper_project = fixtures.paper_project

SLOW_OP = '''
import time


def slow(*, seconds: float = 30.0) -> int:
    for step in range(int(seconds * 10)):
        print("tick", step)
        time.sleep(0.1)
    return 1
'''

AFTER_SLOW = '''
def after(value: int, /) -> int:
    return value + 1
'''

QUICK = '''
def quick() -> int:
    return 1
'''


async def run_and_wait(server: RelayServer, session: aiohttp.ClientSession, project: str,
                       body: dict[str, object] | None = None) -> dict[str, object]:
    status, record = await api(session, "POST", f"{server.url}/api/projects/{project}/runs",
                               {"pipeline": "paper", **(body or {})})
    assert status == 201, record
    await asyncio.wait_for(coordinator_of(server).wait(record["execution"]), 120)
    status, final = await api(
        session, "GET", f"{server.url}/api/projects/{project}/executions/{record['execution']}")
    assert status == 200
    return final


class TestRun:
    async def test_paper_pipeline_runs_and_writes_the_execution_document(
        self, coordinated: RelayServer, http: aiohttp.ClientSession, paper_project
    ) -> None:
        project = await paper_project()
        record = await run_and_wait(coordinated, http, project)
        assert record["status"] == "succeeded", record
        names = [job["name"] for job in record["jobs"].values()]
        assert names[:2] == ["SyntheticImages", "NormalizeData"]
        assert set(names) == {"SyntheticImages", "NormalizeData", "Train", "Test", "ModelOut",
                              "MetricsOut"}
        assert all(job["status"] == "succeeded" for job in record["jobs"].values())
        assert all(job["duration"] is not None for job in record["jobs"].values())
        train = next(j for j in record["jobs"].values() if j["name"] == "Train")
        assert len(train["outputs"]["out"]) == 64

        # The execution document: statuses, console lines and the training-loss graph.
        document = await execution_doc(coordinated, project, record["execution"])
        plain = document.to_plain()
        train_id = next(j for j, v in record["jobs"].items() if v["name"] == "Train")
        assert plain["meta"]["status"] == "succeeded"
        assert plain["meta"]["commit"] == record["commit"]
        assert "def train(" in plain["meta"]["pipeline"]["jobs"][train_id]["code"]
        points = plain["graphs"][train_id]["Training Error"]["error"]
        assert len(points) == 12
        assert plain["console"][train_id], "Train prints its progress"

        # The project: summary, run tag, published artifacts.
        project_plain = (await project_doc(coordinated, project)).to_plain()
        summary = project_plain["executions"][record["execution"]]
        assert summary["status"] == "succeeded"
        assert summary["commit"] == record["commit"]
        artifacts = project_plain["artifacts"]
        assert artifacts["model"]["hash"] == train["outputs"]["out"]
        assert artifacts["model"]["kind"] == "model"
        assert artifacts["metrics"]["kind"] == "json"
        assert artifacts["metrics"]["produced_by"] == record["execution"]
        _, tags = await api(http, "GET", f"{coordinated.url}/api/projects/{project}/tags")
        tagged = {t["name"]: t["commit"] for t in tags["tags"]}
        assert tagged[f"run/{record['execution']}"] == record["commit"]

        # Unchanged second run: entirely cached, no task launched.
        again = await run_and_wait(coordinated, http, project)
        assert again["status"] == "succeeded"
        assert again["tasks_launched"] == 0
        assert {j["status"] for j in again["jobs"].values()} == {"cached"}
        assert {j["cached_from"] for j in again["jobs"].values()} == {record["execution"]}


def node_id(project: ProjectDoc, name: str, pipeline: str = "paper") -> tuple[str, str]:
    pid = project.find("pipelines", pipeline)
    assert pid is not None
    nodes = project.to_plain()["pipelines"][pid]["nodes"]
    return pid, next(n for n, node in nodes.items() if node["name"] == name)


def add_slow_pipeline(project: ProjectDoc) -> None:
    """Pipeline "slow": Slow (prints a tick every 0.1 s for 30 s) → After."""
    pid = project.add_pipeline("slow")
    slow = project.add_node(pid, project.find("operations", "Slow") or "")
    after = project.add_node(pid, project.find("operations", "After") or "")
    project.connect(pid, slow, "out", after, "value")


class TestValidation:
    async def test_opening_an_unknown_execution_room_creates_no_execution(
        self, coordinated: RelayServer, http: aiohttp.ClientSession, paper_project
    ) -> None:
        # Opening a room by its URL must not make an execution (or its room) appear: only the
        # server makes execution rooms.
        project = await paper_project()
        ghost = "0ddba11a"
        refusal = await ws_refusal(http, room_url(coordinated.url, f"{project}/executions/{ghost}"))
        assert refusal[0] == 4404
        for url in (f"{coordinated.url}/api/projects/{project}/executions/{ghost}",
                    f"{coordinated.url}/api/executions/{ghost}"):
            status, body = await api(http, "GET", url)
            assert status == 404, body
        status, listed = await api(
            http, "GET", f"{coordinated.url}/api/projects/{project}/executions")
        assert status == 200 and ghost not in {row["execution"] for row in listed["executions"]}
        async with coordinated.app[ROOMS].hold(project_room(project, "main")) as room:
            assert ghost not in ProjectDoc(room.doc).to_plain()["executions"]
        assert not coordinated.app[ROOMS].exists(f"{project}/executions/{ghost}")

    async def test_every_problem_comes_back_naming_its_node(
        self, coordinated: RelayServer, http: aiohttp.ClientSession, paper_project
    ) -> None:
        def break_it(project: ProjectDoc) -> None:
            pid, train = node_id(project, "Train")
            project.set_attribute(pid, train, "learning_rate", "fast")
            edges = project.to_plain()["pipelines"][pid]["edges"]
            _, test = node_id(project, "Test")
            edge = next(e for e, v in edges.items() if v["dst"] == test and v["dst_port"] ==
                        "data")
            project.disconnect(pid, edge)

        project = await paper_project(edit=break_it)
        status, body = await api(http, "POST", f"{coordinated.url}/api/projects/{project}/runs",
                                 {"pipeline": "paper"})
        assert status == 400
        by_node = {p["node_name"]: p for p in body["problems"]}
        assert by_node["Train"]["kind"] == "attribute_type"
        assert "learning_rate" in by_node["Train"]["message"]
        assert by_node["Test"]["kind"] == "unconnected_input"
        assert "Test" in by_node["Test"]["message"]
        assert "2 problems" in body["error"]
        # Nothing ran: no execution recorded, no run tag.
        assert (await project_doc(coordinated, project)).to_plain()["executions"] == {}
        _, tags = await api(http, "GET", f"{coordinated.url}/api/projects/{project}/tags")
        assert tags["tags"] == []

    async def test_unknown_pipeline_project_and_executor_are_clear_errors(
        self, coordinated: RelayServer, http: aiohttp.ClientSession, paper_project
    ) -> None:
        project = await paper_project()
        url = f"{coordinated.url}/api/projects/{project}/runs"
        status, body = await api(http, "POST", url, {"pipeline": "nope"})
        assert status == 404 and "pipelines: paper" in body["error"]
        status, body = await api(http, "POST", url, {"pipeline": "paper", "executor": "slurm"})
        assert status == 400 and "ray, local" in body["error"]
        status, body = await api(http, "POST", url, {"pipeline": "paper", "branch": "dev"})
        assert status == 404 and "branches: main" in body["error"]
        status, body = await api(http, "POST", url, {})
        assert status == 400 and "pipeline" in body["error"]
        status, body = await api(http, "POST", url,
                                 {"pipeline": "paper", "ray_address": "10.1.2.3:6379"})
        assert status == 400 and "forge serve --ray-address 10.1.2.3:6379" in body["error"]
        status, body = await api(
            http, "POST", f"{coordinated.url}/api/projects/nothing-here/runs", {"pipeline": "x"})
        assert status == 404 and "no project" in body["error"]
        status, body = await api(http, "GET", f"{coordinated.url}/api/executions/0badc0de")
        assert status == 404
        # Bodies nested deeper than JSON decodes, ids no execution can have, bad branch names.
        async with http.post(url, data="[" * 100_000 + "]" * 100_000,
                             headers={"Content-Type": "application/json"}) as answer:
            assert answer.status == 400
            assert (await answer.json())["error"] == "request body must be a JSON object"
        # Sent as a stream: aiohttp warns that a large raw bytes body blocks its loop.
        async with http.post(url, data=io.BytesIO(b" " * (9 << 20)),
                             headers={"Content-Type": "application/json"}) as answer:
            assert answer.status == 413
            assert (await answer.json())["error"].startswith("request body over 8 MiB")
        status, body = await api(
            http, "GET", f"{coordinated.url}/api/projects/{project}/executions/..%2F{'x' * 5000}")
        assert status == 404 and body["error"].startswith(f"no execution '../{'x' * 37}…' in")
        status, body = await api(http, "POST", url, {"pipeline": "paper", "branch": "../main"})
        assert status == 400 and body["error"].startswith("invalid branch name '../main': use")


class TestRestartCancelRerun:
    async def test_restart_reruns_the_job_and_its_downstream_only(
        self, coordinated: RelayServer, http: aiohttp.ClientSession, paper_project
    ) -> None:
        project = await paper_project()
        first = await run_and_wait(coordinated, http, project)
        execution = first["execution"]
        test_id = next(j for j, v in first["jobs"].items() if v["name"] == "Test")
        status, body = await api(
            http, "POST", f"{coordinated.url}/api/executions/{execution}/jobs/Test/restart")
        assert status == 202, body
        # The answer already shows the restart: Test and its Output queued, the rest kept.
        assert body["status"] == "running" and body["running"] is True
        assert {j["name"]: j["status"] for j in body["jobs"].values()
                if j["status"] == "queued"}.keys() == {"Test", "MetricsOut"}
        await asyncio.wait_for(coordinator_of(coordinated).wait(execution), 60)
        _, after = await api(http, "GET",
                             f"{coordinated.url}/api/projects/{project}/executions/{execution}")
        assert after["status"] == "succeeded"
        assert after["tasks_launched"] == 2  # Test and MetricsOut, nothing upstream
        for job_id, job in after["jobs"].items():
            before = first["jobs"][job_id]
            if job["name"] in ("Test", "MetricsOut"):
                assert job["started"] > before["finished"], job["name"]
            else:
                assert job["started"] == before["started"], job["name"]
        assert after["jobs"][test_id]["outputs"] == first["jobs"][test_id]["outputs"]

    async def start_slow(self, server: RelayServer, session: aiohttp.ClientSession,
                         paper_project, edit: Any = None) -> tuple[str, str, str]:
        """Start pipeline "slow" and wait until its Slow job has printed; (base, id, job)."""
        project = await paper_project({"Slow": SLOW_OP, "After": AFTER_SLOW, "Quick": QUICK},
                                      edit=edit or add_slow_pipeline)
        base = f"{server.url}/api/projects/{project}"
        status, record = await api(session, "POST", f"{base}/runs", {"pipeline": "slow"})
        assert status == 201, record
        execution = record["execution"]
        slow = next(j for j, v in record["jobs"].items() if v["name"] == "Slow")
        for _ in range(200):
            _, record = await api(session, "GET", f"{base}/executions/{execution}")
            if record["jobs"][slow]["console_lines"] >= 3:
                break
            await asyncio.sleep(0.1)
        assert record["jobs"][slow]["status"] == "running"
        return base, execution, slow

    async def test_cancel_a_job_stops_it_and_skips_its_downstream(
        self, coordinated: RelayServer, http: aiohttp.ClientSession, paper_project
    ) -> None:
        base, execution, slow = await self.start_slow(coordinated, http, paper_project)
        status, body = await api(http, "POST", f"{base}/executions/{execution}/jobs/Slow/restart")
        assert status == 409 and "still running" in body["error"]
        status, _ = await api(http, "POST", f"{base}/executions/{execution}/jobs/{slow}/cancel")
        assert status == 202
        await asyncio.wait_for(coordinator_of(coordinated).wait(execution), 30)
        _, final = await api(http, "GET", f"{base}/executions/{execution}")
        assert final["status"] == "cancelled"
        jobs = {j["name"]: j for j in final["jobs"].values()}
        assert jobs["Slow"]["status"] == "cancelled"
        assert jobs["Slow"]["duration"] < 20
        assert jobs["After"]["status"] == "cancelled"
        assert "not run" in jobs["After"]["error"]
        status, body = await api(http, "POST", f"{base}/executions/{execution}/cancel")
        assert status == 409 and "not running" in body["error"]

    async def test_a_finished_job_cannot_be_cancelled_nor_another_projects_run_restarted(
        self, coordinated: RelayServer, http: aiohttp.ClientSession, paper_project
    ) -> None:
        def with_quick(project: ProjectDoc) -> None:
            add_slow_pipeline(project)  # and beside it, a job that ends at once
            project.add_node(project.find("pipelines", "slow") or "",
                             project.find("operations", "Quick") or "")

        base, execution, _ = await self.start_slow(coordinated, http, paper_project, with_quick)
        status, body = await api(http, "POST", f"{base}/executions/{execution}/jobs/Quick/cancel")
        assert status == 409
        assert body["error"] == (f"job Quick of execution {execution} already finished "
                                 "(succeeded); cancel a queued or running job, or the whole "
                                 "execution")
        other = await paper_project()
        status, body = await api(http, "POST", f"{coordinated.url}/api/projects/{other}"
                                 f"/executions/{execution}/jobs/Slow/restart")
        assert status == 404 and f"no execution '{execution}' in project" in body["error"]
        status, _ = await api(http, "POST", f"{base}/executions/{execution}/cancel")
        assert status == 202
        await asyncio.wait_for(coordinator_of(coordinated).wait(execution), 30)

    async def test_cancel_the_execution(
        self, coordinated: RelayServer, http: aiohttp.ClientSession, paper_project
    ) -> None:
        base, execution, _ = await self.start_slow(coordinated, http, paper_project)
        status, _ = await api(http, "POST", f"{coordinated.url}/api/executions/{execution}/cancel")
        assert status == 202
        await asyncio.wait_for(coordinator_of(coordinated).wait(execution), 30)
        _, final = await api(http, "GET", f"{base}/executions/{execution}")
        assert final["status"] == "cancelled"
        assert {j["status"] for j in final["jobs"].values()} == {"cancelled"}
        document = await execution_doc(coordinated, final["project"], execution)
        assert document.to_plain()["meta"]["finished"] is not None

    async def test_rerun_without_cache_reproduces_every_output_hash(
        self, coordinated: RelayServer, http: aiohttp.ClientSession, paper_project
    ) -> None:
        project = await paper_project()
        first = await run_and_wait(coordinated, http, project)
        status, rerun = await api(
            http, "POST", f"{coordinated.url}/api/executions/{first['execution']}/rerun",
            {"no_cache": True})
        assert status == 201, rerun
        assert rerun["rerun_of"] == first["execution"]
        assert rerun["commit"] == first["commit"]
        await asyncio.wait_for(coordinator_of(coordinated).wait(rerun["execution"]), 120)
        _, second = await api(http, "GET",
                              f"{coordinated.url}/api/executions/{rerun['execution']}")
        assert second["status"] == "succeeded"
        assert second["tasks_launched"] == len(first["jobs"])
        assert {j: v["outputs"] for j, v in second["jobs"].items()} == {
            j: v["outputs"] for j, v in first["jobs"].items()}
        assert all(v["cached_from"] is None for v in second["jobs"].values())


class TestArtifacts:
    async def test_list_show_and_export(
        self, coordinated: RelayServer, http: aiohttp.ClientSession, paper_project, tmp_path
    ) -> None:
        project = await paper_project()
        record = await run_and_wait(coordinated, http, project)
        base = f"{coordinated.url}/api/projects/{project}/artifacts"
        status, listing = await api(http, "GET", base)
        assert status == 200 and sorted(listing["artifacts"]) == ["metrics", "model"]
        status, metrics = await api(http, "GET", f"{base}/metrics")
        assert status == 200
        assert 0.0 <= metrics["summary"]["value"]["accuracy"] <= 1.0
        # Other tests of this module stored the same content, so this run's Test job may be a
        # cache hit from another project: either way the provenance is this project's alone.
        provenance = {p["execution"]: p for p in metrics["summary"]["provenance"]}
        test_job = next(j for j, v in record["jobs"].items() if v["name"] == "Test")
        assert list(provenance) == [record["execution"]]
        assert provenance[record["execution"]]["job"] == test_job
        assert provenance[record["execution"]]["commit"] == record["commit"]
        assert provenance[record["execution"]]["how"] == (
            "cached" if record["jobs"][test_job]["status"] == "cached" else "produced")
        status, model = await api(http, "GET", f"{base}/model")
        assert model["summary"]["parameters"] > 0
        async with http.get(f"{base}/model/export") as response:
            assert response.status == 200
            assert response.headers["Content-Disposition"].endswith('model.pt"')
            data = await response.read()
        import torch

        path = tmp_path / "model.pt"
        path.write_bytes(data)
        state = torch.load(path, weights_only=True)
        assert set(state) == set(model["summary"]["members"])
        status, body = await api(http, "GET", f"{base}/nope")
        assert status == 404 and "metrics, model" in body["error"]


class TestInterrupted:
    async def test_an_execution_left_running_by_a_stopped_server_is_settled_and_restartable(
        self, coordinated: RelayServer, http: aiohttp.ClientSession, paper_project
    ) -> None:
        project = await paper_project()
        first = await run_and_wait(coordinated, http, project)
        execution = first["execution"]
        names = {v["name"]: j for j, v in first["jobs"].items()}
        # What a server killed mid-run leaves behind: Train running, Test still queued.
        room = await coordinated.app[ROOMS].get(execution_room(project, execution))
        with room.edit("test") as doc:
            document = ExecutionDoc(doc)
            document.set_status("running")
            document.set_job_status(names["Train"], "running")
            for name in ("Test", "ModelOut", "MetricsOut"):
                document.set_job_status(names[name], "queued")
        await room.written()
        branch = await coordinated.app[ROOMS].get(project_room(project, "main"))
        with branch.edit("test") as doc:
            ProjectDoc(doc).set_execution_status(execution, "running")
        await branch.written()

        # Listing the branch's executions settles it, as reading its record does.
        _, listing = await api(http, "GET",
                               f"{coordinated.url}/api/projects/{project}/executions")
        assert [row["status"] for row in listing["executions"]] == ["failed"]
        _, record = await api(http, "GET", f"{coordinated.url}/api/executions/{execution}")
        assert record["status"] == "failed"
        assert record["jobs"][names["Train"]]["status"] == "failed"
        assert "interrupted" in record["jobs"][names["Test"]]["error"]
        summary = (await project_doc(coordinated, project)).to_plain()["executions"][execution]
        assert summary["status"] == "failed"

        # Restarting Test also re-runs the interrupted Train upstream of it (from the cache).
        status, body = await api(
            http, "POST", f"{coordinated.url}/api/executions/{execution}/jobs/Test/restart")
        assert status == 202, body
        await asyncio.wait_for(coordinator_of(coordinated).wait(execution), 60)
        _, after = await api(http, "GET", f"{coordinated.url}/api/executions/{execution}")
        assert after["status"] == "succeeded"
        statuses = {after["jobs"][j]["name"]: after["jobs"][j]["status"] for j in after["jobs"]}
        assert statuses["Train"] == "cached"
        assert statuses["Test"] == "succeeded" and statuses["MetricsOut"] == "succeeded"
        kept = first["jobs"][names["SyntheticImages"]]
        assert after["jobs"][names["SyntheticImages"]] == kept  # untouched by the restart
        assert after["jobs"][names["Test"]]["outputs"] == first["jobs"][names["Test"]]["outputs"]


FLOOD = '''
def flood(*, lines: int = 6000) -> int:
    graph = Graph("Noise")
    line = graph.line("y")
    for i in range(lines):
        print("line", i)
        line.add(i, i % 7)
    return lines
'''


class TestFeedback:
    async def test_a_flood_of_prints_and_points_is_batched_and_the_console_capped(
        self, coordinated: RelayServer, http: aiohttp.ClientSession, paper_project
    ) -> None:
        def add_flood(project: ProjectDoc) -> None:
            pid = project.add_pipeline("flood")
            project.add_node(pid, project.find("operations", "Flood") or "")

        project = await paper_project({"Flood": FLOOD}, edit=add_flood)
        rooms = coordinated.app[ROOMS]
        writes: list[float] = []
        status, record = await api(http, "POST", f"{coordinated.url}/api/projects/{project}/runs",
                                   {"pipeline": "flood"})
        assert status == 201, record
        execution = record["execution"]
        unsubscribe = rooms.subscribe(lambda *_: writes.append(asyncio.get_running_loop().time()),
                                      room=execution_room(project, execution))
        started = asyncio.get_running_loop().time()
        try:
            await asyncio.wait_for(coordinator_of(coordinated).wait(execution), 60)
        finally:
            unsubscribe()
        elapsed = asyncio.get_running_loop().time() - started
        # One write per 0.1 s at most, whatever the job does (plus the final one).
        assert len(writes) <= elapsed * 10 + 2, (len(writes), elapsed)
        plain = (await execution_doc(coordinated, project, execution)).to_plain()
        job = next(iter(plain["jobs"]))
        assert plain["meta"]["status"] == "succeeded"
        console = plain["console"][job]
        assert len(console) == 2000  # CONSOLE_CAP: the newest lines are kept
        assert console[-1] == "line 5999"
        assert plain["console_dropped"][job] == 4000
        assert len(plain["graphs"][job]["Noise"]["y"]) == 6000
