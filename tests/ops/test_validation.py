"""Pipeline validation reports every problem at once, each naming the node and the fix."""

from __future__ import annotations

import pickle
from typing import Any

import pytest

from forge_ops.operations import (
    PipelineInvalid,
    ProblemKind,
    builtin_code,
    find_problems,
    validate_pipeline,
    validate_project_pipeline,
)
from forge_ops.operations.types import TORCH_LOSSES

OPERATIONS = {
    name.lower(): {"name": name, "code": builtin_code(name), "builtin": True}
    for name in ("SyntheticImages", "NormalizeData", "Train", "Test", "Output", "Input")
}
ARCHITECTURES = {"a1": {"name": "SmallCNN", "layers": {}, "edges": {}}}


def node(operation: str, name: str | None = None, **fields: Any) -> dict[str, Any]:
    return {"operation": operation, "name": name or OPERATIONS[operation]["name"],
            "attributes": fields.get("attributes", {}),
            "references": fields.get("references", {}),
            "settings": fields.get("settings", {})}


def edge(src: str, src_port: str, dst: str, dst_port: str) -> dict[str, str]:
    return {"src": src, "src_port": src_port, "dst": dst, "dst_port": dst_port}


def paper_pipeline() -> dict[str, Any]:
    """SyntheticImages → NormalizeData → Train → Test → two Outputs (the paper's shape)."""
    return {
        "name": "cifar",
        "nodes": {
            "syn": node("syntheticimages"),
            "norm": node("normalizedata"),
            "train": node("train", attributes={"max_iterations": 50, "learning_rate": 0.001},
                          references={"net": "a1"}),
            "test": node("test"),
            "out_model": node("output", "Model", attributes={"name": "model"}),
            "out_scores": node("output", "Scores", attributes={"name": "scores"}),
        },
        "edges": {
            "e1": edge("syn", "train", "norm", "train"),
            "e2": edge("syn", "test", "norm", "test"),
            "e3": edge("norm", "train", "train", "data"),
            "e4": edge("train", "out", "test", "model"),
            "e5": edge("norm", "test", "test", "data"),
            "e6": edge("train", "out", "out_model", "data"),
            "e7": edge("test", "out", "out_scores", "data"),
        },
    }


def problems(pipeline: dict[str, Any], **context: Any) -> list[tuple[ProblemKind, str | None]]:
    context.setdefault("architectures", ARCHITECTURES)
    return [(p.kind, p.node) for p in find_problems(pipeline, OPERATIONS, **context)]


def messages(pipeline: dict[str, Any], **context: Any) -> str:
    context.setdefault("architectures", ARCHITECTURES)
    return "\n".join(p.message for p in find_problems(pipeline, OPERATIONS, **context))


class TestValidPipeline:
    def test_paper_pipeline_is_valid(self) -> None:
        assert find_problems(paper_pipeline(), OPERATIONS, architectures=ARCHITECTURES) == []
        validate_pipeline(paper_pipeline(), OPERATIONS, architectures=ARCHITECTURES)

    def test_architecture_may_be_named(self) -> None:
        pipeline = paper_pipeline()
        pipeline["nodes"]["train"]["references"]["net"] = "SmallCNN"
        assert problems(pipeline) == []

    def test_project_snapshot_form(self) -> None:
        project = {"pipelines": {"p1": paper_pipeline()}, "operations": OPERATIONS,
                   "architectures": ARCHITECTURES, "layers": {}, "artifacts": {}}
        validate_project_pipeline(project, "p1")
        with pytest.raises(PipelineInvalid, match="no pipeline with id 'p2'"):
            validate_project_pipeline(project, "p2")


