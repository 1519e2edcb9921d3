"""Stand-ins for Forge's job runtime, so exported operation code runs with plain PyTorch.

Operation code written for Forge imports its type names and feedback API from
``forge_ops.runtime``; the exporter rewrites those imports to this module. Graph points are
printed and written to ``graphs.json``, images are saved with ``torch.save``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, TypeAlias

Tensor: TypeAlias = Any
Dataset: TypeAlias = dict[str, Any]
Model: TypeAlias = Any
Metrics: TypeAlias = dict[str, float]
Architecture: TypeAlias = Any
Criterion: TypeAlias = Any
Layer: TypeAlias = Any
Artifact: TypeAlias = Any

OUTPUT_DIR = Path("outputs")
GRAPHS: dict[str, dict[str, list[list[float]]]] = {}


class Line:
    """A named line of a graph; ``add(x, y)`` records a point."""

    def __init__(self, graph: Graph, name: str) -> None:
        self.graph = graph
        self.name = name

    def add(self, x: Any, y: Any) -> None:
        GRAPHS.setdefault(self.graph.title, {}).setdefault(self.name, []).append(
            [float(x), float(y)]
        )


class Graph:
    """A plot with named lines (Forge shows it live; here it is saved to graphs.json)."""

    def __init__(self, title: str) -> None:
        self.title = title

    def line(self, name: str) -> Line:
        return Line(self, name)


def image(name: str, value: Any) -> None:
    """Save an image-like value to ``outputs/images/NAME.pt``."""
    import torch

    folder = OUTPUT_DIR / "images"
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(value, folder / f"{name}.pt")


def load_artifact(content_hash: str) -> Any:
    raise RuntimeError(
        f"load_artifact({content_hash!r}) needs Forge's artifact store; pass the artifact as an "
        "input file instead (see run.py --artifact)"
    )


def checkpoint(state: Any, *, step: int) -> None:
    """Forge keeps checkpoints so a job resumes after losing its worker; a standalone run
    keeps none."""


def resume() -> Any:
    """No checkpoint to resume from in a standalone run."""
    return None


def save_graphs() -> None:
    if GRAPHS:
        OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
        (OUTPUT_DIR / "graphs.json").write_text(json.dumps(GRAPHS, indent=1))


NAMESPACE = {
    "Graph": Graph,
    "image": image,
    "load_artifact": load_artifact,
    "checkpoint": checkpoint,
    "resume": resume,
    **{
        name: Any
        for name in ("Any", "Tensor", "Model", "Architecture", "Criterion", "Layer", "Artifact")
    },
    "Dataset": Dataset,
    "Metrics": Metrics,
}
