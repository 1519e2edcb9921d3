"""Checking a layer's attributes and turning them into a constructor call.

Both :mod:`.build` (which instantiates the call) and :mod:`.export` (which writes it as source)
use :func:`layer_call`, so a built module and exported source construct the same layers.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from forge_ops.arch._functional import FUNCTIONAL_OPS, check_functional
from forge_ops.arch._model import (
    INPUT,
    OUTPUT,
    TENSOR_NODES,
    ArchitectureError,
    Graph,
    Node,
    is_layer_value,
)
from forge_ops.arch._op_base import DTYPES, check_value, is_dotted_path, is_identifier, refs_in
from forge_ops.arch._ops_table import is_safe_function
from forge_ops.arch._params import check_tensor_node
from forge_ops.arch.catalogue import LayerSpec, catalogue
from forge_ops.arch.custom import custom_layer_specs


@dataclass(frozen=True)
class LayerCall:
    """``type(*args, **kwargs)`` where values may be nested LayerCalls or lists of them."""

    type: str
    custom: bool
    args: list[Any] = field(default_factory=list)
    kwargs: dict[str, Any] = field(default_factory=dict)
    library: bool = False  # ``type`` is an import path (package.module.Class)


def is_library_type(type_name: str) -> bool:
    """A layer type naming a class by import path (``torchvision.ops.StochasticDepth``)."""
    return "." in type_name


def library_imports(calls: Iterable[LayerCall]) -> set[str]:
    """Modules to import for the library layers among calls (nested ones included)."""
    found: set[str] = set()

    def walk(value: Any) -> None:
        if isinstance(value, LayerCall):
            if value.library:
                found.add(value.type.rsplit(".", 1)[0])
            for v in [*value.args, *value.kwargs.values()]:
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)

    for call in calls:
        walk(call)
    return found


def custom_types(calls: Iterable[LayerCall]) -> set[str]:
    """Names of the custom layer classes used by calls, nested attributes included."""
    found: set[str] = set()

    def walk(value: Any) -> None:
        if isinstance(value, LayerCall):
            if value.custom:
                found.add(value.type)
            for v in [*value.args, *value.kwargs.values()]:
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)

    for call in calls:
        walk(call)
    return found


def _suggest(word: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def known_specs(custom: Mapping[str, LayerSpec]) -> dict[str, LayerSpec]:
    """Catalogue layers plus custom layers (custom names win)."""
    return {**catalogue(), **custom}


def used_types(graph: Graph) -> set[str]:
    """Every layer type a graph uses, layer-valued attributes included."""
    found: set[str] = set()

    def walk(value: Any) -> None:
        if is_layer_value(value):
            found.add(value["type"])
            for v in (value.get("attributes") or {}).values():
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)

    for node in graph.nodes:
        found.add(node.type)
        for v in node.attributes.values():
            walk(v)
    return found


def graph_specs(graph: Graph, custom_layers: Mapping[str, str]) -> dict[str, LayerSpec]:
    """Layer specs for a graph: the catalogue plus the custom layers it uses.

    Only used custom layers are parsed, so a broken unused one does not stop the others.
    """
    used = used_types(graph)
    custom = custom_layer_specs({k: v for k, v in custom_layers.items() if k in used})
    for name, spec in custom.items():
        base = catalogue().get(spec.base or "")
        if base is not None:
            custom[name] = replace(spec, attributes=base.attributes)
    return known_specs(custom)


_SIMPLE = {"int": (int,), "float": (int, float), "bool": (bool,), "str": (str,)}


def _type_ok(type_text: str, value: Any) -> bool:
    """A light check of a plain value against a readable annotation; unknown types pass."""
    if type_text in {"any", "Any"} or (value is None and "None" in type_text):
        return True
    parts = [p.strip() for p in re.split(r"\|(?![^\[]*\])", type_text)]
    for part in parts:
        if part in _SIMPLE:
            if isinstance(value, _SIMPLE[part]) and (part == "bool" or not isinstance(value, bool)):
                return True
        elif part.startswith(("tuple", "list", "Size", "Sequence", "collections.abc.Sequence")):
            if isinstance(value, list):
                return True
        elif part.startswith("Literal["):
            if repr(value) in part:
                return True
        elif part != "None":
            return True  # a type we do not model (Tensor, Callable, ...): let torch decide
    return False


def layer_call(
    label: str,
    type_name: str,
    attributes: Mapping[str, Any],
    specs: Mapping[str, LayerSpec],
    *,
    partial: bool = False,
) -> LayerCall:
    """Check attributes against the layer's spec and build its constructor call.

    ``partial``: unset required attributes are no error (an editor checks a layer while it is
    being filled in); the call is then complete only if none is missing.
    """
    spec = specs.get(type_name)
    if spec is None and is_library_type(type_name):
        return _library_call(label, type_name, attributes, specs)
    if spec is None:
        choices = [*specs, *FUNCTIONAL_OPS, INPUT, OUTPUT]
        raise ArchitectureError(
            f"{label} has unknown type {type_name!r}{_suggest(type_name, choices)}"
        )
    names = [a.name for a in spec.attributes]
    for key in attributes:
        if key not in names:
            raise ArchitectureError(
                f"{label}: {type_name} has no attribute {key!r}{_suggest(key, names)}"
                f" (attributes: {', '.join(names) or 'none'})"
            )
    args: list[Any] = []
    kwargs: dict[str, Any] = {}
    variadic_seen = skipped = False
    for attr in spec.attributes:
        if attr.name not in attributes:
            if attr.required and not partial:
                raise ArchitectureError(
                    f"{label}: set attribute {attr.name!r} of {type_name} ({attr.type})"
                )
            skipped = skipped or attr.required
            continue
        raw = attributes[attr.name]
        where = f"{label}, attribute {attr.name!r}"
        if is_layer_value(raw):
            value: Any = nested_call(where, raw, specs)
        elif isinstance(raw, list) and raw and any(is_layer_value(v) for v in raw):
            value = [nested_call(f"{where}[{i}]", v, specs) for i, v in enumerate(raw)]
        else:
            if not _type_ok(attr.type, raw):
                raise ArchitectureError(f"{where} must be {attr.type}, got {raw!r}")
            value = raw
        if attr.variadic:
            if not isinstance(value, list):
                raise ArchitectureError(f"{where} must be a list (it is spread as *{attr.name})")
            args.extend(value)
        elif (
            attr.required
            and not attr.keyword_only
            and not kwargs
            and not variadic_seen
            and not skipped
        ):
            args.append(value)  # required arguments positionally, as people write them
        else:
            kwargs[attr.name] = value
        variadic_seen = variadic_seen or attr.variadic
    return LayerCall(type=type_name, custom=spec.custom, args=args, kwargs=kwargs)


def _library_call(
    label: str, type_name: str, attributes: Mapping[str, Any], specs: Mapping[str, LayerSpec]
) -> LayerCall:
    """A class kept by import path: its attributes are its constructor's keyword arguments,
    checked by the class itself when the job builds it (its package is not imported here)."""
    if not is_dotted_path(type_name):
        raise ArchitectureError(f"{label}: {type_name!r} is not an import path (package.Class)")
    kwargs: dict[str, Any] = {}
    for key, raw in attributes.items():
        where = f"{label}, attribute {key!r}"
        if not is_identifier(key):
            raise ArchitectureError(f"{where}: an argument name must be an identifier")
        if is_layer_value(raw):
            kwargs[key] = nested_call(where, raw, specs)
        else:
            check_value(label, key, raw, 0)
            kwargs[key] = raw
    return LayerCall(type=type_name, custom=False, kwargs=kwargs, library=True)


def nested_call(where: str, value: Mapping[str, Any], specs: Mapping[str, LayerSpec]) -> LayerCall:
    """The call for an attribute that is itself a layer."""
    if value["type"] in FUNCTIONAL_OPS or value["type"] in {INPUT, OUTPUT}:
        raise ArchitectureError(
            f"{where}: {value['type']!r} cannot be used as a layer attribute; "
            "use a layer class (e.g. 'ReLU' rather than 'relu')"
        )
    return layer_call(where, value["type"], value.get("attributes") or {}, specs)


def check_graph(graph: Graph, specs: Mapping[str, LayerSpec]) -> dict[str, LayerCall]:
    """Check every node; return the constructor calls of module nodes by node id."""
    calls: dict[str, LayerCall] = {}
    for node in graph.nodes:
        label = f"layer {node.name!r} ({node.type})"
        if node.type in {INPUT, OUTPUT}:
            check_boundary(label, node)
            continue
        if node.type in TENSOR_NODES:
            check_tensor_node(label, node.type, node.attributes)
            continue
        op = FUNCTIONAL_OPS.get(node.type)
        try:
            if op is not None and node.type not in specs:
                check_functional(label, op, node.attributes, len(node.inputs))
                functional_attributes(node, graph)  # a layer_tensor's layer must exist
                continue
            attributes = dict(node.attributes)
            forward = attributes.pop("forward", None)
            if forward is not None:
                check_forward(label, forward, len(node.inputs))
            calls[node.id] = layer_call(label, node.type, attributes, specs)
        except ArchitectureError as exc:
            exc.layer_id = exc.layer_id or node.id  # so editors can flag the layer
            raise
    return calls


def check_boundary(label: str, node: Node) -> None:
    """An Input's or Output's attributes: ``index``, and for inputs ``shape``, ``dtype`` and
    ``range`` (the values a sample input takes, e.g. token ids ``[0, 30000]``)."""
    allowed = {"index", "shape", "dtype", "range"}
    unknown = set(node.attributes) - allowed
    if unknown:
        raise ArchitectureError(
            f"{label}: unknown attribute {sorted(unknown)[0]!r} "
            f"(allowed: {', '.join(sorted(allowed))})"
        )
    if node.attributes.get("dtype", "float32") not in DTYPES:
        raise ArchitectureError(f"{label}: dtype must be one of {', '.join(sorted(DTYPES))}")
    bounds = node.attributes.get("range")
    if bounds is not None and not (
        isinstance(bounds, list)
        and len(bounds) == 2
        and all(isinstance(b, int | float) and not isinstance(b, bool) for b in bounds)
    ):
        raise ArchitectureError(f"{label}: range must be [low, high], e.g. [0, 30000]")


def check_forward(label: str, forward: Any, inputs: int) -> None:
    """A layer's ``forward`` attribute: keyword arguments of its call (``need_weights``)."""
    if not isinstance(forward, Mapping):
        raise ArchitectureError(
            f"{label}: attribute 'forward' holds the call's keyword arguments, e.g. "
            "{'need_weights': false}"
        )
    check_value(label, "forward", dict(forward), inputs)


