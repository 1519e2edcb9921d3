"""The built-in training operations on a CUDA device (skipped where there is none)."""

from __future__ import annotations

from typing import Any

import pytest

from forge_ops.operations import builtin_code
from forge_ops.runtime import MemorySink, ReferenceContext, execute_operation, resolve_references

torch = pytest.importorskip("torch")
pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


def run(operation: str, inputs: dict[str, Any], sink: MemorySink | None = None,
        references: dict[str, Any] | None = None, **attributes: Any) -> dict[str, Any]:
    return execute_operation(builtin_code(operation), attributes, references or {}, inputs,
                             sink if sink is not None else MemorySink(), name=operation)


def test_train_test_predict_on_cuda() -> None:
    from forge_ops.arch import small_cnn

    data = run("NormalizeData", run("SyntheticImages", {}, train_size=4000, test_size=1000))
    references = resolve_references(builtin_code("Train"), {"net": "cnn"},
                                    ReferenceContext(architectures={"cnn": small_cnn()}))
    sink = MemorySink()
    model = run("Train", {"data": data["train"]}, sink, references, max_iterations=200,
                batch_size=128, learning_rate=0.003)["out"]
    assert "training on cuda" in sink.text()
    assert len(sink.graphs["Training Error"]["error"]) == 200
    # models travel between jobs on the CPU
    assert all(parameter.device.type == "cpu" for parameter in model.parameters())
    metrics = run("Test", {"model": model, "data": data["test"]})["out"]
    assert metrics["accuracy"] > 0.5
    predictions = run("Predict", {"model": model, "data": data["test"]})["out"]
    assert predictions.device.type == "cpu" and predictions.shape == (1000,)
