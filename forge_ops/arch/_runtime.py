"""The module class that runs a built architecture (imports torch; loaded only by build)."""

from __future__ import annotations

import base64
import importlib
import math
import operator
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from types import CodeType
from typing import Any

import torch
from torch import nn
from torch.nn import functional

from forge_ops.arch._calls import call_modules, forward_arguments, functional_attributes
from forge_ops.arch._functional import FUNCTIONAL_OPS, render_functional
from forge_ops.arch._model import (
    INPUT,
    OUTPUT,
    PARAMETER,
    TENSOR_NODES,
    Graph,
    LayerRuntimeError,
    Node,
)
from forge_ops.arch._op_base import form_of, is_ref
from forge_ops.arch._params import init_source, is_persistent

_GLOBALS = {
    "torch": torch, "F": functional, "nn": nn, "math": math, "operator": operator,
    "base64": base64, "zlib": zlib,
}


@cache
def source_globals(modules: frozenset[str]) -> dict[str, Any]:
    """Names functional expressions may use: torch, F, nn, math, operator, and the top-level
    packages of library functions that ``call`` nodes name (imported here: jobs only)."""
    names = dict(_GLOBALS)
    for op in FUNCTIONAL_OPS.values():
        if op.helper:
            exec(compile(op.helper, f"<functional {op.name}>", "exec"), names)  # noqa: S102
    for module in sorted(modules):
        importlib.import_module(module)
        root = module.split(".")[0]
        names[root] = importlib.import_module(root)
    return names


def runtime_value(value: Any, got: list[Any]) -> Any:
    """An attribute value with its special forms made real (references become the inputs)."""
    if is_ref(value):
        return got[value["input"]]
    if isinstance(value, Mapping):
        form = form_of(value)
        if form == "dtype":
            return getattr(torch, value["dtype"])
        if form == "float":
            return float(value["float"])
        if form == "slice":
            return slice(*(runtime_value(v, got) for v in value["slice"]))
        if form == "list":
            return runtime_value(value["list"], got)
        return {k: runtime_value(v, got) for k, v in value.items()}
    if isinstance(value, list):
        return [runtime_value(v, got) for v in value]
    return value


@cache
def _compiled(source: str) -> CodeType:
    return compile(source, "<functional layer>", "eval")


@dataclass(frozen=True)
class _Step:
    node: Node
    kind: str  # "input", "module", "functional", "tensor" or "output"
    inputs: tuple[str, ...]  # identifiers of the nodes feeding this one
    source: str = ""  # a functional node's expression over _in0, _in1, ...
    positions: list[int] = field(default_factory=list)  # a module's positional inputs
    keywords: dict[str, Any] = field(default_factory=dict)  # a module's keyword arguments


