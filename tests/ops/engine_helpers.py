"""Helpers shared by the execution engine tests (imported by tests/ops/conftest.py and tests).

- ``Recorder``: an ``on_event`` callback that keeps every event, thread-safely.
- ``build_project(ops, nodes, edges)``: a plain project from ``{op_id: code}``, ``{node_id:
  (op_id, attributes[, references[, settings]])}`` and ``[(src, src_port, dst, dst_port)]``.
- ``build_paper_project()``: the paper's pipeline shape (SyntheticImages → NormalizeData →
  Train(net) → Test, with Outputs of the model and the metrics), small enough to train in seconds.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from importlib import resources
from typing import Any

from forge_ops.execution import Event, JobFeedback, JobStatusChanged


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



def library_code(module: str) -> str:
    """A built-in operation's code text from forge_ops/operations/library."""
    return (resources.files("forge_ops.operations.library") / f"{module}.py").read_text()




def build_paper_project() -> dict[str, Any]:
    from forge_ops.arch import small_cnn

    ops = {
        "synthetic": library_code("synthetic_images"),
        "normalize": library_code("normalize_data"),
        "train": library_code("train"),
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