def forward_arguments(node: Node) -> tuple[list[int], dict[str, Any]]:
    """A layer node's primary input positions and its call's keyword arguments (raw)."""
    forward = node.attributes.get("forward") or {}
    referenced = set(refs_in(forward))
    positions = [i for i in range(len(node.inputs)) if i not in referenced]
    return positions, dict(forward)


# Names every functional expression may use without an import of its own.
BASE_MODULES = frozenset({"torch", "F", "nn", "math", "operator"})


def call_modules(graph: Graph) -> set[str]:
    """Modules of the functions ``call`` nodes name outside torch, math and operator."""
    found = set()
    for node in graph.nodes:
        function = node.attributes.get("function") if node.type == "call" else None
        if isinstance(function, str) and "." in function:
            module = function.rsplit(".", 1)[0]
            if module.split(".")[0] not in BASE_MODULES:
                found.add(module)
    return found


def user_code_in(arch: Mapping[str, Any], custom_names: Iterable[str]) -> str:
    """Why building ``arch`` would run code other than torch's, or "" when it would not.

    Custom layers are the project's code, library layers and ``call`` nodes of functions
    outside torch's tensor maths import packages: all of it runs only inside jobs (and in
    ``forge import``'s child process), never in the TUI or the server.
    """
    custom = set(custom_names)
    for layer in (arch.get("layers") or {}).values():
        kind = str(layer.get("type", ""))
        if kind in custom:
            return f"custom layer {kind}"
        if is_library_type(kind):
            return f"library layer {kind}"
        function = (layer.get("attributes") or {}).get("function")
        if kind == "call" and not is_safe_function(str(function)):
            return f"library function {function}"
    return ""


def functional_attributes(node: Node, graph: Graph) -> dict[str, Any]:
    """A functional node's attributes as its expression takes them: a ``layer_tensor``
    names its layer by the layer's identifier (``self.token_projection.weight``)."""
    if node.type != "layer_tensor":
        return node.attributes
    name = node.attributes.get("layer")
    found = [
        n for n in graph.nodes
        if n.name == name and n.type not in FUNCTIONAL_OPS and n.type not in {INPUT, OUTPUT}
        and n.type not in TENSOR_NODES
    ]
    if not found:
        raise ArchitectureError(
            f"layer {node.name!r} (layer_tensor) reads a tensor of layer {name!r}, which this "
            "architecture does not have"
        )
    return {**node.attributes, "layer": found[0].ident}
