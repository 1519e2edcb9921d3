"""Fixtures for the coordinator tests (imported by test_coordinator*.py and test_run_cli*.py).

- ``coordinated``: a relay on a real port with version history and the coordinator (local
  executor, artifacts in a temporary folder), shared by a test module so the executor's
  forkserver starts once. ``coordinated.url``, ``coordinated.app``.
- ``paper_project``: ``await paper_project(**overrides)`` → the name of a fresh project whose
  ``main`` holds the paper's pipeline shape, tiny: SyntheticImages → NormalizeData →
  Train(net=SmallCNN) → Test → Output("model") and Output("metrics"), pipeline ``paper``.
- ``http``: an aiohttp session; ``await api(http, method, url, body)`` → (status, JSON).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from pycrdt import Doc

from forge_ops.arch import small_cnn
from forge_ops.operations import builtin_code
from forge_ops.schema import ExecutionDoc, ProjectDoc
from forge_server.coordinator import COORDINATOR, Coordinator, CoordinatorConfig, coordinator_setup
from forge_server.history import HistoryConfig, history_setup
from forge_server.relay.app import ROOMS
from forge_server.relay.config import RelayConfig
from forge_server.relay.rooms import execution_room
from forge_server.relay.server import RelayServer

PIPELINE = "paper"
TINY = {
    "synthetic": {"train_size": 256, "test_size": 64, "seed": 1},
    "train": {"max_iterations": 12, "batch_size": 32, "learning_rate": 0.003, "seed": 3},
}


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def coordinated(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[RelayServer]:
    data_dir = tmp_path_factory.mktemp("coordinated")
    config = CoordinatorConfig(
        artifacts=str(data_dir / "artifacts"), executor="local", local_workers=2,
        cancel_grace_s=2.0,
    )
    setups = [history_setup(HistoryConfig(debounce_s=30, max_interval_s=60)),
              coordinator_setup(config)]
    async with RelayServer(RelayConfig(data_dir=data_dir), setups=setups) as server:
        yield server


def build_paper_doc(name: str, extra_ops: dict[str, str] | None = None) -> ProjectDoc:
    """The tiny paper project as a document (operations are the built-ins)."""
    project = ProjectDoc.create(name)
    ops = {op: project.add_operation(op, builtin_code(op), builtin=True)
           for op in ("SyntheticImages", "NormalizeData", "Train", "Test", "Output")}
    for op_name, code in (extra_ops or {}).items():
        ops[op_name] = project.add_operation(op_name, code)
    arch = small_cnn()
    arch_id = project.add_architecture(arch["name"], arch["input_shape"])
    for layer_id, layer in arch["layers"].items():
        project.add_arch_layer(arch_id, layer["type"], layer["name"], layer["attributes"],
                               layer_id=layer_id)
    for edge_id, edge in arch["edges"].items():
        project.connect_layers(arch_id, edge["src"], edge["dst"], edge.get("index", 0),
                               edge_id=edge_id)
    pid = project.add_pipeline(PIPELINE)
    synthetic = project.add_node(pid, ops["SyntheticImages"], attributes=TINY["synthetic"])
    normalize = project.add_node(pid, ops["NormalizeData"])
    train = project.add_node(pid, ops["Train"], attributes=TINY["train"],
                             references={"net": arch["name"]})
    test = project.add_node(pid, ops["Test"])
    model_out = project.add_node(pid, ops["Output"], "ModelOut", attributes={"name": "model"})
    metrics_out = project.add_node(pid, ops["Output"], "MetricsOut",
                                   attributes={"name": "metrics"})
    project.connect(pid, synthetic, "train", normalize, "train")
    project.connect(pid, synthetic, "test", normalize, "test")
    project.connect(pid, normalize, "train", train, "data")
    project.connect(pid, normalize, "test", test, "data")
    project.connect(pid, train, "out", test, "model")
    project.connect(pid, train, "out", model_out, "data")
    project.connect(pid, test, "out", metrics_out, "data")
    return project


MakeProject = Callable[..., Awaitable[str]]


@pytest.fixture
def paper_project(coordinated: RelayServer) -> MakeProject:
    async def make(extra_ops: dict[str, str] | None = None,
                   edit: Callable[[ProjectDoc], None] | None = None) -> str:
        name = f"p-{uuid.uuid4().hex[:10]}"
        project = build_paper_doc(name, extra_ops)
        if edit is not None:
            edit(project)
        await coordinated.app[ROOMS].create(f"{name}/main", project.doc.get_update())
        return name

    return make


@pytest_asyncio.fixture(loop_scope="session")
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def api(session: aiohttp.ClientSession, method: str, url: str,
              body: dict[str, Any] | None = None) -> tuple[int, Any]:
    async with session.request(method, url, json=body) as response:
        return response.status, await response.json()


def coordinator_of(server: RelayServer) -> Coordinator:
    return server.app[COORDINATOR]


async def execution_doc(server: RelayServer, project: str, execution: str) -> ExecutionDoc:
    """A copy of the execution document as the relay holds it now."""
    room = await server.app[ROOMS].get(execution_room(project, execution))
    copy = Doc()
    copy.apply_update(room.doc.get_update())
    return ExecutionDoc(copy)


async def project_doc(server: RelayServer, project: str, branch: str = "main") -> ProjectDoc:
    room = await server.app[ROOMS].get(f"{project}/{branch}")
    copy = Doc()
    copy.apply_update(room.doc.get_update())
    return ProjectDoc(copy)


__all__ = ["api", "build_paper_doc", "coordinated", "coordinator_of", "execution_doc",
           "http", "paper_project", "project_doc"]
