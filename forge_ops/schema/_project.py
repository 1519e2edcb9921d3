"""Typed view and editing helpers for a project document."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from pycrdt import Doc, Map, Text

from forge_ops.input_shape import is_input_shape

from . import _read as r
from ._ids import new_id, now_iso
from ._plain import check_json
from ._read import Reader, SchemaError, SchemaWarning
from ._restore import PROJECT_LAYOUT, set_text, sync_map
from ._types import (
    PROJECT_ROOTS,
    SCHEMA_VERSION,
    ArchEdge,
    Architecture,
    ArchLayer,
    Artifact,
    Edge,
    ExecutionSummary,
    JobStatus,
    Layer,
    Node,
    Operation,
    Pipeline,
    Project,
    ProjectMeta,
)

_NAMED = ("operations", "pipelines", "layers", "architectures")


class ProjectDoc:
    """A project document: root maps plus helpers that each change it in one transaction.

    Reading goes through :meth:`to_plain`, which validates every entry: content this reader
    does not understand is skipped and reported in :attr:`warnings` (and logged).
    """

    def __init__(self, doc: Doc | None = None) -> None:
        self.doc = doc if doc is not None else Doc()
        self.meta = self.doc.get("meta", type=Map)
        self.operations = self.doc.get("operations", type=Map)
        self.pipelines = self.doc.get("pipelines", type=Map)
        self.layers = self.doc.get("layers", type=Map)
        self.architectures = self.doc.get("architectures", type=Map)
        self.executions = self.doc.get("executions", type=Map)
        self.artifacts = self.doc.get("artifacts", type=Map)
        self.warnings: list[SchemaWarning] = []

    # ----- construction -------------------------------------------------------------------

    @classmethod
    def create(cls, name: str, doc: Doc | None = None) -> ProjectDoc:
        """Start a new project document named ``name`` (writes ``meta``)."""
        project = cls(doc)
        with project.doc.transaction():
            project.meta["name"] = _name(name, "project")
            project.meta["schema_version"] = SCHEMA_VERSION
            project.meta["created"] = now_iso()
        return project

    @classmethod
    def from_plain(cls, plain: Mapping[str, Any], doc: Doc | None = None) -> ProjectDoc:
        """Build a document from a plain snapshot (as :meth:`to_plain` returns), ids kept."""
        project = cls(doc)
        with project.doc.transaction():
            meta = plain.get("meta", {})
            project.meta["name"] = str(meta.get("name", ""))
            project.meta["schema_version"] = int(meta.get("schema_version", SCHEMA_VERSION))
            project.meta["created"] = str(meta.get("created", now_iso()))
            for op_id, op in plain.get("operations", {}).items():
                project.add_operation(
                    op["name"], op.get("code", ""), op.get("builtin", False), op_id=op_id
                )
            for layer_id, layer in plain.get("layers", {}).items():
                project.add_layer(layer["name"], layer.get("code", ""), layer_id=layer_id)
            for pid, pipe in plain.get("pipelines", {}).items():
                project.add_pipeline(pipe["name"], pipeline_id=pid)
                for nid, node in pipe.get("nodes", {}).items():
                    project.add_node(
                        pid,
                        node["operation"],
                        node.get("name"),
                        attributes=node.get("attributes"),
                        references=node.get("references"),
                        settings=node.get("settings"),
                        node_id=nid,
                    )
                for eid, edge in pipe.get("edges", {}).items():
                    project.connect(
                        pid,
                        edge["src"],
                        edge["src_port"],
                        edge["dst"],
                        edge["dst_port"],
                        edge_id=eid,
                    )
            for aid, arch in plain.get("architectures", {}).items():
                project.add_architecture(arch["name"], arch.get("input_shape"), arch_id=aid)
                for lid, layer in arch.get("layers", {}).items():
                    project.add_arch_layer(
                        aid, layer["type"], layer.get("name"), layer.get("attributes"), layer_id=lid
                    )
                for eid, edge in arch.get("edges", {}).items():
                    project.connect_layers(
                        aid, edge["src"], edge["dst"], edge.get("index", 0), edge_id=eid
                    )
            for xid, ex in plain.get("executions", {}).items():
                project.executions[xid] = Map(dict(ex))
            for name, art in plain.get("artifacts", {}).items():
                project.artifacts[name] = Map(dict(art))
        return project

    # ----- reading ------------------------------------------------------------------------

    @property
    def name(self) -> str:
        value = self.meta.get("name")
        return value if isinstance(value, str) else ""

    @property
    def schema_version(self) -> int | None:
        """The schema version written in ``meta`` (None when absent or unreadable)."""
        try:
            return r.integer(self.meta["schema_version"]) if "schema_version" in self.meta else None
        except TypeError:
            return None

    def to_plain(self) -> Project:
        """Return the whole document as validated plain data; see :attr:`warnings`."""
        reader = Reader()
        plain = read_project(self.doc, reader, self)
        self.warnings = reader.warnings
        reader.log(f"project {plain['meta']['name']!r}")
        return plain

    def find(self, collection: str, name: str) -> str | None:
        """Return the id of the entry called ``name`` in a named collection, if any."""
        root = self._named_root(collection)
        for key, entry in root.items():
            if isinstance(entry, Map) and entry.get("name") == name:
                return str(key)
        return None

    def code_text(self, entry_id: str) -> Text:
        """The shared Text of an operation's or custom layer's code (for live editing)."""
        entry = self._find_entry(entry_id, ("operations", "layers"))
        code = entry.get("code")
        if not isinstance(code, Text):
            with self.doc.transaction():
                entry["code"] = code = Text(code if isinstance(code, str) else "")
        return code

    # ----- top-level entries --------------------------------------------------------------

    def add_operation(
        self, name: str, code: str = "", builtin: bool = False, *, op_id: str | None = None
    ) -> str:
        op_id = op_id or new_id()
        self.operations[op_id] = Map(
            {"name": _name(name, "operation"), "code": Text(code), "builtin": bool(builtin)}
        )
        return op_id

    def add_layer(self, name: str, code: str = "", *, layer_id: str | None = None) -> str:
        layer_id = layer_id or new_id()
        self.layers[layer_id] = Map({"name": _name(name, "layer"), "code": Text(code)})
        return layer_id

    def add_pipeline(self, name: str, *, pipeline_id: str | None = None) -> str:
        pipeline_id = pipeline_id or new_id()
        self.pipelines[pipeline_id] = Map(
            {"name": _name(name, "pipeline"), "nodes": Map(), "edges": Map()}
        )
        return pipeline_id

    def add_architecture(
        self,
        name: str,
        input_shape: list[int] | None = None,
        *,
        arch_id: str | None = None,
    ) -> str:
        arch_id = arch_id or new_id()
        self.architectures[arch_id] = Map(
            {
                "name": _name(name, "architecture"),
                "input_shape": _shape(input_shape),
                "layers": Map(),
                "edges": Map(),
            }
        )
        return arch_id

    def set_code(self, entry_id: str, code: str) -> None:
        """Replace an operation's or layer's code, touching only the span that changed."""
        text = self.code_text(entry_id)
        with self.doc.transaction():
            set_text(text, code)

    def restore(self, plain: Mapping[str, Any]) -> None:
        """Make the content equal to snapshot ``plain`` (one transaction, minimal changes).

        Content the snapshot lacks is deleted, including entries this reader cannot parse.
        """
        with self.doc.transaction():
            for root in PROJECT_ROOTS:
                sync_map(getattr(self, root), plain.get(root, {}), PROJECT_LAYOUT[root])

    def rename(self, entry_id: str, name: str) -> None:
        """Rename an operation, pipeline, custom layer or architecture."""
        entry = self._find_entry(entry_id, _NAMED)
        entry["name"] = _name(name, "entry")

    def remove(self, entry_id: str) -> None:
        """Delete an operation, pipeline, layer, architecture or execution summary."""
        for collection in (*_NAMED, "executions"):
            root: Map = getattr(self, collection)
            if entry_id in root:
                del root[entry_id]
                return
        raise SchemaError(f"no operation, pipeline, layer, architecture or execution {entry_id!r}")

    # ----- pipelines ----------------------------------------------------------------------

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
                "name": _name(name, "node"),
                "attributes": Map(_json_dict(attributes, "attributes")),
                "references": Map(_json_dict(references, "references")),
                "settings": Map(_json_dict(settings, "settings")),
            }
        )
        return node_id

    def rename_node(self, pipeline_id: str, node_id: str, name: str) -> None:
        self._node(pipeline_id, node_id)["name"] = _name(name, "node")

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
        """Set num_cpus, num_gpus or always_recompute of a node."""
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

    # ----- architectures ------------------------------------------------------------------

    def set_input_shape(self, arch_id: str, input_shape: list[int] | None) -> None:
        self._arch(arch_id)["input_shape"] = _shape(input_shape)

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
        _sub(arch, "layers", f"architecture {arch_id!r}")[layer_id] = Map(
            {
                "type": _name(layer_type, "layer type"),
                "name": _name(name or layer_type, "layer"),
                "attributes": Map(_json_dict(attributes, "attributes")),
            }
        )
        return layer_id

    def rename_arch_layer(self, arch_id: str, layer_id: str, name: str) -> None:
        self._arch_layer(arch_id, layer_id)["name"] = _name(name, "layer")

    def set_layer_attribute(self, arch_id: str, layer_id: str, key: str, value: Any) -> None:
        check_json(value, f"attribute {key!r}")
        layer = self._arch_layer(arch_id, layer_id)
        _sub(layer, "attributes", f"layer {layer_id!r}")[key] = value

    def remove_layer_attribute(self, arch_id: str, layer_id: str, key: str) -> None:
        attributes = _sub(self._arch_layer(arch_id, layer_id), "attributes", f"layer {layer_id!r}")
        if key in attributes:
            del attributes[key]

    def remove_arch_layer(self, arch_id: str, layer_id: str) -> None:
        """Delete a layer and every connection to or from it."""
        arch = self._arch(arch_id)
        layers = _sub(arch, "layers", f"architecture {arch_id!r}")
        if layer_id not in layers:
            raise SchemaError(f"architecture {arch_id!r} has no layer {layer_id!r}")
        with self.doc.transaction():
            edges = _sub(arch, "edges", f"architecture {arch_id!r}")
            for edge_id, edge in list(edges.items()):
                if isinstance(edge, Map) and layer_id in (edge.get("src"), edge.get("dst")):
                    del edges[edge_id]
            del layers[layer_id]

    def connect_layers(
        self, arch_id: str, src: str, dst: str, index: int = 0, *, edge_id: str | None = None
    ) -> str:
        """Feed layer ``src``'s output into input position ``index`` of layer ``dst``."""
        arch = self._arch(arch_id)
        layers = _sub(arch, "layers", f"architecture {arch_id!r}")
        for layer in (src, dst):
            if layer not in layers:
                raise SchemaError(f"architecture {arch_id!r} has no layer {layer!r}")
        if not isinstance(index, int) or isinstance(index, bool) or index < 0:
            raise SchemaError(f"input index must be a non-negative integer, got {index!r}")
        edge_id = edge_id or new_id()
        _sub(arch, "edges", f"architecture {arch_id!r}")[edge_id] = Map(
            {"src": src, "dst": dst, "index": index}
        )
        return edge_id

    def disconnect_layers(self, arch_id: str, edge_id: str) -> None:
        edges = _sub(self._arch(arch_id), "edges", f"architecture {arch_id!r}")
        if edge_id not in edges:
            raise SchemaError(f"architecture {arch_id!r} has no connection {edge_id!r}")
        del edges[edge_id]

    # ----- executions and artifacts -------------------------------------------------------

    def record_execution(
        self,
        pipeline_id: str,
        commit: str | None,
        by: str | None,
        *,
        execution_id: str | None = None,
        status: str = JobStatus.QUEUED,
    ) -> str:
        """Add an execution summary (details live in the execution document)."""
        execution_id = execution_id or new_id()
        self.executions[execution_id] = Map(
            {
                "pipeline": pipeline_id,
                "commit": commit,
                "status": str(JobStatus(status)),
                "created": now_iso(),
                "by": by,
            }
        )
        return execution_id

    def set_execution_status(self, execution_id: str, status: str) -> None:
        entry = self.executions.get(execution_id)
        if not isinstance(entry, Map):
            raise SchemaError(f"no execution {execution_id!r}")
        entry["status"] = str(JobStatus(status))

    def record_artifact(
        self,
        name: str,
        hash: str,
        kind: str,
        *,
        shape: list[int] | None = None,
        dtype: str | None = None,
        nbytes: int = 0,
        produced_by: str | None = None,
    ) -> None:
        """Point the user-visible artifact ``name`` at stored content ``hash``."""
        self.artifacts[_name(name, "artifact")] = Map(
            {
                "hash": hash,
                "kind": kind,
                "shape": _shape(shape),
                "dtype": dtype,
                "bytes": int(nbytes),
                "produced_by": produced_by,
                "created": now_iso(),
            }
        )

    # ----- internals ----------------------------------------------------------------------

    def _named_root(self, collection: str) -> Map:
        if collection not in PROJECT_ROOTS or collection == "meta":
            raise SchemaError(f"unknown collection {collection!r}; use one of {_NAMED}")
        return cast(Map, getattr(self, collection))

    def _find_entry(self, entry_id: str, collections: tuple[str, ...]) -> Map:
        for collection in collections:
            entry = getattr(self, collection).get(entry_id)
            if isinstance(entry, Map):
                return entry
        raise SchemaError(f"no {' or '.join(c[:-1] for c in collections)} with id {entry_id!r}")

    def _pipeline(self, pipeline_id: str) -> Map:
        return self._find_entry(pipeline_id, ("pipelines",))

    def _arch(self, arch_id: str) -> Map:
        return self._find_entry(arch_id, ("architectures",))

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
            node[key] = sub = Map(_json_dict(sub if isinstance(sub, dict) else None, key))
        return sub

    def _arch_layer(self, arch_id: str, layer_id: str) -> Map:
        layer = _sub(self._arch(arch_id), "layers", f"architecture {arch_id!r}").get(layer_id)
        if not isinstance(layer, Map):
            raise SchemaError(f"architecture {arch_id!r} has no layer {layer_id!r}")
        return layer


