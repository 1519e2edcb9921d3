"""Fixtures for TUI tests: a project with the paper's pipeline in an in-process hub."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from forge_ops.schema import ProjectDoc
from forge_tui.app import MemoryBackend, MemoryHub

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
    ops = {
        "download": project.add_operation("DownloadCIFAR10", DOWNLOAD, True),
        "normalize": project.add_operation("NormalizeData", NORMALIZE, True),
        "train": project.add_operation("Train", TRAIN),
        "test": project.add_operation("Test", TEST),
        "output": project.add_operation("Output", OUTPUT, True),
    }
    pid = project.add_pipeline("cifar10")
    nodes = {key: project.add_node(pid, ops[key]) for key in ("download", "normalize", "train")}
    nodes["test"] = project.add_node(pid, ops["test"])
    nodes["out_model"] = project.add_node(pid, ops["output"], "Output model")
    project.connect(pid, nodes["download"], "train", nodes["normalize"], "train")
    project.connect(pid, nodes["download"], "test", nodes["normalize"], "test")
    project.connect(pid, nodes["normalize"], "train", nodes["train"], "data")
    project.connect(pid, nodes["normalize"], "test", nodes["test"], "data")
    project.connect(pid, nodes["train"], "out", nodes["test"], "model")
    project.connect(pid, nodes["train"], "out", nodes["out_model"], "data")
    arch = project.add_architecture("VGG", [1, 3, 32, 32])
    conv = project.add_arch_layer(
        arch, "Conv2d", "conv1", {"in_channels": 3, "out_channels": 16, "kernel_size": 3}
    )
    relu = project.add_arch_layer(arch, "relu", "relu1")
    project.connect_layers(arch, conv, relu, 0)
    return PaperProject(hub, name, pid, ops, nodes, arch)


@pytest.fixture
def paper() -> PaperProject:
    return build_paper_project(MemoryHub())


@pytest.fixture
def backend(paper: PaperProject) -> MemoryBackend:
    return MemoryBackend(paper.hub, user="Ada Lovelace")
