"""Shape inference: every edge's tensor shape and every layer's parameter count.

The architecture is built and run on PyTorch's ``meta`` device, so no real memory is allocated
for weights or activations (a VGG-16 costs no more than a tiny net). Custom layer code is
executed, so like :func:`build_module` this belongs inside a job or a child process.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from forge_ops.arch._model import PARAMETER, ArchitectureError, LayerRuntimeError, Node, graph_of
from forge_ops.arch.build import build_module


class ShapeError(ArchitectureError):
    """A layer cannot take the shape it is given; the message names layer, shape and need."""

    def __init__(
        self, message: str, layer: str, got: list[Any], layer_id: str | None = None
    ) -> None:
        super().__init__(message, layer_id=layer_id)
        self.layer = layer
        self.got = got


@dataclass
class ShapeReport:
    """Result of shape inference.

    ``layer_shapes``: layer id -> output shape (a list of ints, or a list of shapes for a
    layer with several outputs); ``edge_shapes``: edge id -> the shape it carries;
    ``parameters``: layer id -> trainable parameter count.
    """

    layer_shapes: dict[str, Any] = field(default_factory=dict)
    edge_shapes: dict[str, Any] = field(default_factory=dict)
    parameters: dict[str, int] = field(default_factory=dict)

    @property
    def total_parameters(self) -> int:
        return sum(self.parameters.values())


def _shape_of(value: Any) -> Any:
    import torch

    if isinstance(value, torch.Tensor):
        return list(value.shape)
    if isinstance(value, tuple | list):
        return [_shape_of(v) for v in value]
    return None


def _expectation(layer: Any) -> str:
    """What a common layer needs of its input, from its own configuration."""
    from torch import nn

    if isinstance(layer, nn.Linear):
        return f"a last dimension of {layer.in_features}"
    if isinstance(layer, nn.Bilinear):
        return f"last dimensions {layer.in1_features} and {layer.in2_features}"
    for dims, conv in ((1, nn.Conv1d), (2, nn.Conv2d), (3, nn.Conv3d)):
        if isinstance(layer, conv):
            return (
                f"a {dims + 2}-d input (batch, channels, {dims} spatial) with "
                f"{layer.in_channels} channels"
            )
    for dims, norm in ((1, nn.BatchNorm1d), (2, nn.BatchNorm2d), (3, nn.BatchNorm3d)):
        if isinstance(layer, norm):
            rank = "a 2-d or 3-d" if dims == 1 else f"a {dims + 2}-d"
            return f"{rank} input with {layer.num_features} channels"
    if isinstance(layer, nn.LayerNorm):
        return f"trailing dimensions {list(layer.normalized_shape)}"
    if isinstance(layer, nn.Embedding):
        return f"integer indices below {layer.num_embeddings}"
    if isinstance(layer, nn.RNNBase):
        return f"a (seq, batch, {layer.input_size}) or batched-first input"
    return ""


def infer_shapes(
    arch: Mapping[str, Any],
    custom_layers: Mapping[str, str] | None = None,
    input_shapes: list[list[int]] | None = None,
) -> ShapeReport:
    """Infer shapes for an architecture from its ``input_shape`` (or ``input_shapes``).

    Raises ShapeError naming the first layer that cannot take its input, the shape it got
    and what it expects; ArchitectureError for malformed data or a missing input shape.
    """
    import torch

    graph = graph_of(arch)
    shapes = _input_shapes(graph.inputs, graph.input_shape, input_shapes)
    with torch.device("meta"):
        module: Any = build_module(arch, custom_layers)
    # Shape inference reports the evaluation-mode shapes (dropout is identity either way).
    module.eval()
    report = ShapeReport()
    for name, layer in module.named_children():
        node_id = next(n.id for n in graph.nodes if n.ident == name)
        report.parameters[node_id] = sum(p.numel() for p in layer.parameters())
    for node in graph.nodes:
        if node.type == PARAMETER:  # a tensor the model holds itself (a class token)
            report.parameters[node.id] = math.prod(node.attributes.get("shape") or [])
        report.parameters.setdefault(node.id, 0)

    def observe(node: Node, value: Any) -> None:
        report.layer_shapes[node.id] = _shape_of(value)

    dtypes = [getattr(torch, str(n.attributes.get("dtype", "float32"))) for n in graph.inputs]
    args = [torch.empty(s, device="meta", dtype=d) for s, d in zip(shapes, dtypes, strict=True)]
    try:
        with torch.no_grad():
            module.run(*args, observe=observe)
    except LayerRuntimeError as exc:
        got = [_shape_of(v) for v in exc.inputs]
        shown = got[0] if len(got) == 1 else got
        layer = getattr(module, exc.node.ident, None)
        need = _expectation(layer) if layer is not None else ""
        cause = str(exc.cause).strip().splitlines()[0] if str(exc.cause).strip() else ""
        message = f"layer {exc.node.name!r} ({exc.node.type}) got input shape {shown}"
        message += f" but expects {need}" if need else " but cannot take it"
        message += f" ({cause})" if cause else ""
        raise ShapeError(message, exc.node.name, got, exc.node.id) from exc.cause
    for edge_id, edge in (arch.get("edges") or {}).items():
        report.edge_shapes[edge_id] = report.layer_shapes.get(edge["src"])
    return report


def _input_shapes(
    inputs: list[Node], default: list[int] | None, given: list[list[int]] | None
) -> list[list[int]]:
    if given is not None:
        if len(given) != len(inputs):
            raise ArchitectureError(
                f"the architecture has {len(inputs)} input(s) but {len(given)} shape(s) were given"
            )
        return [list(s) for s in given]
    shapes = []
    for position, node in enumerate(inputs):
        shape = node.attributes.get("shape") or (default if position == 0 else None)
        if shape is None:
            which = "the architecture" if position == 0 else f"Input {node.name!r}"
            raise ArchitectureError(
                f"set an input shape on {which} (e.g. [1, 3, 32, 32]) to infer shapes"
            )
        shapes.append(list(shape))
    return shapes


def infer_shapes_isolated(
    arch: Mapping[str, Any],
    custom_layers: Mapping[str, str] | None = None,
    timeout: float = 60.0,
) -> ShapeReport:
    """:func:`infer_shapes` in a child process, for callers that must not run user code.

    Custom layer code is executed to infer shapes; the TUI and the server call this instead,
    so that code runs in ``python -m forge_ops.arch.shapes`` and never in their process.
    Raises ShapeError / ArchitectureError as :func:`infer_shapes` does.
    """
    payload = json.dumps({"arch": arch, "custom_layers": dict(custom_layers or {})})
    try:
        done = subprocess.run(
            [sys.executable, "-m", "forge_ops.arch.shapes"],
            input=payload,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise ArchitectureError(f"shape inference took longer than {timeout:.0f} s") from exc
    lines = done.stdout.strip().splitlines()
    try:
        answer = json.loads(lines[-1]) if lines else {}
    except json.JSONDecodeError:
        answer = {}
    if "report" in answer:
        return ShapeReport(**answer["report"])
    if "shape_error" in answer:
        error = answer["shape_error"]
        raise ShapeError(error["message"], error["layer"], error["got"], error.get("layer_id"))
    if "error" in answer:
        raise ArchitectureError(answer["error"], layer_id=answer.get("layer_id"))
    tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
    raise ArchitectureError(f"shape inference failed: {tail}")


def _main() -> int:
    """Child side of :func:`infer_shapes_isolated`: JSON request on stdin, answer on stdout."""
    request = json.loads(sys.stdin.read())
    try:
        report = infer_shapes(request["arch"], request.get("custom_layers"))
    except ShapeError as exc:
        print(
            json.dumps({"shape_error": {"message": str(exc), "layer": exc.layer, "got": exc.got,
                                        "layer_id": exc.layer_id}})
        )
        return 1
    except ArchitectureError as exc:
        print(json.dumps({"error": str(exc), "layer_id": exc.layer_id}))
        return 1
    except Exception as exc:  # user code in a custom layer may raise anything
        print(json.dumps({"error": f"{type(exc).__name__}: {exc}"}))
        return 1
    print(json.dumps({"report": asdict(report)}))
    return 0


if __name__ == "__main__":
    sys.exit(_main())
