"""Editing a pipeline of a project document: its nodes, their values and the connections."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pycrdt import Map

from ._ids import new_id
from ._plain import check_json
from ._read import SchemaError
from ._roots import ProjectRoots, checked_name, json_dict, sub_map


class PipelineEdits(ProjectRoots):
    """The pipeline part of :class:`ProjectDoc`; each helper changes the document once."""

    def add_node(
        self,
        pipeline_id: str,
        operation_id: str,
        name: str | None = None,
        *,
        attributes: Mapping[str, Any] | None = None,
        references: Mapping[str, Any] | None = None,
        settings: Mapping[str, Any] | None = None,
        node_id: str | None = None,
    ) -> str:
        """Add a node running ``operation_id``; its display name defaults to the operation's."""
        pipeline = self._pipeline(pipeline_id)
        if name is None:
            op = self.operations.get(operation_id)
            name = op.get("name") if isinstance(op, Map) else None
            if not isinstance(name, str):
                raise SchemaError(f"no operation {operation_id!r}; add it first or pass a name")
        node_id = node_id or new_id()
        _nodes(pipeline, pipeline_id)[node_id] = Map(
            {
                "operation": operation_id,
                "name": checked_name(name, "node"),
                "attributes": Map(json_dict(attributes, "attributes")),
                "references": Map(json_dict(references, "references")),
                "settings": Map(json_dict(settings, "settings")),
            }
        )
        return node_id

    def rename_node(self, pipeline_id: str, node_id: str, name: str) -> None:
        self._node(pipeline_id, node_id)["name"] = checked_name(name, "node")

    def set_attribute(self, pipeline_id: str, node_id: str, key: str, value: Any) -> None:
        check_json(value, f"attribute {key!r}")
        self._node_map(pipeline_id, node_id, "attributes")[key] = value

    def remove_attribute(self, pipeline_id: str, node_id: str, key: str) -> None:
        """Drop a node's attribute override so the operation's default applies again."""
        attributes = self._node_map(pipeline_id, node_id, "attributes")
        if key in attributes:
            del attributes[key]

    def set_reference(self, pipeline_id: str, node_id: str, key: str, value: Any) -> None:
        check_json(value, f"reference {key!r}")
        self._node_map(pipeline_id, node_id, "references")[key] = value

    def set_setting(self, pipeline_id: str, node_id: str, key: str, value: Any) -> None:
        """Set num_cpus, num_gpus, always_recompute or network of a node."""
        check_json(value, f"setting {key!r}")
        self._node_map(pipeline_id, node_id, "settings")[key] = value

    def remove_node(self, pipeline_id: str, node_id: str) -> None:
        """Delete a node and every connection to or from it."""
        pipeline = self._pipeline(pipeline_id)
        nodes = _nodes(pipeline, pipeline_id)
        if node_id not in nodes:
            raise SchemaError(f"pipeline {pipeline_id!r} has no node {node_id!r}")
        with self.doc.transaction():
            edges = _edges(pipeline, pipeline_id)
            for edge_id, edge in list(edges.items()):
                if isinstance(edge, Map) and node_id in (edge.get("src"), edge.get("dst")):
                    del edges[edge_id]
            del nodes[node_id]

    def connect(
        self,
        pipeline_id: str,
        src: str,
        src_port: str,
        dst: str,
        dst_port: str,
        *,
        edge_id: str | None = None,
    ) -> str:
        """Connect output ``src.src_port`` to input ``dst.dst_port``; returns the edge id."""
        pipeline = self._pipeline(pipeline_id)
        nodes = _nodes(pipeline, pipeline_id)
        for node in (src, dst):
            if node not in nodes:
                raise SchemaError(f"pipeline {pipeline_id!r} has no node {node!r}")
        edge_id = edge_id or new_id()
        _edges(pipeline, pipeline_id)[edge_id] = Map(
            {"src": src, "src_port": src_port, "dst": dst, "dst_port": dst_port}
        )
        return edge_id

    def disconnect(self, pipeline_id: str, edge_id: str) -> None:
        edges = _edges(self._pipeline(pipeline_id), pipeline_id)
        if edge_id not in edges:
            raise SchemaError(f"pipeline {pipeline_id!r} has no connection {edge_id!r}")
        del edges[edge_id]

    def _pipeline(self, pipeline_id: str) -> Map:
        return self._find_entry(pipeline_id, ("pipelines",))

    def _node(self, pipeline_id: str, node_id: str) -> Map:
        node = _nodes(self._pipeline(pipeline_id), pipeline_id).get(node_id)
        if not isinstance(node, Map):
            raise SchemaError(f"pipeline {pipeline_id!r} has no node {node_id!r}")
        return node

    def _node_map(self, pipeline_id: str, node_id: str, key: str) -> Map:
        node = self._node(pipeline_id, node_id)
        sub = node.get(key)
        if not isinstance(sub, Map):
            # Repair a node written without this map (e.g. by an older or simpler peer).
            node[key] = sub = Map(json_dict(sub if isinstance(sub, dict) else None, key))
        return sub


def _nodes(pipeline: Map, pipeline_id: str) -> Map:
    return sub_map(pipeline, "nodes", f"pipeline {pipeline_id!r}")


def _edges(pipeline: Map, pipeline_id: str) -> Map:
    return sub_map(pipeline, "edges", f"pipeline {pipeline_id!r}")
