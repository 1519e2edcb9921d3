"""Turn a project snapshot into the renderer's description of a pipeline or an architecture."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from forge_ops.operations import InterfaceError, OperationInterface, parse_interface
from forge_ops.schema import Project
from forge_tui.app._values import show_value
from forge_tui.render import EdgeSpec, GraphSpec, Mark, NodeSpec, Status


def interface_of(project: Project, op_id: str) -> OperationInterface | InterfaceError | None:
    op = project["operations"].get(op_id)
    if op is None:
        return None
    try:
        return parse_interface(op["code"])
    except InterfaceError as exc:
        return exc


def entry_name(project: Project, entry_id: str) -> str:
    for collection in ("architectures", "layers", "operations", "pipelines"):
        entry = project[collection].get(entry_id)  # type: ignore[literal-required]
        if entry is not None:
            return str(entry["name"])
    return entry_id


def pipeline_spec(
    project: Project,
    pipeline_id: str,
    *,
    selected: str | None = None,
    marks: Mapping[str, Sequence[Mark]] | None = None,
    statuses: Mapping[str, Status] | None = None,
) -> GraphSpec:
    pipeline = project["pipelines"].get(pipeline_id)
    if pipeline is None:
        return GraphSpec()
    marks = marks or {}
    statuses = statuses or {}
    nodes = []
    # Ordered by id: every client lays the graph out the same, whatever the map's order.
    for node_id, node in sorted(pipeline["nodes"].items()):
        iface = interface_of(project, node["operation"])
        op = project["operations"].get(node["operation"])
        lines: list[str] = []
        inputs: tuple[str, ...] = ()
        outputs: tuple[str, ...] = ()
        if isinstance(iface, OperationInterface):
            inputs = tuple(p.name for p in iface.inputs)
            outputs = tuple(p.name for p in iface.outputs)
            for attr in iface.attributes:
                value = node["attributes"].get(attr.name, attr.default)
                lines.append(f"{attr.name}={show_value(value)}")
            for ref in iface.references:
                target = node["references"].get(ref.name, ref.default)
                shown = entry_name(project, target) if isinstance(target, str) else "—"
                lines.append(f"{ref.name}→{shown}")
        elif isinstance(iface, InterfaceError):
            lines.append(f"⚠ {iface.message}")
        elif op is None:
            lines.append("⚠ operation missing")
        nodes.append(
            NodeSpec(
                id=node_id,
                title=node["name"],
                subtitle=op["name"] if op else node["operation"],
                lines=tuple(lines),
                inputs=inputs,
                outputs=outputs,
                selected=node_id == selected,
                marks=tuple(marks.get(node_id, ())),
                status=statuses.get(node_id),
            )
        )
    edges = tuple(
        EdgeSpec(e["src"], e["src_port"], e["dst"], e["dst_port"])
        for _, e in sorted(pipeline["edges"].items())
    )
    return GraphSpec(tuple(nodes), edges)


def format_params(count: int) -> str:
    for unit, size in (("M", 1_000_000), ("k", 1_000)):
        if count >= size:
            return f"{count / size:.1f}{unit} params"
    return f"{count} params"


_TENSOR_NODES = ("Parameter", "Buffer")
_INIT_DETAIL = ("value", "mean", "std", "low", "high")


def layer_lines(layer: Mapping[str, Any]) -> tuple[str, ...]:
    """A box's lines: attributes as ``key=value``; a Parameter or Buffer as its shape, dtype
    and initialiser (never its stored values)."""
    attributes = layer["attributes"]
    if layer["type"] not in _TENSOR_NODES:
        return tuple(f"{k}={show_value(v)}" for k, v in attributes.items())
    shape = attributes.get("shape") or []
    lines = ["×".join(str(d) for d in shape) if shape else "scalar"]
    if attributes.get("dtype", "float32") != "float32":
        lines.append(str(attributes["dtype"]))
    init = str(attributes.get("init", "zeros"))
    detail = ", ".join(f"{k}={attributes[k]}" for k in _INIT_DETAIL if k in attributes)
    lines.append(f"{init}({detail})" if detail else init)
    return tuple(lines)


def architecture_spec(
    project: Project,
    arch_id: str,
    *,
    selected: str | None = None,
    marks: Mapping[str, Sequence[Mark]] | None = None,
    edge_shapes: Mapping[str, Any] | None = None,
    parameters: Mapping[str, int] | None = None,
    flagged: str | None = None,
) -> GraphSpec:
    """Layers as boxes; inputs numbered when a layer takes several; shapes on edges if known;
    the ``flagged`` layer (the one an error names) drawn as failed."""
    arch = project["architectures"].get(arch_id)
    if arch is None:
        return GraphSpec()
    marks = marks or {}
    edge_shapes = edge_shapes or {}
    parameters = parameters or {}
    fan_in: dict[str, int] = {}
    for e in arch["edges"].values():
        fan_in[e["dst"]] = fan_in.get(e["dst"], 0) + 1

    def port(layer: str, index: int) -> str:
        return str(index) if fan_in.get(layer, 0) > 1 else ""

    ports: dict[str, set[str]] = {}
    for e in arch["edges"].values():
        ports.setdefault(e["dst"], set()).add(port(e["dst"], e["index"]))
    nodes = []
    for layer_id, layer in sorted(arch["layers"].items()):
        nodes.append(
            NodeSpec(
                id=layer_id,
                title=layer["name"],
                subtitle=layer["type"],
                lines=layer_lines(layer),
                inputs=tuple(sorted(ports.get(layer_id, ()))),
                outputs=("",),
                extra=format_params(parameters[layer_id]) if layer_id in parameters else "",
                selected=layer_id == selected,
                marks=tuple(marks.get(layer_id, ())),
                status=Status.FAILED if layer_id == flagged else None,
            )
        )
    edges = []
    for edge_id, e in sorted(arch["edges"].items()):
        shape = edge_shapes.get(edge_id)
        label = "×".join(str(d) for d in shape) if isinstance(shape, list | tuple) else ""
        edges.append(EdgeSpec(e["src"], "", e["dst"], port(e["dst"], e["index"]), label))
    return GraphSpec(tuple(nodes), tuple(edges))