class TestGraphProblems:
    def test_cycle(self) -> None:
        pipeline = paper_pipeline()
        pipeline["edges"]["back"] = edge("test", "out", "norm", "train")
        assert any(kind == ProblemKind.CYCLE for kind, _ in problems(pipeline))
        assert "form a cycle; remove one of these connections" in messages(pipeline)

    def test_self_loop(self) -> None:
        pipeline = paper_pipeline()
        pipeline["edges"]["self"] = edge("norm", "train", "norm", "test")
        assert "NormalizeData: it is connected to itself" in messages(pipeline)

    def test_unconnected_required_input(self) -> None:
        pipeline = paper_pipeline()
        del pipeline["edges"]["e5"]
        assert problems(pipeline) == [(ProblemKind.UNCONNECTED_INPUT, "test")]
        assert "Test: input 'data' (Dataset) is not connected" in messages(pipeline)

    def test_type_mismatch_names_both_ports_and_types(self) -> None:
        pipeline = paper_pipeline()
        pipeline["edges"]["e4"] = edge("norm", "test", "test", "model")
        text = messages(pipeline)
        assert ("Test: cannot connect NormalizeData.test (Dataset) to Test.model (Model)"
                in text)
        assert (ProblemKind.TYPE_MISMATCH, "test") in problems(pipeline)

    def test_input_connected_twice(self) -> None:
        pipeline = paper_pipeline()
        pipeline["edges"]["dup"] = edge("norm", "train", "test", "data")
        assert (ProblemKind.INPUT_CONNECTED_TWICE, "test") in problems(pipeline)

    def test_dangling_edge_and_unknown_ports(self) -> None:
        pipeline = paper_pipeline()
        pipeline["edges"]["gone"] = edge("deleted", "out", "test", "data")
        pipeline["edges"]["e3"] = edge("norm", "validation", "train", "data")
        pipeline["edges"]["e7"] = edge("test", "out", "out_scores", "value")
        found = problems(pipeline)
        assert (ProblemKind.DANGLING_EDGE, None) in found
        assert (ProblemKind.UNKNOWN_PORT, "norm") in found
        assert (ProblemKind.UNKNOWN_PORT, "out_scores") in found
        text = messages(pipeline)
        assert "NormalizeData: it has no output 'validation' (outputs: train, test)" in text
        assert "Scores: it has no input 'value' (inputs: data)" in text

    def test_empty_pipeline(self) -> None:
        assert problems({"name": "empty", "nodes": {}, "edges": {}}) == [(ProblemKind.EMPTY, None)]


