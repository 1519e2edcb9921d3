"""Writing an architecture's plain data into a project document."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from forge_ops.arch._model import graph_of
from forge_ops.schema import ProjectDoc


def write_architecture(
    project: ProjectDoc, arch: Mapping[str, Any], name: str | None = None
) -> str:
    """Add ``arch`` (validated first) to the project in one transaction; return its id.

    Layer and edge ids are kept, so the document matches the plain data exactly.
    """
    graph_of(arch)  # never write a malformed graph
    with project.doc.transaction():
        arch_id = project.add_architecture(
            name or str(arch.get("name") or "Network"), arch.get("input_shape")
        )
        for layer_id, layer in arch["layers"].items():
            project.add_arch_layer(
                arch_id,
                layer["type"],
                layer.get("name"),
                layer.get("attributes") or {},
                layer_id=layer_id,
            )
        for edge_id, edge in (arch.get("edges") or {}).items():
            project.connect_layers(
                arch_id, edge["src"], edge["dst"], int(edge.get("index", 0)), edge_id=edge_id
            )
    return arch_id
