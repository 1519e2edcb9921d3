"""Checking an import against the original module on a sample input.

The import is built, the original's state dict is loaded into it strictly, and both run on the
same sample (from ``--input``, or guessed from the layer that reads the input). When outputs
differ, both are run again node by node — the original through its traced graph — and the
first layer whose output differs is named, with its line in the user's code. Imports torch.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import fx, nn

from forge_ops.arch._inputs import InputSpec, spec_of_attributes
from forge_ops.arch._model import INPUT, LayerRuntimeError, Node, graph_of
from forge_ops.arch._trace import Traced
from forge_ops.arch._user_code import ArchitectureImportError, source_line
from forge_ops.arch.build import build_module


def guess_inputs(arch: Mapping[str, Any]) -> list[list[InputSpec]] | None:
    """Candidate samples for each input, from the Input nodes' attributes or from the layer
    that reads each input; None when some input gives no clue."""
    graph = graph_of(arch)
    consumers: dict[str, list[Node]] = {}
    for node in graph.nodes:
        for source in node.inputs:
            consumers.setdefault(source, []).append(node)
    found: list[list[InputSpec]] = []
    for position, node in enumerate(graph.inputs):
        declared = spec_of_attributes(node.attributes)
        if declared is None and position == 0 and graph.input_shape:
            declared = InputSpec(list(graph.input_shape))
        guesses = [declared] if declared else []
        for consumer in consumers.get(node.id, []):
            guesses += _from_layer(consumer)
        if not guesses:
            return None
        found.append(guesses)
    return found


def _from_layer(node: Node) -> list[InputSpec]:
    attrs = node.attributes
    kind = node.type
    if kind in {"Conv1d", "Conv2d", "Conv3d"} and isinstance(attrs.get("in_channels"), int):
        rank = int(kind[4])
        return [InputSpec([2, attrs["in_channels"], *[side] * rank]) for side in (32, 224)]
    if kind == "Linear" and isinstance(attrs.get("in_features"), int):
        return [InputSpec([2, attrs["in_features"]])]
    if kind == "Embedding" and isinstance(attrs.get("num_embeddings"), int):
        return [InputSpec([2, 16], "int64", 0, attrs["num_embeddings"] - 1)]
    if kind in {"LSTM", "GRU", "RNN"} and isinstance(attrs.get("input_size"), int):
        shape = [2, 8] if attrs.get("batch_first") else [8, 2]
        return [InputSpec([*shape, attrs["input_size"]])]
    if kind == "LayerNorm" and attrs.get("normalized_shape") is not None:
        trailing = attrs["normalized_shape"]
        return [InputSpec([2, 8, *(trailing if isinstance(trailing, list) else [trailing])])]
    return []


class _Recorder(fx.Interpreter):
    """Runs the original's traced graph, keeping every node's value."""

    def __init__(self, module: fx.GraphModule) -> None:
        super().__init__(module)
        self.values: dict[fx.Node, Any] = {}

    def run_node(self, n: fx.Node) -> Any:
        result = super().run_node(n)
        self.values[n] = result
        return result


def _difference(a: Any, b: Any) -> float | None:
    """The largest difference between two values (tensors, sizes, tuples); None if equal."""
    if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
        a, b = a.detach(), b.detach()
        if a.shape != b.shape or (a.dtype != b.dtype and not a.is_floating_point()):
            return float("inf")
        if a.is_floating_point() or b.is_floating_point():
            a, b = a.double(), b.double()
            scale = max(1.0, float(a.abs().max()) if a.numel() else 1.0)
            gap = float((a - b).abs().max()) if a.numel() else 0.0
            return None if gap <= 1e-5 * scale else gap
        return None if torch.equal(a, b) else float("inf")
    if isinstance(a, tuple | list) and isinstance(b, tuple | list):
        if len(a) != len(b):
            return float("inf")
        gaps = [g for g in (_difference(x, y) for x, y in zip(a, b, strict=True)) if g is not None]
        return max(gaps) if gaps else None
    return None if a == b else float("inf")


def check_import(
    original: nn.Module,
    traced: Traced,
    inputs: Sequence[InputSpec] | None,
) -> str:
    """Check an import on a sample; return what was checked, or say why nothing could be.

    Raises ArchitectureImportError when the import does not load the original's state dict
    strictly or computes something else (naming the first layer that differs).
    """
    rebuilt: Any = build_module(traced.arch, traced.custom_layers)
    try:
        rebuilt.load_state_dict(original.state_dict(), strict=True)
    except RuntimeError as exc:
        detail = str(exc).strip().splitlines()
        raise ArchitectureImportError(
            "the original's state dict does not load into the import: "
            + " ".join(line.strip() for line in detail[1:3])
        ) from exc
    counts = [sum(p.numel() for p in m.parameters()) for m in (original, rebuilt)]
    if counts[0] != counts[1]:
        raise ArchitectureImportError(
            f"the import has {counts[1]} parameters but the original has {counts[0]}"
        )
    candidates = [[spec] for spec in inputs] if inputs else guess_inputs(traced.arch)
    if candidates is None:
        return "could not check outputs: no sample input can be built; give --input"
    mode = original.training
    original.eval()
    rebuilt.eval()
    try:
        return _compare(original, rebuilt, traced, candidates, guessed=not inputs)
    finally:
        original.train(mode)


def _compare(
    original: nn.Module,
    rebuilt: Any,
    traced: Traced,
    candidates: list[list[InputSpec]],
    guessed: bool,
) -> str:
    generator = torch.Generator().manual_seed(0)
    problem = ""
    for choice in range(max(len(c) for c in candidates)):
        specs = [c[min(choice, len(c) - 1)] for c in candidates]
        samples = [spec.sample(generator) for spec in specs]
        shown = ", ".join(spec.text() for spec in specs)
        try:
            with torch.no_grad():
                expected = original(*samples)
        except Exception as exc:
            problem = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0][:200]}"
            if not guessed:
                raise ArchitectureImportError(
                    f"the original fails on the sample input {shown}: {problem}"
                ) from exc
            continue
        values: dict[str, Any] = {}
        try:
            with torch.no_grad():
                rebuilt.run(*samples, observe=_keep(values))
        except LayerRuntimeError as exc:
            origin = traced.origin.get(exc.node.id)
            where = source_line(origin.stack_trace) if origin is not None else ""
            raise ArchitectureImportError(
                f"the imported {exc} on {shown}, where the original runs"
                + (f" (made from {where})" if where else "")
            ) from exc
        got = tuple(values[n.inputs[0]] for n in rebuilt.graph.outputs)
        want = expected if isinstance(expected, tuple | list) else (expected,)
        gap = _difference(list(want), list(got))
        if gap is None:
            return f"outputs checked on {shown}: the import matches the original"
        raise ArchitectureImportError(_first_difference(rebuilt, traced, samples, values, gap))
    return (
        f"could not check outputs: the guessed sample input does not fit ({problem}); "
        "give --input"
    )


def _keep(values: dict[str, Any]) -> Any:
    def observe(node: Node, value: Any) -> None:
        values[node.id] = value

    return observe


def _first_difference(
    rebuilt: Any, traced: Traced, samples: list[torch.Tensor], values: dict[str, Any], gap: float
) -> str:
    recorder = _Recorder(traced.graph_module)
    with torch.no_grad():
        recorder.run(*samples)
    for node in rebuilt.graph.nodes:
        origin = traced.origin.get(node.id)
        if node.type == INPUT or origin is None or origin not in recorder.values:
            continue
        difference = _difference(recorder.values[origin], values.get(node.id))
        if difference is not None:
            where = source_line(origin.stack_trace)
            return (
                f"the import computes something else than the original: layer {node.name!r} "
                f"({node.type}) is the first whose output differs (max difference "
                f"{difference:.3g})" + (f", at {where}" if where else "")
            )
    return (
        f"the import's outputs differ from the original's (max difference {gap:.3g}) though "
        "every layer matches the traced graph: forward has behaviour tracing fixed (control "
        "flow or state)"
    )
