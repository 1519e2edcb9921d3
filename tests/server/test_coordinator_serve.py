"""The coordinator as deployed: roles, `forge serve --executor …`, and one run on Ray."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from coordinator_fixtures import build_paper_doc

from forge_server.client import open_document
from forge_server.coordinator import COORDINATOR, CoordinatorConfig, coordinator_setup
from forge_server.history import HistoryConfig, history_setup
from forge_server.principal import Role, Unauthenticated
from forge_server.relay.app import ROOMS
from forge_server.relay.config import RelayConfig
from forge_server.relay.rooms import execution_room
from forge_server.relay.server import RelayServer
from forge_tui.cli import main as forge_main


class TokenRoles:
    """The token is the user's name; "reader" may only read, anyone else writes."""

    async def authenticate(self, token: str | None) -> str:
        if not token:
            raise Unauthenticated("a token is required")
        return token

    async def role(self, user: str, project: str) -> Role | None:
        return Role.READER if user == "reader" else Role.WRITER


def setups(data_dir: Path, executor: str) -> list[Any]:
    return [history_setup(HistoryConfig(debounce_s=30, max_interval_s=60)),
            coordinator_setup(CoordinatorConfig(artifacts=str(data_dir / "artifacts"),
                                                executor=executor, local_workers=2))]


@pytest_asyncio.fixture(loop_scope="session")
async def guarded(tmp_path: Path) -> AsyncIterator[RelayServer]:
    server = RelayServer(RelayConfig(data_dir=tmp_path), authorizer=TokenRoles(),
                         setups=setups(tmp_path, "local"))
    async with server:
        yield server


async def call(url: str, method: str, token: str | None,
               body: dict[str, Any] | None = None) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with aiohttp.ClientSession(headers=headers) as session, session.request(
        method, url, json=body
    ) as response:
        return response.status, await response.json()


class TestRoles:
    async def test_readers_read_writers_run(self, guarded: RelayServer) -> None:
        project = f"r-{uuid.uuid4().hex[:8]}"
        doc = build_paper_doc(project)
        await guarded.app[ROOMS].create(f"{project}/main", doc.doc.get_update())
        base = f"{guarded.url}/api/projects/{project}"
        status, body = await call(f"{base}/runs", "POST", "reader", {"pipeline": "paper"})
        assert status == 403 and "writer" in body["error"]
        status, body = await call(f"{base}/runs", "POST", None, {"pipeline": "paper"})
        assert status == 401
        status, body = await call(f"{guarded.url}/api/executions/abcdef12", "GET", None)
        assert status == 401  # before looking the id up
        status, body = await call(f"{base}/executions", "GET", "reader")
        assert status == 200 and body["executions"] == []
        status, record = await call(f"{base}/runs", "POST", "ada", {"pipeline": "paper"})
        assert status == 201 and record["by"] == "ada"
        await asyncio.wait_for(guarded.app[COORDINATOR].wait(record["execution"]), 120)
        status, final = await call(f"{guarded.url}/api/executions/{record['execution']}", "GET",
                                   "reader")
        assert status == 200 and final["status"] == "succeeded"
        status, body = await call(f"{base}/executions/{record['execution']}/rerun", "POST",
                                  "reader")
        assert status == 403


SLOW = """
import time


def slow() -> int:
    for step in range(600):
        print("tick", step)
        time.sleep(0.1)
    return 1
"""


class TestShutdown:
    async def test_stopping_the_server_cancels_runs_and_leaves_consistent_documents(
        self, tmp_path: Path
    ) -> None:
        project = "stopping"
        doc = build_paper_doc(project, {"Slow": SLOW})
        pid = doc.add_pipeline("slow")
        doc.add_node(pid, doc.find("operations", "Slow") or "")
        server = RelayServer(RelayConfig(data_dir=tmp_path), setups=setups(tmp_path, "local"))
        await server.start()
        try:
            await server.app[ROOMS].create(f"{project}/main", doc.doc.get_update())
            status, record = await call(f"{server.url}/api/projects/{project}/runs", "POST",
                                        None, {"pipeline": "slow"})
            assert status == 201, record
            execution = record["execution"]
            for _ in range(300):
                _, record = await call(f"{server.url}/api/executions/{execution}", "GET", None)
                if next(iter(record["jobs"].values()))["console_lines"] >= 2:
                    break
                await asyncio.sleep(0.1)
        finally:
            await server.stop()  # cancels the run, writes its end, flushes every room
        again = RelayServer(RelayConfig(data_dir=tmp_path), setups=setups(tmp_path, "local"))
        async with again:
            status, final = await call(f"{again.url}/api/executions/{execution}", "GET", None)
            assert status == 200
            assert final["status"] == "cancelled"
            assert [job["status"] for job in final["jobs"].values()] == ["cancelled"]
            _, listing = await call(f"{again.url}/api/projects/{project}/executions", "GET",
                                    None)
            assert [row["status"] for row in listing["executions"]] == ["cancelled"]


class TestServe:
    async def test_forge_serve_runs_pipelines_on_its_executor(
        self, tmp_path: Path, serve_process: Callable[..., Any],
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        monkeypatch.setenv("FORGE_CONFIG_DIR", str(tmp_path / "config"))
        server = serve_process(tmp_path / "data", "--no-auth", "--executor", "local",
                               "--artifacts", str(tmp_path / "store"))
        project = "served"
        async with open_document(server.url, None, f"{project}/main") as client:
            client.doc.apply_update(build_paper_doc(project).doc.get_update())
        capsys.readouterr()
        code = await asyncio.to_thread(
            forge_main, ["run", project, "paper", "--json", "--server", server.url])
        out, err = capsys.readouterr()
        assert code == 0, err + "".join(server.output)
        record = json.loads(out)
        assert record["executor"] == "local" and record["status"] == "succeeded"
        # Artifacts went to --artifacts.
        model = record["artifacts"]["model"]
        assert (tmp_path / "store" / "refs" / model[:2] / f"{model}.json").exists()


@pytest.mark.ray
@pytest.mark.slow
class TestRay:
    async def test_paper_pipeline_on_ray(self, tmp_path: Path) -> None:
        pytest.importorskip("ray")
        server = RelayServer(RelayConfig(data_dir=tmp_path), setups=setups(tmp_path, "ray"))
        async with server:
            project = f"ray-{uuid.uuid4().hex[:8]}"
            await server.app[ROOMS].create(f"{project}/main",
                                           build_paper_doc(project).doc.get_update())
            status, record = await call(f"{server.url}/api/projects/{project}/runs", "POST",
                                        None, {"pipeline": "paper"})
            assert status == 201, record
            assert record["executor"] == "ray"
            await asyncio.wait_for(server.app[COORDINATOR].wait(record["execution"]), 240)
            status, final = await call(
                f"{server.url}/api/executions/{record['execution']}", "GET", None)
            assert final["status"] == "succeeded", final
            assert set(final["artifacts"]) == {"model", "metrics"}
            room = await server.app[ROOMS].get(execution_room(project, record["execution"]))
            from forge_ops.schema import ExecutionDoc

            plain = ExecutionDoc(room.doc).to_plain()
            train = next(j for j, v in final["jobs"].items() if v["name"] == "Train")
            assert len(plain["graphs"][train]["Training Error"]["error"]) == 12