class ArchitectureModule(nn.Module):
    """Runs an architecture graph; its submodules are the graph's layers by identifier.

    A plain importable class, so built modules pickle (Ray moves them between workers).
    """

    def __init__(self, graph: Graph, layers: dict[str, nn.Module]) -> None:
        super().__init__()
        self.graph = graph
        # Module names, not modules: a built module pickles (Ray moves it between workers).
        self._call_modules = frozenset(call_modules(graph))
        for ident, layer in layers.items():
            self.add_module(ident, layer)
        self._steps: list[_Step] = []
        for node in graph.nodes:
            inputs = tuple(graph.by_id[i].ident for i in node.inputs)
            if node.type == INPUT:
                self._steps.append(_Step(node, "input", inputs))
            elif node.type == OUTPUT:
                self._steps.append(_Step(node, "output", inputs))
            elif node.type in TENSOR_NODES:
                self._add_tensor(node)
                self._steps.append(_Step(node, "tensor", inputs))
            elif node.ident in layers:
                positions, keywords = forward_arguments(node)
                self._steps.append(_Step(node, "module", inputs, "", positions, keywords))
            else:
                op = FUNCTIONAL_OPS[node.type]
                names = [f"_in{i}" for i in range(len(inputs))]
                source = render_functional(op, names, functional_attributes(node, graph))
                self._steps.append(_Step(node, "functional", inputs, source))

    def _add_tensor(self, node: Node) -> None:
        """A Parameter or Buffer node's tensor, created by its initialiser."""
        names = source_globals(self._call_modules)
        value = eval(_compiled(init_source(node.attributes)), names)  # noqa: S307
        if node.type == PARAMETER:
            grad = node.attributes.get("requires_grad", True) is True
            self.register_parameter(node.ident, nn.Parameter(value, requires_grad=grad))
        else:
            persistent = is_persistent(node.type, node.attributes)
            self.register_buffer(node.ident, value, persistent=persistent)

    def run(self, *args: Any, observe: Callable[[Node, Any], None] | None = None) -> dict[str, Any]:
        """Run the graph and return every node's value by identifier.

        ``observe(node, value)`` is called after each node (shape inference uses it).
        """
        inputs = self.graph.inputs
        if len(args) != len(inputs):
            names = ", ".join(n.name for n in inputs)
            raise TypeError(f"{self.graph.name} takes {len(inputs)} input(s) ({names})")
        values: dict[str, Any] = {n.ident: a for n, a in zip(inputs, args, strict=True)}
        for step in self._steps:
            node = step.node
            got = [values[i] for i in step.inputs]
            if step.kind == "input":
                result = values[node.ident]
            elif step.kind == "output":
                result = got[0]
            elif step.kind == "tensor":
                result = getattr(self, node.ident)
            else:
                try:
                    if step.kind == "module":
                        positional = [got[i] for i in step.positions]
                        keywords = runtime_value(step.keywords, got)
                        result = getattr(self, node.ident)(*positional, **keywords)
                    else:
                        scope: dict[str, Any] = {f"_in{i}": v for i, v in enumerate(got)}
                        scope["self"] = self
                        known = source_globals(self._call_modules)
                        result = eval(_compiled(step.source), known, scope)  # noqa: S307
                except Exception as exc:
                    raise LayerRuntimeError(node, got, exc, self._shape_hint(args)) from exc
            values[node.ident] = result
            if observe is not None:
                observe(node, result)
        return values

    def _shape_hint(self, args: tuple[Any, ...]) -> str:
        """Why a layer may have failed: an input whose shape is not the one the architecture
        declares (the batch dimension aside), the usual cause of a wrong-shape error."""
        declared = self.graph.input_shape
        if declared is None or len(args) != 1 or not isinstance(args[0], torch.Tensor):
            return ""
        got = list(args[0].shape)
        if len(got) == len(declared) and got[1:] == declared[1:]:
            return ""
        wanted = ["N", *declared[1:]]
        return (f"{self.graph.name} was drawn for input of shape [{', '.join(map(str, wanted))}]"
                f" (its input shape) but got {got}: set the architecture's input shape to match"
                f" the data, or change the data to fit it.")

    def _load_from_state_dict(
        self, state_dict: Any, prefix: str, *args: Any, **kwargs: Any
    ) -> None:
        # Accept checkpoints of an imported original, whose keys use the layers' display
        # names ("features.0.weight") rather than their identifiers ("features_0.weight").
        for node in self.graph.nodes:
            old, new = prefix + node.name + ".", prefix + node.ident + "."
            if old != new:
                for key in [k for k in state_dict if k.startswith(old)]:
                    state_dict[new + key[len(old) :]] = state_dict.pop(key)
                if node.type in TENSOR_NODES and old[:-1] in state_dict:
                    state_dict[new[:-1]] = state_dict.pop(old[:-1])
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def forward(self, *args: Any) -> Any:
        values = self.run(*args)
        outputs = [values[n.ident] for n in self.graph.outputs]
        return outputs[0] if len(outputs) == 1 else tuple(outputs)
