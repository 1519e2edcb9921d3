"""The example project "cifar10": it validates, its pipelines have the paper's shape, and its
custom operation and custom layer work."""

from __future__ import annotations

import ast
import json
from typing import Any

import pytest
import torch
from pycrdt import Doc

from forge_ops.arch import build_module, parse_custom_layer, resnet, small_cnn, vgg
from forge_ops.examples import (
    ARTIFACTS,
    CUSTOM_LAYER,
    CUSTOM_OPERATION,
    EXAMPLES,
    PIPELINE_CIFAR10,
    PIPELINE_CUSTOM,
    PIPELINE_SYNTHETIC,
    SYNTHETIC_NET,
    UnknownExample,
    example_code,
    example_document,
    flip_cnn,
    setting_differences,
)
from forge_ops.operations import builtin_code, parse_interface, validate_project_pipeline
from forge_ops.schema import ProjectDoc

# The paper's Figure 3: (source operation, port) -> (destination operation, port).
PAPER_EDGES = {
    ("DownloadCIFAR10", "train", "NormalizeData", "train"),
    ("DownloadCIFAR10", "test", "NormalizeData", "test"),
    ("NormalizeData", "train", "Train", "data"),
    ("NormalizeData", "test", "Test", "data"),
    ("Train", "out", "Test", "model"),
    ("Train", "out", "Output", "data"),
    ("Test", "out", "Output", "data"),
}


@pytest.fixture(scope="module")
def project() -> dict[str, Any]:
    doc = example_document("cifar10", "cifar10")
    plain = doc.to_plain()
    assert doc.warnings == []
    return dict(plain)


def pipeline(project: dict[str, Any], name: str) -> tuple[str, dict[str, Any]]:
    found = [(pid, p) for pid, p in project["pipelines"].items() if p["name"] == name]
    assert len(found) == 1, f"expected one pipeline {name!r}"
    return found[0]


def op_name(project: dict[str, Any], node: dict[str, Any]) -> str:
    return str(project["operations"][node["operation"]]["name"])


def edges_by_operation(project: dict[str, Any], pipe: dict[str, Any]) -> set[tuple[str, ...]]:
    nodes = pipe["nodes"]
    return {
        (
            op_name(project, nodes[e["src"]]),
            e["src_port"],
            op_name(project, nodes[e["dst"]]),
            e["dst_port"],
        )
        for e in pipe["edges"].values()
    }


def node_of(project: dict[str, Any], pipe: dict[str, Any], operation: str) -> dict[str, Any]:
    found = [n for n in pipe["nodes"].values() if op_name(project, n) == operation]
    assert len(found) == 1
    return dict(found[0])


class TestValidation:
    @pytest.mark.parametrize("name", [PIPELINE_CIFAR10, PIPELINE_SYNTHETIC, PIPELINE_CUSTOM])
    def test_every_pipeline_validates(self, project: dict[str, Any], name: str) -> None:
        pid, _ = pipeline(project, name)
        validate_project_pipeline(project, pid)

    def test_survives_the_wire(self, project: dict[str, Any]) -> None:
        """The server sends the document as one update; the copy reads back identically."""
        original = example_document("cifar10", "copy")
        copy = Doc()
        copy.apply_update(original.doc.get_update())
        assert ProjectDoc(copy).to_plain() == original.to_plain()

    def test_unknown_example_names_the_known_ones(self) -> None:
        with pytest.raises(UnknownExample, match="examples: cifar10"):
            example_document("mnist", "x")
        assert "cifar10" in EXAMPLES


