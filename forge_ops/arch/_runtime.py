"""The module class that runs a built architecture (imports torch; loaded only by build)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from types import CodeType
from typing import Any

import torch
from torch import nn
from torch.nn import functional

from forge_ops.arch._functional import FUNCTIONAL_OPS
from forge_ops.arch._model import INPUT, OUTPUT, Graph, LayerRuntimeError, Node

_GLOBALS = {"torch": torch, "F": functional}


@cache
def _compiled(source: str) -> CodeType:
    return compile(source, "<functional layer>", "eval")


@dataclass(frozen=True)
class _Step:
    node: Node
    kind: str  # "input", "module", "functional" or "output"
    inputs: tuple[str, ...]  # identifiers of the nodes feeding this one
    source: str = ""  # a functional node's expression over _in0, _in1, ...


class ArchitectureModule(nn.Module):
    """Runs an architecture graph; its submodules are the graph's layers by identifier.

    A plain importable class, so built modules pickle (Ray moves them between workers).
    """

    def __init__(self, graph: Graph, layers: dict[str, nn.Module]) -> None:
        super().__init__()
        self.graph = graph
        for ident, layer in layers.items():
            self.add_module(ident, layer)
        self._steps: list[_Step] = []
        for node in graph.nodes:
            inputs = tuple(graph.by_id[i].ident for i in node.inputs)
            if node.type == INPUT:
                self._steps.append(_Step(node, "input", inputs))
            elif node.type == OUTPUT:
                self._steps.append(_Step(node, "output", inputs))
            elif node.ident in layers:
                self._steps.append(_Step(node, "module", inputs))
            else:
                op = FUNCTIONAL_OPS[node.type]
                names = [f"_in{i}" for i in range(len(inputs))]
                source = op.expression(names, op.resolved(node.attributes))
                self._steps.append(_Step(node, "functional", inputs, source))

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
            else:
                try:
                    if step.kind == "module":
                        result = getattr(self, node.ident)(*got)
                    else:
                        scope: dict[str, Any] = {f"_in{i}": v for i, v in enumerate(got)}
                        scope["self"] = self
                        result = eval(_compiled(step.source), _GLOBALS, scope)  # noqa: S307
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
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def forward(self, *args: Any) -> Any:
        values = self.run(*args)
        outputs = [values[n.ident] for n in self.graph.outputs]
        return outputs[0] if len(outputs) == 1 else tuple(outputs)
