"""Fixtures for TUI tests: a project with the paper's pipeline in an in-process hub."""

from __future__ import annotations

import io
import time
from dataclasses import dataclass
from typing import Any

import pytest
from rich.console import Console
from textual.screen import Screen
from textual.widget import Widget

from forge_ops.schema import ProjectDoc
from forge_tui.app import MemoryBackend, MemoryHub


async def shown(
    pilot: Any, screen_type: type[Screen[Any]] | Any, selector: str, timeout: float = 30.0
) -> Widget:
    """The widget matching `selector` once a `screen_type` screen is on top and composed.

    A pushed screen becomes `app.screen` before its children are mounted, so waiting for the
    screen alone and then querying races on a loaded machine."""
    deadline = time.monotonic() + timeout
    while True:
        screen = pilot.app.screen
        if isinstance(screen, screen_type) and (found := screen.query(selector)):
            return found.first()
        if time.monotonic() > deadline:
            raise AssertionError(f"no {selector} on a {screen_type} in time; on top: {screen!r}")
        await pilot.pause(0.02)


def screen_text(app: Any) -> str:
    """What the terminal shows now, as plain text (one line per row)."""
    width, height = app.size
    console = Console(
        width=width, height=height, file=io.StringIO(), record=True, force_terminal=True,
        legacy_windows=False, safe_box=False,
    )
    console.print(
        app.screen._compositor.render_update(full=True, screen_stack=app._background_screens)
    )
    return console.export_text()


DOWNLOAD = """
def download_cifar10(*, subset: int = 100) -> {"train": Dataset, "test": Dataset}:
    return {"train": None, "test": None}
"""
NORMALIZE = """
def normalize(train: Dataset, test: Dataset) -> {"train": Dataset, "test": Dataset}:
    return {"train": train, "test": test}
"""
TRAIN = """
def train(data: Dataset, *, max_iterations: int = 50, learning_rate: float = 0.001,
          net: Architecture, criterion: Criterion = "CrossEntropyLoss") -> Model:
    return None
"""
TEST = """
def test(data: Dataset, model: Model) -> Metrics:
    return {}
"""
OUTPUT = """
def output(data: Any, *, name: str = "result") -> None:
    pass
"""


@dataclass
class PaperProject:
    hub: MemoryHub
    name: str
    pipeline: str
    ops: dict[str, str]
    nodes: dict[str, str]
    arch: str

    def view(self) -> ProjectDoc:
        return ProjectDoc(self.hub.room_doc(f"{self.name}/main"))


def build_paper_project(hub: MemoryHub, name: str = "cifar") -> PaperProject:
    project = ProjectDoc.create(name, hub.room_doc(f"{name}/main"))
    # Fixed ids keep layouts (ordered by id) and snapshots deterministic.
    ops = {
        "download": project.add_operation("DownloadCIFAR10", DOWNLOAD, True, op_id="op1"),
        "normalize": project.add_operation("NormalizeData", NORMALIZE, True, op_id="op2"),
        "train": project.add_operation("Train", TRAIN, op_id="op3"),
        "test": project.add_operation("Test", TEST, op_id="op4"),
        "output": project.add_operation("Output", OUTPUT, True, op_id="op5"),
    }
    pid = project.add_pipeline("cifar10", pipeline_id="pipe1")
    nodes = {
        key: project.add_node(pid, ops[key], node_id=f"n{i}")
        for i, key in enumerate(("download", "normalize", "train", "test"))
    }
    nodes["out_model"] = project.add_node(pid, ops["output"], "Output model", node_id="n5")
    # edge ids in drawing order
    project.connect(pid, nodes["download"], "train", nodes["normalize"], "train")
    project.connect(pid, nodes["download"], "test", nodes["normalize"], "test")
    project.connect(pid, nodes["normalize"], "train", nodes["train"], "data")
    project.connect(pid, nodes["normalize"], "test", nodes["test"], "data")
    project.connect(pid, nodes["train"], "out", nodes["test"], "model")
    project.connect(pid, nodes["train"], "out", nodes["out_model"], "data")
    arch = project.add_architecture("VGG", [1, 3, 32, 32], arch_id="arch1")
    conv = project.add_arch_layer(
        arch,
        "Conv2d",
        "conv1",
        {"in_channels": 3, "out_channels": 16, "kernel_size": 3},
        layer_id="l1",
    )
    relu = project.add_arch_layer(arch, "relu", "relu1", layer_id="l2")
    image = project.add_arch_layer(arch, "Input", "image", layer_id="l0")
    project.connect_layers(arch, image, conv, 0, edge_id="e0")
    project.connect_layers(arch, conv, relu, 0, edge_id="e1")
    logits = project.add_arch_layer(arch, "Output", "logits", layer_id="l3")
    project.connect_layers(arch, relu, logits, 0, edge_id="e2")
    return PaperProject(hub, name, pid, ops, nodes, arch)


@pytest.fixture
def paper() -> PaperProject:
    return build_paper_project(MemoryHub())


@pytest.fixture
def backend(paper: PaperProject) -> MemoryBackend:
    return MemoryBackend(paper.hub, user="Ada Lovelace")
