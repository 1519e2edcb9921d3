"""Validating reader of a project document: every entry checked against the schema, what this
reader cannot understand skipped and reported as a warning (never an exception)."""

from __future__ import annotations

from typing import Any

from pycrdt import Doc, Map

from . import _read as r
from ._read import Reader
from ._roots import ProjectRoots
from ._types import (
    SCHEMA_VERSION,
    ArchEdge,
    Architecture,
    ArchLayer,
    Artifact,
    Edge,
    ExecutionSummary,
    Layer,
    Node,
    Operation,
    Pipeline,
    Project,
    ProjectMeta,
    Sweep,
)


def read_schema_version(meta: Map) -> int | None:
    """The schema version written in ``meta`` (None when absent or unreadable)."""
    try:
        return r.integer(meta["schema_version"]) if "schema_version" in meta else None
    except TypeError:
        return None


def _operation(f: dict[str, Any], path: str) -> Operation:
    return Operation(
        name=r.get(f, "name", r.string),
        code=r.get(f, "code", r.text),
        builtin=r.get(f, "builtin", r.boolean, False),
    )


def _layer(f: dict[str, Any], path: str) -> Layer:
    return Layer(name=r.get(f, "name", r.string), code=r.get(f, "code", r.text))


def _edge(f: dict[str, Any], path: str) -> Edge:
    return Edge(
        src=r.get(f, "src", r.string),
        src_port=r.get(f, "src_port", r.string),
        dst=r.get(f, "dst", r.string),
        dst_port=r.get(f, "dst_port", r.string),
    )


def _arch_layer(f: dict[str, Any], path: str) -> ArchLayer:
    layer_type = r.get(f, "type", r.string)
    return ArchLayer(
        type=layer_type,
        name=r.get(f, "name", r.string, layer_type),
        attributes=r.get(f, "attributes", r.json_map, {}),
    )


def _arch_edge(f: dict[str, Any], path: str) -> ArchEdge:
    return ArchEdge(
        src=r.get(f, "src", r.string),
        dst=r.get(f, "dst", r.string),
        index=r.get(f, "index", r.integer, 0),
    )


def _execution(f: dict[str, Any], path: str) -> ExecutionSummary:
    return ExecutionSummary(
        pipeline=r.get(f, "pipeline", r.string),
        commit=r.get(f, "commit", r.opt_string, None),
        status=r.get(f, "status", r.string),
        created=r.get(f, "created", r.string, ""),
        by=r.get(f, "by", r.opt_string, None),
    )


def _artifact(f: dict[str, Any], path: str) -> Artifact:
    return Artifact(
        hash=r.get(f, "hash", r.string),
        kind=r.get(f, "kind", r.string),
        shape=r.get(f, "shape", r.opt_int_list, None),
        dtype=r.get(f, "dtype", r.opt_string, None),
        bytes=r.get(f, "bytes", r.integer, 0),
        produced_by=r.get(f, "produced_by", r.opt_string, None),
        created=r.get(f, "created", r.string, ""),
    )


def _sweep(f: dict[str, Any], path: str) -> Sweep:
    return Sweep(
        name=r.get(f, "name", r.string),
        pipeline=r.get(f, "pipeline", r.string),
        parameters=r.get(f, "parameters", r.json_map, {}),
        objective=r.get(f, "objective", r.json_map, {}),
        budget=r.get(f, "budget", r.json_map, {}),
        sampler=r.get(f, "sampler", r.json_map, {}),
        pruner=r.get(f, "pruner", r.json_map, {}),
    )


def read_project(doc: Doc, reader: Reader, view: ProjectRoots | None = None) -> Project:
    """Read a project document into validated plain data, warning about what is skipped
    (``view``: the document's root maps, when the caller already holds them)."""
    view = view or ProjectRoots(doc)
    meta_fields = dict(view.meta.items())
    version = read_schema_version(view.meta)
    if version is None:
        if meta_fields:
            reader.warn("meta/schema_version", "missing or not an integer; read as version 1")
        version = SCHEMA_VERSION
    elif version > SCHEMA_VERSION:
        reader.warn(
            "meta/schema_version",
            f"document uses schema version {version}, newer than this reader "
            f"({SCHEMA_VERSION}); content it does not understand is skipped — upgrade Forge",
        )
    try:
        name = r.get(meta_fields, "name", r.string, "")
        created = r.get(meta_fields, "created", r.string, "")
    except r.Malformed as exc:
        reader.warn("meta", str(exc))
        name, created = "", ""
    meta = ProjectMeta(name=name, schema_version=version, created=created)

    with doc.transaction():
        operations = reader.build(view.operations, "operations", _operation)
        layers = reader.build(view.layers, "layers", _layer)
        pipelines = reader.build(
            view.pipelines, "pipelines", lambda f, p: _pipeline(reader, operations, f, p)
        )
        architectures = reader.build(
            view.architectures, "architectures", lambda f, p: _architecture(reader, f, p)
        )
        executions = reader.build(view.executions, "executions", _execution)
        artifacts = reader.build(view.artifacts, "artifacts", _artifact)
        sweeps = reader.build(view.sweeps, "sweeps", _sweep)
    return Project(
        meta=meta,
        operations=operations,
        pipelines=pipelines,
        layers=layers,
        architectures=architectures,
        executions=executions,
        artifacts=artifacts,
        sweeps=sweeps,
    )


def _pipeline(
    reader: Reader, operations: dict[str, Operation], f: dict[str, Any], path: str
) -> Pipeline:
    name = r.get(f, "name", r.string)

    def node(nf: dict[str, Any], npath: str) -> Node:
        op_id = r.get(nf, "operation", r.string)
        default_name = operations[op_id]["name"] if op_id in operations else op_id
        return Node(
            operation=op_id,
            name=r.get(nf, "name", r.string, default_name),
            attributes=r.get(nf, "attributes", r.json_map, {}),
            references=r.get(nf, "references", r.json_map, {}),
            settings=r.get(nf, "settings", r.json_map, {}),
        )

    nodes = reader.build(f.get("nodes"), f"{path}/nodes", node)
    edges = reader.build(f.get("edges"), f"{path}/edges", _edge)
    for edge_id, edge in list(edges.items()):
        missing = [n for n in (edge["src"], edge["dst"]) if n not in nodes]
        if missing:
            reader.warn(f"{path}/edges/{edge_id}", f"connects missing node {missing[0]!r}; skipped")
            del edges[edge_id]
    return Pipeline(name=name, nodes=nodes, edges=edges)


def _architecture(reader: Reader, f: dict[str, Any], path: str) -> Architecture:
    name = r.get(f, "name", r.string)
    input_shape = r.get(f, "input_shape", r.opt_int_list, None)
    layers = reader.build(f.get("layers"), f"{path}/layers", _arch_layer)
    edges = reader.build(f.get("edges"), f"{path}/edges", _arch_edge)
    for edge_id, edge in list(edges.items()):
        missing = [n for n in (edge["src"], edge["dst"]) if n not in layers]
        if missing:
            reader.warn(
                f"{path}/edges/{edge_id}", f"connects missing layer {missing[0]!r}; skipped"
            )
            del edges[edge_id]
    return Architecture(name=name, input_shape=input_shape, layers=layers, edges=edges)