class TestNodeProblems:
    def test_unknown_operation(self) -> None:
        pipeline = paper_pipeline()
        pipeline["nodes"]["train"]["operation"] = "removed-op"
        found = problems(pipeline)
        assert found[0] == (ProblemKind.UNKNOWN_OPERATION, "train")
        assert "Train: its operation 'removed-op' does not exist" in messages(pipeline)

    def test_invalid_code(self) -> None:
        operations: dict[str, Any] = {**OPERATIONS,
                                      "test": {"name": "Test", "code": "def test(:\n"}}
        found = find_problems(paper_pipeline(), operations, architectures=ARCHITECTURES)
        assert [(p.kind, p.node) for p in found] == [(ProblemKind.INVALID_CODE, "test")]
        assert "line 1: syntax error" in found[0].message

    def test_missing_reference(self) -> None:
        pipeline = paper_pipeline()
        pipeline["nodes"]["train"]["references"] = {}
        assert problems(pipeline) == [(ProblemKind.MISSING_REFERENCE, "train")]
        assert "Train: reference 'net' is not set; choose an Architecture" in messages(pipeline)

    def test_dangling_references(self) -> None:
        pipeline = paper_pipeline()
        pipeline["nodes"]["train"]["references"] = {"net": "deleted-arch",
                                                   "criterion": "NoSuchLoss"}
        assert problems(pipeline) == [(ProblemKind.DANGLING_REFERENCE, "train")] * 2
        text = messages(pipeline)
        assert "reference 'net' points at 'deleted-arch'" in text
        assert "reference 'criterion' points at 'NoSuchLoss'" in text

    def test_custom_layer_may_be_a_criterion(self) -> None:
        pipeline = paper_pipeline()
        pipeline["nodes"]["train"]["references"]["criterion"] = "FocalLoss"
        layers = {"l1": {"name": "FocalLoss", "code": "class FocalLoss: ..."}}
        assert problems(pipeline, layers=layers) == []
        assert problems(pipeline, layers={}) == [(ProblemKind.DANGLING_REFERENCE, "train")]

    def test_artifact_reference(self) -> None:
        pipeline = {"name": "p", "nodes": {"in": node("input", references={"artifact": "x"}),
                                            "out": node("output")},
                    "edges": {"e": edge("in", "out", "out", "data")}}
        assert problems(pipeline, artifacts={"x": {"hash": "abc"}}) == []
        assert problems(pipeline, artifacts={}) == [(ProblemKind.DANGLING_REFERENCE, "in")]
        assert problems(pipeline) == []  # without the artifacts map the target is not checked

    def test_unknown_reference(self) -> None:
        pipeline = paper_pipeline()
        pipeline["nodes"]["test"]["references"] = {"net": "a1"}
        assert problems(pipeline) == [(ProblemKind.UNKNOWN_REFERENCE, "test")]

    def test_attribute_of_wrong_type(self) -> None:
        pipeline = paper_pipeline()
        pipeline["nodes"]["train"]["attributes"].update(
            {"learning_rate": "fast", "max_iterations": 2.5, "optimizer": "rmsprop"})
        assert problems(pipeline) == [(ProblemKind.ATTRIBUTE_TYPE, "train")] * 3
        text = messages(pipeline)
        assert "Train: attribute 'learning_rate' is 'fast' but must be float" in text
        assert "attribute 'optimizer' is 'rmsprop' but must be one of 'adam', 'sgd'" in text

    @pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
    def test_a_float_attribute_must_be_finite(self, value: float) -> None:
        pipeline = paper_pipeline()
        pipeline["nodes"]["train"]["attributes"]["learning_rate"] = value
        assert problems(pipeline) == [(ProblemKind.ATTRIBUTE_TYPE, "train")]
        assert f"Train: attribute 'learning_rate' is {value!r}; set a finite number" in messages(
            pipeline)

    def test_unknown_attribute(self) -> None:
        pipeline = paper_pipeline()
        pipeline["nodes"]["train"]["attributes"]["lr"] = 0.1
        assert problems(pipeline) == [(ProblemKind.UNKNOWN_ATTRIBUTE, "train")]
        assert "unknown attribute 'lr' (its attributes are: max_iterations" in messages(pipeline)

    def test_bad_settings(self) -> None:
        pipeline = paper_pipeline()
        pipeline["nodes"]["train"]["settings"] = {"num_gpus": -1, "always_recompute": "yes"}
        assert problems(pipeline) == [(ProblemKind.SETTING, "train")] * 2

    def test_duplicate_display_names_are_told_apart(self) -> None:
        pipeline = paper_pipeline()
        pipeline["nodes"]["out_scores"]["name"] = "Model"
        del pipeline["edges"]["e7"]
        assert "Model (node out_scores): input 'data'" in messages(pipeline)


    def test_output_names_must_differ_and_not_be_empty(self) -> None:
        pipeline = paper_pipeline()
        pipeline["nodes"]["out_scores"]["attributes"]["name"] = "model"
        assert problems(pipeline) == [(ProblemKind.OUTPUT_NAME, "out_scores")]
        assert "Model and Scores all publish the artifact 'model'" in messages(pipeline)
        pipeline["nodes"]["out_scores"]["attributes"]["name"] = "  "
        assert problems(pipeline) == [(ProblemKind.OUTPUT_NAME, "out_scores")]
        del pipeline["nodes"]["out_scores"]["attributes"]["name"]  # default "output"
        assert problems(pipeline) == []


class TestAllTogether:
    def test_every_problem_is_reported_at_once(self) -> None:
        pipeline = paper_pipeline()
        del pipeline["edges"]["e5"]
        pipeline["nodes"]["train"]["references"] = {}
        pipeline["nodes"]["train"]["attributes"]["batch_size"] = "big"
        pipeline["edges"]["back"] = edge("test", "out", "norm", "train")
        with pytest.raises(PipelineInvalid) as info:
            validate_pipeline(pipeline, OPERATIONS, architectures=ARCHITECTURES)
        kinds = {problem.kind for problem in info.value.problems}
        assert {ProblemKind.UNCONNECTED_INPUT, ProblemKind.MISSING_REFERENCE,
                ProblemKind.ATTRIBUTE_TYPE, ProblemKind.CYCLE} <= kinds
        assert str(info.value).startswith("pipeline cifar cannot run (")
        assert all(problem.message in str(info.value) for problem in info.value.problems)
        copy = pickle.loads(pickle.dumps(info.value))  # crosses process boundaries intact
        assert copy.problems == info.value.problems and str(copy) == str(info.value)


def test_loss_names_match_installed_torch() -> None:
    nn = pytest.importorskip("torch.nn")
    losses = {name for name in dir(nn) if not name.startswith("_")
              and isinstance(getattr(nn, name), type)
              and issubclass(getattr(nn, name), nn.modules.loss._Loss)}
    assert losses == TORCH_LOSSES
