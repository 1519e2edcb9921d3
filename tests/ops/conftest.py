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
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from engine_helpers import ProjectBuilder, Recorder, build_paper_project, build_project

from forge_ops.artifacts import ArtifactStore
from forge_ops.execution import LocalExecutor, RayExecutor


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


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def make_project() -> ProjectBuilder:
    return build_project


@pytest.fixture
def paper_project() -> dict[str, Any]:
    return build_paper_project()
