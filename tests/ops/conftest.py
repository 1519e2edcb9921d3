"""Fixtures for the execution engine tests: one Ray runtime and one local executor per session,
fresh artifact stores, and builders of small projects (plain snapshots) to plan and run.

- ``ray_runtime``: ``ray.init(num_cpus=2)`` once for the session (shared by every Ray test).
- ``local_executor`` / ``ray_executor``: session-wide executors (the local one's forkserver
  starts once).
- ``store``: an ArtifactStore in a fresh temporary folder.
- ``make_project(ops, nodes, edges)``: a plain project from ``{op_id: code}``, ``{node_id:
  (op_id, attributes[, references[, settings]])}`` and ``[(src, src_port, dst, dst_port)]``.
- ``paper_project``: the paper's pipeline shape (SyntheticImages → NormalizeData → Train(net) →
  Test, with Outputs of the model and the metrics), small enough to train in seconds on a CPU.
- ``Recorder``: an ``on_event`` callback that keeps every event, thread-safely.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from forge_ops.artifacts import ArtifactStore
from forge_ops.execution import (
    Event,
    JobFeedback,
    JobStatusChanged,
    LocalExecutor,
    RayExecutor,
)


@pytest.fixture(scope="session")
def ray_runtime() -> Iterator[Any]:
    ray = pytest.importorskip("ray")
    started = False
    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
                 logging_level=logging.WARNING)
        started = True
    yield ray
    if started:
        ray.shutdown()


@pytest.fixture(scope="session")
def ray_executor(ray_runtime: Any) -> RayExecutor:
    executor = RayExecutor()
    executor.start()
    return executor


@pytest.fixture(scope="session")
def local_executor() -> Iterator[LocalExecutor]:
    executor = LocalExecutor(max_workers=2)
    executor.start()
    yield executor
    executor.shutdown()


@pytest.fixture
def store(tmp_path: Path) -> ArtifactStore:
    return ArtifactStore(tmp_path / "artifacts")


class Recorder:
    """Keeps every event an execution reports (callbacks arrive on the engine's thread)."""

    def __init__(self, hook: Callable[[Event], None] | None = None) -> None:
        self.events: list[Event] = []
        self.lock = threading.Lock()
        self.hook = hook

    def __call__(self, event: Event) -> None:
        with self.lock:
            self.events.append(event)
        if self.hook is not None:
            self.hook(event)

    def statuses(self, job: str) -> list[str]:
        with self.lock:
            return [e.status.value for e in self.events
                    if isinstance(e, JobStatusChanged) and e.job == job]

    def feedback(self, job: str) -> list[JobFeedback]:
        with self.lock:
            return [e for e in self.events if isinstance(e, JobFeedback) and e.job == job]

    def lines(self, job: str) -> list[str]:
        return [line for f in self.feedback(job) for line in f.lines]


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


ProjectBuilder = Callable[..., dict[str, Any]]


def build_project(ops: dict[str, str], nodes: dict[str, tuple[Any, ...]],
                  edges: list[tuple[str, str, str, str]], **extra: Any) -> dict[str, Any]:
    plain_nodes = {}
    for node_id, spec in nodes.items():
        op, attributes, references, settings = (*spec, {}, {}, {})[:4]
        plain_nodes[node_id] = {"operation": op, "name": node_id, "attributes": attributes,
                                "references": references, "settings": settings}
    return {
        "operations": {op: {"name": op, "code": code, "builtin": False}
                       for op, code in ops.items()},
        "pipelines": {"p": {"name": "pipeline", "nodes": plain_nodes, "edges": {
            f"e{i}": {"src": s, "src_port": sp, "dst": d, "dst_port": dp}
            for i, (s, sp, d, dp) in enumerate(edges)}}},
        "architectures": extra.get("architectures", {}),
        "layers": extra.get("layers", {}),
        "artifacts": extra.get("artifacts", {}),
    }


@pytest.fixture
def make_project() -> ProjectBuilder:
    return build_project


# A Train operation for the paper pipeline, used until the built-in library ships one.
TRAIN_FALLBACK = '''
import torch
from forge_ops.runtime import Architecture, Criterion, Dataset, Model


def train(data: Dataset, /, *, max_iterations: int = 60, learning_rate: float = 0.05,
          batch_size: int = 64, seed: int = 0, net: Architecture,
          criterion: Criterion = "NLLLoss") -> Model:
    torch.manual_seed(seed)
    x, y = data["x"], data["y"]
    optimizer = torch.optim.SGD(net.parameters(), lr=learning_rate, momentum=0.9)
    graph = Graph("Training Error")
    line = graph.line("error")
    generator = torch.Generator().manual_seed(seed)
    for iteration in range(max_iterations):
        batch = torch.randint(0, len(y), (batch_size,), generator=generator)
        optimizer.zero_grad()
        loss = criterion(net(x[batch]), y[batch])
        loss.backward()
        optimizer.step()
        line.add(iteration, loss.item())
    return net
'''


def library_code(module: str, fallback: str | None = None) -> str:
    """A built-in operation's code text from forge_ops/operations/library, else ``fallback``."""
    path = resources.files("forge_ops.operations.library") / f"{module}.py"
    if path.is_file():
        return path.read_text()
    if fallback is None:
        pytest.skip(f"the built-in operation {module} is not available")
    return fallback


@pytest.fixture
def paper_project() -> dict[str, Any]:
    return build_paper_project()


def build_paper_project() -> dict[str, Any]:
    from forge_ops.arch import small_cnn

    ops = {
        "synthetic": library_code("synthetic_images"),
        "normalize": library_code("normalize_data"),
        "train": library_code("train", TRAIN_FALLBACK),
        "test": library_code("testing"),
        "output": library_code("output"),
    }
    nodes = {
        "Synthetic": ("synthetic", {"train_size": 800, "test_size": 200, "seed": 1}),
        "Normalize": ("normalize", {}),
        "Train": ("train", {"max_iterations": 50, "learning_rate": 0.003, "batch_size": 64,
                            "seed": 3}, {"net": "cnn", "criterion": "NLLLoss"}),
        "Test": ("test", {}),
        "ModelOut": ("output", {"name": "model"}),
        "MetricsOut": ("output", {"name": "metrics"}),
    }
    edges = [
        ("Synthetic", "train", "Normalize", "train"),
        ("Synthetic", "test", "Normalize", "test"),
        ("Normalize", "train", "Train", "data"),
        ("Train", "out", "Test", "model"),
        ("Normalize", "test", "Test", "data"),
        ("Train", "out", "ModelOut", "data"),
        ("Test", "out", "MetricsOut", "data"),
    ]
    return build_project(ops, nodes, edges, architectures={"cnn": small_cnn()})
