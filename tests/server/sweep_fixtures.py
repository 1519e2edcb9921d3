"""Fixtures for the sweep tests (imported by test_sweeps*.py).

- ``sweep_setups(data_dir, executor)``: history, coordinator and sweeps for a ``RelayServer``.
- ``swept``: such a server on the local executor, shared by a test module.
- ``example_project(server)``: the example project's ``train-synthetic`` pipeline, made tiny
  (a few hundred images, SmallCNN, a dozen iterations), in a fresh project; its name.
- ``sweep_api(server)``: ``await call(method, path, body)`` → (status, JSON) under
  ``/api/projects/``.
- ``finish(server, project, sweep, run)``: wait until the server stops driving the run, then
  its record.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from forge_ops.examples import PIPELINE_SYNTHETIC, example_document
from forge_ops.schema import ProjectDoc
from forge_server.coordinator import CoordinatorConfig, coordinator_setup
from forge_server.history import HistoryConfig, history_setup
from forge_server.relay.app import ROOMS
from forge_server.relay.config import RelayConfig
from forge_server.relay.server import RelayServer
from forge_server.sweeps import SWEEPS, sweeps_setup

PIPELINE = PIPELINE_SYNTHETIC
TINY_DATA = {"train_size": 256, "test_size": 64, "seed": 1}
TINY_TRAIN = {"max_iterations": 12, "batch_size": 32, "learning_rate": 0.0005, "seed": 3}
RATES = [0.03, 0.01, 0.003, 0.001]
GRID = {"parameters": {"lr": {"node": "Train", "attribute": "learning_rate", "values": RATES}},
        "objective": {"artifact": "synthetic-accuracies", "key": "accuracy",
                      "goal": "maximize"},
        "budget": {"concurrency": 2}}


def sweep_setups(data_dir: Path, executor: str = "local") -> list[Any]:
    config = CoordinatorConfig(artifacts=str(data_dir / "artifacts"), executor=executor,
                               local_workers=2, cancel_grace_s=2.0)
    return [history_setup(HistoryConfig(debounce_s=30, max_interval_s=60)),
            coordinator_setup(config), sweeps_setup()]


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def swept(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[RelayServer]:
    data_dir = tmp_path_factory.mktemp("swept")
    async with RelayServer(RelayConfig(data_dir=data_dir),
                           setups=sweep_setups(data_dir)) as server:
        yield server


def tiny_example(name: str, train: dict[str, Any] | None = None) -> ProjectDoc:
    """The example project, its synthetic pipeline small enough to train in a second."""
    project = example_document("cifar10", name)
    pipeline = project.find("pipelines", PIPELINE)
    assert pipeline is not None
    nodes = project.to_plain()["pipelines"][pipeline]["nodes"]
    for node_id, node in nodes.items():
        if node["name"] == "SyntheticImages":
            for key, value in TINY_DATA.items():
                project.set_attribute(pipeline, node_id, key, value)
        elif node["name"] == "Train":
            for key, value in {**TINY_TRAIN, **(train or {})}.items():
                project.set_attribute(pipeline, node_id, key, value)
            project.set_reference(pipeline, node_id, "net", "SmallCNN")
    return project


async def example_project(server: RelayServer, train: dict[str, Any] | None = None) -> str:
    name = f"sw-{uuid.uuid4().hex[:10]}"
    await server.app[ROOMS].create(f"{name}/main", tiny_example(name, train).doc.get_update())
    return name


Call = Callable[..., Awaitable[tuple[int, Any]]]


def sweep_api(server: RelayServer) -> Call:
    async def call(method: str, path: str, body: dict[str, Any] | None = None
                   ) -> tuple[int, Any]:
        async with aiohttp.ClientSession() as session, session.request(
                method, f"{server.url}/api/projects/{path}", json=body) as response:
            return response.status, await response.json()

    return call


async def define(server: RelayServer, project: str, sweep: str = "lr",
                 **parts: Any) -> dict[str, Any]:
    status, body = await sweep_api(server)("PUT", f"{project}/sweeps/{sweep}",
                                           {"pipeline": PIPELINE, **GRID, **parts})
    assert status == 200, body
    return dict(body)


async def finish(server: RelayServer, project: str, sweep: str, run: str,
                 timeout: float = 240) -> dict[str, Any]:
    await asyncio.wait_for(server.app[SWEEPS].wait(project, run), timeout)
    status, record = await sweep_api(server)("GET", f"{project}/sweeps/{sweep}/runs/{run}")
    assert status == 200, record
    return dict(record)


async def execution(server: RelayServer, execution_id: str) -> dict[str, Any]:
    async with aiohttp.ClientSession() as session, session.get(
            f"{server.url}/api/executions/{execution_id}") as response:
        assert response.status == 200
        return dict(await response.json())


def jobs_by_name(record: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {job["name"]: job for job in record["jobs"].values()}
