"""Architecture plain data: validation, graph order and the package's errors.

An architecture is plain JSON data (as in the project document)::

    {"name": "VGG", "input_shape": [1, 3, 32, 32] | None,
     "layers": {id: {"type": str, "name": str, "attributes": {...}}},
     "edges": {id: {"src": layer id, "dst": layer id, "index": input position at dst}}}

Special layer types mark the graph's boundary:

- ``"Input"``: a source; attributes ``index`` (position among ``forward``'s arguments,
  default 0) and ``shape`` (list of ints; the first input defaults to the architecture's
  ``input_shape``). Its name is the ``forward`` argument's name.
- ``"Output"``: a sink with exactly one incoming edge; attribute ``index`` orders several
  outputs (``forward`` then returns a tuple).
- ``"Parameter"`` / ``"Buffer"``: a source holding a tensor the model owns (a class token, a
  position embedding, an index table); see :mod:`._params`.

A functional op that creates a tensor (``call`` of ``torch.zeros``) may also have no inputs.

Every other type is a ``torch.nn`` class name (see :mod:`.catalogue`), a custom layer's class
name, or a functional op (see :mod:`._functional`). An attribute value may itself be a layer,
written ``{"type": ..., "attributes": {...}}``, or a list of such layers.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from forge_ops.arch.naming import identifier
from forge_ops.graph_order import find_cycle

INPUT = "Input"
OUTPUT = "Output"
PARAMETER = "Parameter"
BUFFER = "Buffer"
TENSOR_NODES = frozenset({PARAMETER, BUFFER})


class ArchitectureError(ValueError):
    """The architecture's plain data is malformed; the message says what to fix.

    ``layer_id`` names the layer at fault when there is one, so an editor can flag it.
    """

    def __init__(self, message: str = "", *, layer_id: str | None = None) -> None:
        super().__init__(message)
        self.layer_id = layer_id


@dataclass(frozen=True)
class Node:
    """One layer of a validated architecture, with its inputs in position order."""

    id: str
    type: str
    name: str
    attributes: dict[str, Any]
    inputs: tuple[str, ...]
    ident: str  # a unique Python identifier derived from the name


class LayerRuntimeError(RuntimeError):
    """A layer failed while running; carries the node and the inputs it got."""

    def __init__(self, node: Node, inputs: list[Any], cause: BaseException,
                 hint: str = "") -> None:
        self.node = node
        self.inputs = inputs
        self.cause = cause
        super().__init__(f"layer {node.name!r} ({node.type}) failed: {cause}"
                         + (f". {hint}" if hint else ""))


@dataclass
class Graph:
    """A validated architecture: nodes in a deterministic topological order."""

    name: str
    input_shape: list[int] | None
    nodes: list[Node]
    by_id: dict[str, Node] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.by_id = {node.id: node for node in self.nodes}

    @property
    def inputs(self) -> list[Node]:
        """Input nodes ordered by their ``index`` attribute."""
        found = [n for n in self.nodes if n.type == INPUT]
        return sorted(found, key=lambda n: (int(n.attributes.get("index", 0)), n.ident))

    @property
    def outputs(self) -> list[Node]:
        """Output nodes ordered by their ``index`` attribute."""
        found = [n for n in self.nodes if n.type == OUTPUT]
        return sorted(found, key=lambda n: (int(n.attributes.get("index", 0)), n.ident))


def is_layer_value(value: Any) -> bool:
    """True when an attribute value denotes a layer (``{"type": ..., "attributes": ...}``)."""
    return (
        isinstance(value, Mapping)
        and isinstance(value.get("type"), str)
        and set(value) <= {"type", "attributes", "name"}
    )


def _label(layer_id: str, layer: Mapping[str, Any]) -> str:
    name = layer.get("name") or layer_id
    return f"layer {name!r} ({layer.get('type', '?')})"


def graph_of(arch: Mapping[str, Any]) -> Graph:
    """Validate an architecture's plain data and order its layers.

    Raises ArchitectureError naming the layer or edge at fault.
    """
    layers = arch.get("layers")
    edges = arch.get("edges") or {}
    if not isinstance(layers, Mapping) or not layers:
        raise ArchitectureError("the architecture has no layers; add an Input and an Output")
    if not isinstance(edges, Mapping):
        raise ArchitectureError("the architecture's 'edges' must be a map of id -> edge")
    input_shape = arch.get("input_shape")
    # Reading stays as lenient as it always was (documents written before the one input-shape
    # rule may hold []); editing refuses what forge_ops.input_shape refuses.
    if input_shape is not None and (
        not isinstance(input_shape, list | tuple)
        or not all(isinstance(d, int) and d > 0 for d in input_shape)
    ):
        raise ArchitectureError(
            f"input_shape must be a list of positive ints such as [1, 3, 32, 32], "
            f"got {input_shape!r}"
        )
    for layer_id, layer in layers.items():
        if not isinstance(layer, Mapping) or not isinstance(layer.get("type"), str):
            raise ArchitectureError(f"layer {layer_id!r} needs a 'type' (a layer class name)")
        attributes = layer.get("attributes") or {}
        if not isinstance(attributes, Mapping):
            raise ArchitectureError(
                f"{_label(layer_id, layer)}: attributes must be a map", layer_id=layer_id
            )

    incoming: dict[str, dict[int, str]] = {layer_id: {} for layer_id in layers}
    for edge_id, edge in edges.items():
        src, dst = edge.get("src"), edge.get("dst")
        if src not in layers or dst not in layers:
            missing = src if src not in layers else dst
            raise ArchitectureError(
                f"edge {edge_id!r} refers to a missing layer {missing!r}; delete the edge"
            )
        index = edge.get("index", 0)
        if not isinstance(index, int) or index < 0:
            raise ArchitectureError(f"edge {edge_id!r}: index must be an int >= 0, got {index!r}")
        if index in incoming[dst]:
            raise ArchitectureError(
                f"{_label(dst, layers[dst])} has two edges into input {index}; "
                "give each incoming edge its own index",
                layer_id=dst,
            )
        incoming[dst][index] = src

    idents: dict[str, str] = {}
    taken: set[str] = set()
    # Stable identifiers: assign in order of (name, id) so the result is independent of
    # the map's iteration order.
    for layer_id in sorted(layers, key=lambda i: (str(layers[i].get("name") or i), i)):
        layer = layers[layer_id]
        base = identifier(str(layer.get("name") or layer["type"].lower()))
        ident, n = base, 1
        while ident in taken:
            n += 1
            ident = f"{base}_{n}"
        taken.add(ident)
        idents[layer_id] = ident

    nodes: dict[str, Node] = {}
    for layer_id, layer in layers.items():
        slots = incoming[layer_id]
        if sorted(slots) != list(range(len(slots))):
            raise ArchitectureError(
                f"{_label(layer_id, layer)} has inputs at positions {sorted(slots)}; "
                "input positions must be 0, 1, 2, ... without gaps",
                layer_id=layer_id,
            )
        kind = layer["type"]
        if kind == INPUT and slots:
            raise ArchitectureError(
                f"{_label(layer_id, layer)} is an Input; remove its inputs", layer_id=layer_id
            )
        if kind == OUTPUT and len(slots) != 1:
            raise ArchitectureError(
                f"{_label(layer_id, layer)} needs exactly one incoming edge, has {len(slots)}",
                layer_id=layer_id,
            )
        if kind != INPUT and not slots and not _may_have_no_inputs(kind):
            raise ArchitectureError(
                f"{_label(layer_id, layer)} has no input; connect it or delete it",
                layer_id=layer_id,
            )
        nodes[layer_id] = Node(
            id=layer_id,
            type=kind,
            name=str(layer.get("name") or idents[layer_id]),
            attributes=dict(layer.get("attributes") or {}),
            inputs=tuple(slots[i] for i in range(len(slots))),
            ident=idents[layer_id],
        )
    if not any(n.type == INPUT for n in nodes.values()):
        raise ArchitectureError("the architecture has no Input layer; add one")
    if not any(n.type == OUTPUT for n in nodes.values()):
        raise ArchitectureError("the architecture has no Output layer; add one")
    ordered = _topological(nodes)
    graph = Graph(
        name=str(arch.get("name") or "Network"),
        input_shape=list(input_shape) if input_shape is not None else None,
        nodes=ordered,
    )
    for node in graph.inputs:
        shape = node.attributes.get("shape")
        if shape is not None and not (
            isinstance(shape, list) and all(isinstance(d, int) for d in shape)
        ):
            raise ArchitectureError(f"Input {node.name!r}: shape must be a list of ints")
    return graph


def _may_have_no_inputs(kind: str) -> bool:
    """Sources other than Input: tensors the model owns, a layer's own tensors
    (``layer_tensor``) and calls that create tensors (``call`` of ``torch.zeros``)."""
    return kind in TENSOR_NODES or kind in {"call", "layer_tensor"}


def _topological(nodes: dict[str, Node]) -> list[Node]:
    """Kahn's algorithm preferring to continue the chain just emitted, so exported code
    reads like hand-written ``forward`` code; ties are broken by identifier, so the order
    never depends on the map's iteration order."""
    pending = {node_id: len(set(node.inputs)) for node_id, node in nodes.items()}
    consumers: dict[str, set[str]] = {node_id: set() for node_id in nodes}
    for node in nodes.values():
        for src in node.inputs:
            consumers[src].add(node.id)
    position: dict[str, int] = {}

    def key(node_id: str) -> tuple[int, str, str]:
        latest = max((position[i] for i in nodes[node_id].inputs), default=-1)
        return (-latest, nodes[node_id].ident, node_id)

    ready = [key(i) for i, count in pending.items() if count == 0]
    heapq.heapify(ready)
    ordered: list[Node] = []
    while ready:
        *_, node_id = heapq.heappop(ready)
        position[node_id] = len(ordered)
        ordered.append(nodes[node_id])
        for consumer in consumers[node_id]:
            pending[consumer] -= 1
            if pending[consumer] == 0:
                heapq.heappush(ready, key(consumer))
    if len(ordered) != len(nodes):
        left = {i for i, count in pending.items() if count > 0}
        cycle = find_cycle({i: set(nodes[i].inputs) & left for i in left}) or sorted(left)
        path = " -> ".join(nodes[i].name for i in cycle)
        raise ArchitectureError(f"the architecture has a cycle ({path}); remove one of its edges")
    return ordered


def canonical(arch: Mapping[str, Any]) -> list[tuple[Any, ...]]:
    """An id-free description of an architecture, for comparing graphs.

    Each layer becomes (identifier, type, attributes, input identifiers) in graph order.
    """
    graph = graph_of(arch)
    return [
        (
            node.ident,
            node.type,
            sorted(node.attributes.items()),
            tuple(graph.by_id[i].ident for i in node.inputs),
        )
        for node in graph.nodes
    ]