class TestPaperShape:
    def test_train_cifar10_is_figure_3(self, project: dict[str, Any]) -> None:
        _, pipe = pipeline(project, PIPELINE_CIFAR10)
        operations = sorted(op_name(project, n) for n in pipe["nodes"].values())
        assert operations == sorted(
            ["DownloadCIFAR10", "NormalizeData", "Train", "Test", "Output", "Output"]
        )
        assert edges_by_operation(project, pipe) == PAPER_EDGES

    def test_train_has_the_papers_settings(self, project: dict[str, Any]) -> None:
        _, pipe = pipeline(project, PIPELINE_CIFAR10)
        train = node_of(project, pipe, "Train")
        assert train["attributes"]["learning_rate"] == 0.001
        assert train["attributes"]["max_iterations"] == 50
        assert train["references"]["criterion"] == "CrossEntropyLoss"
        net = project["architectures"][train["references"]["net"]]
        assert net["name"] == "VGG16"

    def test_outputs_publish_model_and_accuracies(self, project: dict[str, Any]) -> None:
        for name in (PIPELINE_CIFAR10, PIPELINE_SYNTHETIC):
            _, pipe = pipeline(project, name)
            nodes = pipe["nodes"]
            published = {
                op_name(project, nodes[e["src"]]): nodes[e["dst"]]["attributes"]["name"]
                for e in pipe["edges"].values()
                if op_name(project, nodes[e["dst"]]) == "Output"
            }
            model, accuracies = ARTIFACTS[name]
            assert published == {"Train": model, "Test": accuracies}

    def test_synthetic_twin_differs_only_in_its_source(self, project: dict[str, Any]) -> None:
        _, twin = pipeline(project, PIPELINE_SYNTHETIC)
        renamed = {
            tuple("DownloadCIFAR10" if part == "SyntheticImages" else part for part in edge)
            for edge in edges_by_operation(project, twin)
        }
        assert renamed == PAPER_EDGES
        train = node_of(project, twin, "Train")
        # The paper's learning rate; a slim VGG11 for more iterations, so a CPU learns the
        # patterns in well under a minute (tests/e2e/test_demo.py checks the accuracy).
        assert train["attributes"]["learning_rate"] == 0.001
        assert train["attributes"]["max_iterations"] == 150
        assert train["attributes"]["batch_size"] == 16
        assert project["architectures"][train["references"]["net"]]["name"] == SYNTHETIC_NET

    def test_twin_says_what_differs_from_the_paper(self, project: dict[str, Any]) -> None:
        assert setting_differences(project, PIPELINE_SYNTHETIC, PIPELINE_CIFAR10) == [
            "data from SyntheticImages (seed=0, test_size=500, train_size=2000) "
            "instead of DownloadCIFAR10",
            "batch_size 16 instead of 64",
            "max_iterations 150 instead of 50",
            "net SlimVGG11 instead of VGG16",
        ]
        assert setting_differences(project, PIPELINE_CIFAR10, PIPELINE_CIFAR10) == []
        assert setting_differences(project, "no such pipeline", PIPELINE_CIFAR10) == []

    def test_slim_vgg_keeps_the_layer_sequence_at_a_quarter_width(self) -> None:
        full, slim = vgg(11), vgg(11, width=0.25, name=SYNTHETIC_NET)
        assert slim["name"] == SYNTHETIC_NET
        assert [lay["name"] for lay in slim["layers"].values()] == [
            lay["name"] for lay in full["layers"].values()
        ]
        widths = [lay["attributes"].get("out_channels") for lay in slim["layers"].values()
                  if lay["type"] == "Conv2d"]
        assert widths == [16, 32, 64, 64, 128, 128, 128, 128]
        torch.manual_seed(0)
        assert build_module(slim)(torch.randn(2, 3, 32, 32)).shape == (2, 10)
        with pytest.raises(ValueError, match="VGG width must be above 0"):
            vgg(11, width=0)

    def test_train_plots_training_error_as_the_paper_does(self, project: dict[str, Any]) -> None:
        """DeepForge.Graph('Training Error') / graph:line('error') / errLine:add(iter, err)."""
        train = next(op for op in project["operations"].values() if op["name"] == "Train")
        calls = {
            ast.unparse(node)
            for node in ast.walk(ast.parse(train["code"]))
            if isinstance(node, ast.Call)
        }
        assert 'Graph("Training Error")' in calls or "Graph('Training Error')" in calls
        assert any(call.endswith(".line('error')") for call in calls)
        assert "line.add(first + offset, value)" in calls
        assert train["builtin"] is True and train["code"] == builtin_code("Train")


class TestArchitecturesAndCustomCode:
    def test_holds_the_builtin_architectures(self, project: dict[str, Any]) -> None:
        def layers(arch: dict[str, Any]) -> list[tuple[str, str, str]]:
            return sorted(
                (lay["name"], lay["type"], json.dumps(lay["attributes"], sort_keys=True))
                for lay in arch["layers"].values()
            )

        by_name = {a["name"]: a for a in project["architectures"].values()}
        for expected in (vgg(16), vgg(11), vgg(11, width=0.25, name=SYNTHETIC_NET), small_cnn(),
                         resnet(), flip_cnn()):
            stored = by_name[expected["name"]]
            assert stored["input_shape"] == expected["input_shape"]
            assert layers(stored) == layers(expected)
            assert len(stored["edges"]) == len(expected["edges"])

    def test_custom_layer_is_read_from_its_code(self, project: dict[str, Any]) -> None:
        layer = next(iter(project["layers"].values()))
        assert layer["name"] == CUSTOM_LAYER
        spec = parse_custom_layer(layer["code"])
        assert spec.name == CUSTOM_LAYER
        assert [a.name for a in spec.attributes] == ["in_channels", "out_channels", "kernel_size"]

    def test_custom_architecture_builds_and_classifies(self) -> None:
        torch.manual_seed(0)
        net = build_module(flip_cnn(), {CUSTOM_LAYER: example_code(CUSTOM_LAYER)})
        assert net(torch.randn(2, 3, 32, 32)).shape == (2, 10)

    def test_custom_operation_interface(self, project: dict[str, Any]) -> None:
        op = next(o for o in project["operations"].values() if o["name"] == CUSTOM_OPERATION)
        assert op["builtin"] is False
        interface = parse_interface(op["code"])
        assert [(p.name, p.type) for p in interface.inputs] == [("data", "Dataset")]
        assert [(p.name, p.type) for p in interface.outputs] == [("out", "Dataset")]
        assert {a.name: a.default for a in interface.attributes} == {"fraction": 0.5, "seed": 0}

    def test_custom_operation_adds_mirrored_images(self) -> None:
        namespace: dict[str, Any] = {}
        exec(compile(example_code(CUSTOM_OPERATION), "random_flips.py", "exec"), namespace)
        x = torch.arange(4 * 3 * 2 * 2, dtype=torch.float32).reshape(4, 3, 2, 2)
        y = torch.tensor([0, 1, 2, 3])
        result = namespace["random_flips"]({"x": x, "y": y}, fraction=0.5, seed=1)
        assert len(result["y"]) == 6
        assert torch.equal(result["x"][:4], x)
        for image, label in zip(result["x"][4:], result["y"][4:], strict=True):
            assert torch.equal(image, x[int(label)].flip(-1))
        with pytest.raises(ValueError, match="fraction must be between 0 and 1"):
            namespace["random_flips"]({"x": x, "y": y}, fraction=2.0)
