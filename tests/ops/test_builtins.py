"""The built-in operations: their interfaces, the data operations and a tiny training run."""

from __future__ import annotations

from typing import Any

import pytest

from forge_ops.operations import (
    BUILTIN_FILES,
    Port,
    builtin_code,
    builtin_operations,
    parse_interface,
)
from forge_ops.runtime import MemorySink, OperationFailed, execute_operation

torch = pytest.importorskip("torch")


def run(operation: str, inputs: dict[str, Any] | None = None, sink: MemorySink | None = None,
        references: dict[str, Any] | None = None, **attributes: Any) -> dict[str, Any]:
    return execute_operation(builtin_code(operation), attributes, references or {},
                             inputs or {}, sink if sink is not None else MemorySink(),
                             name=operation)


class TestLibrary:
    def test_every_builtin_parses(self) -> None:
        operations = builtin_operations()
        assert [op.name for op in operations] == list(BUILTIN_FILES)
        for op in operations:
            assert parse_interface(op.code).doc, f"{op.name} has no docstring"

    def test_unknown_builtin(self) -> None:
        with pytest.raises(KeyError, match="built-ins are Input, Output"):
            builtin_code("Nope")

    def test_interfaces_of_the_paper_pipeline(self) -> None:
        train = parse_interface(builtin_code("Train"))
        assert train.inputs == (Port("data", "Dataset"),)
        assert train.outputs == (Port("out", "Model"),)
        assert {a.name for a in train.attributes} >= {"max_iterations", "epochs",
                                                      "learning_rate", "batch_size",
                                                      "optimizer", "seed"}
        assert [(r.name, r.type) for r in train.references] == [("net", "Architecture"),
                                                                 ("criterion", "Criterion")]
        test = parse_interface(builtin_code("Test"))
        assert [p.type for p in test.inputs] == ["Model", "Dataset"]
        assert test.outputs == (Port("out", "Metrics"),)
        for name in ("SyntheticImages", "DownloadCIFAR10", "NormalizeData", "SplitData"):
            assert parse_interface(builtin_code(name)).outputs == (
                Port("train", "Dataset"), Port("test", "Dataset"))
        assert parse_interface(builtin_code("Output")).outputs == ()

    def test_train_plots_like_the_paper(self) -> None:
        code = builtin_code("Train")
        assert 'graph = Graph("Training Error")' in code
        assert 'line = graph.line("error")' in code
        assert "line.add(" in code


class TestData:
    def test_synthetic_images_are_cifar_shaped_and_deterministic(self) -> None:
        first = run("SyntheticImages", train_size=100, test_size=20, seed=3)
        again = run("SyntheticImages", train_size=100, test_size=20, seed=3)
        other = run("SyntheticImages", train_size=100, test_size=20, seed=4)
        train = first["train"]
        assert train["x"].shape == (100, 3, 32, 32) and train["x"].dtype == torch.uint8
        assert train["y"].dtype == torch.int64
        assert torch.bincount(train["y"]).tolist() == [10] * 10
        assert first["test"]["x"].shape == (20, 3, 32, 32)
        assert torch.equal(train["x"], again["train"]["x"])
        assert torch.equal(first["test"]["y"], again["test"]["y"])
        assert not torch.equal(train["x"], other["train"]["x"])

    def test_synthetic_images_rejects_bad_sizes(self) -> None:
        with pytest.raises(OperationFailed, match="at least 10"):
            run("SyntheticImages", train_size=5)

    def test_normalize_uses_training_statistics(self) -> None:
        data = run("SyntheticImages", train_size=200, test_size=50)
        normal = run("NormalizeData", data)
        x = normal["train"]["x"]
        assert x.dtype == torch.float32
        assert torch.allclose(x.mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-4)
        assert torch.allclose(x.std(dim=(0, 2, 3)), torch.ones(3), atol=1e-3)
        raw = data["train"]["x"].float() / 255
        mean = raw.mean(dim=(0, 2, 3), keepdim=True)
        std = raw.std(dim=(0, 2, 3), keepdim=True) + 1e-6
        expected = (data["test"]["x"].float() / 255 - mean) / std
        assert torch.allclose(normal["test"]["x"], expected, atol=1e-5)
        assert torch.equal(normal["test"]["y"], data["test"]["y"])

    def test_split_data(self) -> None:
        data = {"x": torch.arange(50).float()[:, None], "y": torch.arange(50)}
        parts = run("SplitData", {"data": data}, test_fraction=0.2, seed=1)
        assert len(parts["train"]["y"]) == 40 and len(parts["test"]["y"]) == 10
        together = torch.cat([parts["train"]["y"], parts["test"]["y"]]).sort().values
        assert torch.equal(together, torch.arange(50))
        assert torch.equal(parts["train"]["x"][:, 0].long(), parts["train"]["y"])
        again = run("SplitData", {"data": data}, test_fraction=0.2, seed=1)
        assert torch.equal(again["test"]["y"], parts["test"]["y"])
        with pytest.raises(OperationFailed, match="test_fraction must be between 0 and 1"):
            run("SplitData", {"data": data}, test_fraction=1.5)

    def test_output_and_load_artifact(self) -> None:
        assert run("Output", {"data": 1}, name="scores") == {}
        with pytest.raises(OperationFailed, match="set the name attribute"):
            run("Output", {"data": 1}, name=" ")
        stored = {"abc": torch.ones(3)}
        loaded = execute_operation(builtin_code("LoadArtifact"), {"content_hash": "abc"}, {}, {},
                                   MemorySink(), load_artifact=stored.__getitem__)
        assert torch.equal(loaded["out"], torch.ones(3))
        assert run("Input", references={"artifact": [1, 2]}) == {"out": [1, 2]}