# ----- helpers ------------------------------------------------------------------------------


def _name(name: Any, what: str) -> str:
    if not isinstance(name, str) or not name.strip():
        raise SchemaError(f"{what} name must be a non-empty string, got {name!r}")
    return name


def _shape(shape: Any) -> list[int] | None:
    if shape is None:
        return None
    if not is_input_shape(shape):
        raise SchemaError(f"shape must be a list of positive integers, got {shape!r}")
    return list(shape)


def _json_dict(values: Mapping[str, Any] | None, what: str) -> dict[str, Any]:
    out = dict(values or {})
    check_json(out, what)
    return out


def _sub(entry: Map, key: str, where: str) -> Map:
    sub = entry.get(key)
    if not isinstance(sub, Map):
        raise SchemaError(f"{where} is malformed: its {key!r} is not a map")
    return sub


def _nodes(pipeline: Map, pipeline_id: str) -> Map:
    return _sub(pipeline, "nodes", f"pipeline {pipeline_id!r}")


def _edges(pipeline: Map, pipeline_id: str) -> Map:
    return _sub(pipeline, "edges", f"pipeline {pipeline_id!r}")


# ----- validated reading --------------------------------------------------------------------


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


def read_project(doc: Doc, reader: Reader, view: ProjectDoc | None = None) -> Project:
    """Read a project document into validated plain data, warning about what is skipped."""
    view = view or ProjectDoc(doc)
    meta_fields = dict(view.meta.items())
    version = view.schema_version
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
    return Project(
        meta=meta,
        operations=operations,
        pipelines=pipelines,
        layers=layers,
        architectures=architectures,
        executions=executions,
        artifacts=artifacts,
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


def to_plain(doc: Doc) -> Project:
    """Plain, validated snapshot of a project document (warnings are logged)."""
    return ProjectDoc(doc).to_plain()
