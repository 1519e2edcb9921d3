"""Checking a layer's attributes and turning them into a constructor call.

Both :mod:`.build` (which instantiates the call) and :mod:`.export` (which writes it as source)
use :func:`layer_call`, so a built module and exported source construct the same layers.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from forge_ops.arch._functional import FUNCTIONAL_OPS, check_functional
from forge_ops.arch._model import INPUT, OUTPUT, ArchitectureError, Graph, is_layer_value
from forge_ops.arch.catalogue import LayerSpec, catalogue
from forge_ops.arch.custom import custom_layer_specs


@dataclass(frozen=True)
class LayerCall:
    """``type(*args, **kwargs)`` where values may be nested LayerCalls or lists of them."""

    type: str
    custom: bool
    args: list[Any] = field(default_factory=list)
    kwargs: dict[str, Any] = field(default_factory=dict)


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
    return known_specs(custom_layer_specs({k: v for k, v in custom_layers.items() if k in used}))


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
            unknown = set(node.attributes) - {"index", "shape"}
            if unknown:
                raise ArchitectureError(
                    f"{label}: unknown attribute {sorted(unknown)[0]!r} (allowed: index, shape)"
                )
            continue
        op = FUNCTIONAL_OPS.get(node.type)
        try:
            if op is not None and node.type not in specs:
                check_functional(label, op, node.attributes, len(node.inputs))
                continue
            calls[node.id] = layer_call(label, node.type, node.attributes, specs)
        except ArchitectureError as exc:
            exc.layer_id = exc.layer_id or node.id  # so editors can flag the layer
            raise
    return calls