@pytest.fixture(scope="module")
def normalized() -> dict[str, Any]:
    return run("NormalizeData", run("SyntheticImages", train_size=1000, test_size=300, seed=0))


def small_net() -> Any:
    from forge_ops.arch import small_cnn
    from forge_ops.runtime import ReferenceContext, resolve_references

    context = ReferenceContext(architectures={"cnn": small_cnn()})
    return resolve_references(builtin_code("Train"), {"net": "cnn"}, context)


class TestTraining:
    def test_synthetic_normalize_train_test_beats_chance(self, normalized: dict) -> None:
        references = small_net()
        sink = MemorySink()
        model = run("Train", {"data": normalized["train"]}, sink, references,
                    max_iterations=30, batch_size=32, learning_rate=0.003)["out"]
        losses = [y for _, y in sink.graphs["Training Error"]["error"]]
        assert len(losses) == 30
        assert [x for x, _ in sink.graphs["Training Error"]["error"]] == list(range(1, 31))
        assert sum(losses[-10:]) < sum(losses[:10])
        assert "iteration 30/30" in sink.text("stdout")
        metrics = run("Test", {"model": model, "data": normalized["test"]})["out"]
        assert metrics["accuracy"] > 0.3  # chance is 0.1
        assert set(metrics) == {"accuracy"} | {f"accuracy/{name}" for name in (
            "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
            "truck")}
        predictions = run("Predict", {"model": model, "data": normalized["test"]})["out"]
        assert predictions.shape == (300,) and predictions.dtype == torch.int64
        accuracy = (predictions == normalized["test"]["y"]).float().mean().item()
        assert accuracy == pytest.approx(metrics["accuracy"])

    def test_empty_data_and_bad_settings_are_clear_errors(self) -> None:
        empty = {"x": torch.zeros(0, 3, 32, 32), "y": torch.zeros(0, dtype=torch.int64)}
        with pytest.raises(OperationFailed, match="the training data is empty"):
            run("Train", {"data": empty}, None, small_net())
        with pytest.raises(OperationFailed, match="batch_size and epochs must be ≥ 1"):
            run("Train", {"data": empty}, None, small_net(), batch_size=0)

    def test_training_reproduces_bit_for_bit(self, normalized: dict) -> None:
        states = []
        for _ in range(2):
            model = run("Train", {"data": normalized["train"]}, None, small_net(),
                        max_iterations=3, batch_size=16, optimizer="sgd", seed=7)["out"]
            states.append(model.state_dict())
        assert states[0].keys() == states[1].keys()
        assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])
