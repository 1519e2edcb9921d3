"""Editing an architecture of a project document: its layers and the connections between them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pycrdt import Map

from ._ids import new_id
from ._plain import check_json
from ._read import SchemaError
from ._roots import ProjectRoots, checked_input_shape, checked_name, json_dict, sub_map


class ArchitectureEdits(ProjectRoots):
    """The architecture part of :class:`ProjectDoc`; each helper changes the document once."""

    def set_input_shape(self, arch_id: str, input_shape: list[int] | None) -> None:
        self._arch(arch_id)["input_shape"] = checked_input_shape(input_shape)

    def add_arch_layer(
        self,
        arch_id: str,
        layer_type: str,
        name: str | None = None,
        attributes: Mapping[str, Any] | None = None,
        *,
        layer_id: str | None = None,
    ) -> str:
        """Add a layer (torch.nn class, custom layer name or functional op) to an architecture."""
        arch = self._arch(arch_id)
        layer_id = layer_id or new_id()
        _layers(arch, arch_id)[layer_id] = Map(
            {
                "type": checked_name(layer_type, "layer type"),
                "name": checked_name(name or layer_type, "layer"),
                "attributes": Map(json_dict(attributes, "attributes")),
            }
        )
        return layer_id

    def rename_arch_layer(self, arch_id: str, layer_id: str, name: str) -> None:
        self._arch_layer(arch_id, layer_id)["name"] = checked_name(name, "layer")

    def set_layer_attribute(self, arch_id: str, layer_id: str, key: str, value: Any) -> None:
        check_json(value, f"attribute {key!r}")
        layer = self._arch_layer(arch_id, layer_id)
        sub_map(layer, "attributes", f"layer {layer_id!r}")[key] = value

    def remove_arch_layer(self, arch_id: str, layer_id: str) -> None:
        """Delete a layer and every connection to or from it."""
        arch = self._arch(arch_id)
        layers = _layers(arch, arch_id)
        if layer_id not in layers:
            raise SchemaError(f"architecture {arch_id!r} has no layer {layer_id!r}")
        with self.doc.transaction():
            edges = _edges(arch, arch_id)
            for edge_id, edge in list(edges.items()):
                if isinstance(edge, Map) and layer_id in (edge.get("src"), edge.get("dst")):
                    del edges[edge_id]
            del layers[layer_id]

    def connect_layers(
        self, arch_id: str, src: str, dst: str, index: int = 0, *, edge_id: str | None = None
    ) -> str:
        """Feed layer ``src``'s output into input position ``index`` of layer ``dst``."""
        arch = self._arch(arch_id)
        layers = _layers(arch, arch_id)
        for layer in (src, dst):
            if layer not in layers:
                raise SchemaError(f"architecture {arch_id!r} has no layer {layer!r}")
        if not isinstance(index, int) or isinstance(index, bool) or index < 0:
            raise SchemaError(f"input index must be a non-negative integer, got {index!r}")
        edge_id = edge_id or new_id()
        _edges(arch, arch_id)[edge_id] = Map({"src": src, "dst": dst, "index": index})
        return edge_id

    def disconnect_layers(self, arch_id: str, edge_id: str) -> None:
        edges = _edges(self._arch(arch_id), arch_id)
        if edge_id not in edges:
            raise SchemaError(f"architecture {arch_id!r} has no connection {edge_id!r}")
        del edges[edge_id]

    def _arch(self, arch_id: str) -> Map:
        return self._find_entry(arch_id, ("architectures",))

    def _arch_layer(self, arch_id: str, layer_id: str) -> Map:
        layer = _layers(self._arch(arch_id), arch_id).get(layer_id)
        if not isinstance(layer, Map):
            raise SchemaError(f"architecture {arch_id!r} has no layer {layer_id!r}")
        return layer


def _layers(arch: Map, arch_id: str) -> Map:
    return sub_map(arch, "layers", f"architecture {arch_id!r}")


def _edges(arch: Map, arch_id: str) -> Map:
    return sub_map(arch, "edges", f"architecture {arch_id!r}")
