"""Functional layer types: graph nodes for calls such as ``F.relu``, ``+`` and ``torch.cat``.

Each op knows its attributes and how to write itself as a Python expression. Building a module
(:mod:`.build`) and exporting source (:mod:`.export`) both use that one expression, so the two
can never disagree.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from forge_ops.arch._model import ArchitectureError

_REQUIRED = object()


@dataclass(frozen=True)
class Attr:
    """One attribute of a functional op: its type (as text) and default."""

    type: str
    default: Any = _REQUIRED

    @property
    def required(self) -> bool:
        return self.default is _REQUIRED


@dataclass(frozen=True)
class FunctionalOp:
    """A functional node type. ``expression(inputs, attributes)`` returns Python source."""

    name: str
    doc: str
    attributes: dict[str, Attr]
    min_inputs: int
    max_inputs: int | None  # None: any number
    expression: Callable[[list[str], dict[str, Any]], str]

    def resolved(self, attributes: dict[str, Any]) -> dict[str, Any]:
        """Attributes with defaults filled in (no validation)."""
        values = {k: a.default for k, a in self.attributes.items() if not a.required}
        values.update(attributes)
        return values


def _kwargs(values: dict[str, Any], op_attrs: dict[str, Attr], skip: tuple[str, ...] = ()) -> str:
    """``, name=value`` for every attribute that differs from its default."""
    parts = []
    for key, attr in op_attrs.items():
        if key in skip:
            continue
        value = values.get(key, attr.default)
        if attr.required or value != attr.default:
            parts.append(f", {key}={literal(value)}")
    return "".join(parts)


def literal(value: Any) -> str:
    """Python source for a plain JSON value (lists become tuples, as torch expects)."""
    if isinstance(value, list):
        inner = ", ".join(literal(v) for v in value)
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    return repr(value)


def _unary(name: str, call: str, doc: str, **attrs: Attr) -> FunctionalOp:
    def expression(inputs: list[str], values: dict[str, Any]) -> str:
        return f"{call}({inputs[0]}{_kwargs(values, attrs)})"

    return FunctionalOp(name, doc, dict(attrs), 1, 1, expression)


def _arith(name: str, symbol: str, doc: str, max_inputs: int | None) -> FunctionalOp:
    attrs = {"scalar": Attr("float | None", None)}

    def expression(inputs: list[str], values: dict[str, Any]) -> str:
        scalar = values.get("scalar")
        terms = [*inputs, repr(scalar)] if scalar is not None else inputs
        return f" {symbol} ".join(terms)

    return FunctionalOp(name, doc, attrs, 1, max_inputs, expression)


def _cat_like(name: str, call: str, doc: str, default_dim: int) -> FunctionalOp:
    attrs = {"dim": Attr("int", default_dim)}

    def expression(inputs: list[str], values: dict[str, Any]) -> str:
        dim = values.get("dim", default_dim)
        return f"{call}([{', '.join(inputs)}], dim={dim!r})"

    return FunctionalOp(name, doc, attrs, 1, None, expression)


def _method(
    name: str, method: str, doc: str, star: str | None = None, **attrs: Attr
) -> FunctionalOp:
    """``x.method(...)``; ``star`` names a list attribute spread as positional arguments."""

    def expression(inputs: list[str], values: dict[str, Any]) -> str:
        if star is not None:
            args = ", ".join(literal(v) for v in values[star])
            return f"{inputs[0]}.{method}({args}{_kwargs(values, attrs, skip=(star,))})"
        return f"{inputs[0]}.{method}({_kwargs(values, attrs)[2:]})"

    return FunctionalOp(name, doc, dict(attrs), 1, 1, expression)


def _flatten(inputs: list[str], values: dict[str, Any]) -> str:
    start, end = values.get("start_dim", 1), values.get("end_dim", -1)
    return f"torch.flatten({inputs[0]}, {start!r}" + (f", {end!r})" if end != -1 else ")")


def _dropout(inputs: list[str], values: dict[str, Any]) -> str:
    return f"F.dropout({inputs[0]}, p={values.get('p', 0.5)!r}, training=self.training)"


def _getitem(inputs: list[str], values: dict[str, Any]) -> str:
    return f"{inputs[0]}[{values['index']!r}]"


def _matmul(inputs: list[str], values: dict[str, Any]) -> str:
    return f"{inputs[0]} @ {inputs[1]}"


def _ops() -> dict[str, FunctionalOp]:
    ops = [
        _unary("relu", "F.relu", "Rectified linear unit, max(0, x)."),
        _unary("relu6", "F.relu6", "ReLU capped at 6."),
        _unary("gelu", "F.gelu", "Gaussian error linear unit."),
        _unary("silu", "F.silu", "Sigmoid linear unit, x * sigmoid(x)."),
        _unary("elu", "F.elu", "Exponential linear unit.", alpha=Attr("float", 1.0)),
        _unary("leaky_relu", "F.leaky_relu", "Leaky ReLU.", negative_slope=Attr("float", 0.01)),
        _unary("sigmoid", "torch.sigmoid", "Logistic sigmoid."),
        _unary("tanh", "torch.tanh", "Hyperbolic tangent."),
        _unary("softmax", "F.softmax", "Softmax along a dimension.", dim=Attr("int", -1)),
        _unary(
            "log_softmax",
            "F.log_softmax",
            "Log of softmax along a dimension.",
            dim=Attr("int", -1),
        ),
        _unary(
            "max_pool2d",
            "F.max_pool2d",
            "2D max pooling.",
            kernel_size=Attr("int | list[int]"),
            stride=Attr("int | list[int] | None", None),
            padding=Attr("int | list[int]", 0),
        ),
        _unary(
            "avg_pool2d",
            "F.avg_pool2d",
            "2D average pooling.",
            kernel_size=Attr("int | list[int]"),
            stride=Attr("int | list[int] | None", None),
            padding=Attr("int | list[int]", 0),
        ),
        _unary(
            "adaptive_avg_pool2d",
            "F.adaptive_avg_pool2d",
            "2D average pooling to a fixed output size.",
            output_size=Attr("int | list[int]"),
        ),
        _unary(
            "chunk",
            "torch.chunk",
            "Split into chunks (take one with getitem).",
            chunks=Attr("int"),
            dim=Attr("int", 0),
        ),
        FunctionalOp(
            "dropout",
            "Dropout (active only in training mode).",
            {"p": Attr("float", 0.5)},
            1,
            1,
            _dropout,
        ),
        FunctionalOp(
            "flatten",
            "Flatten dimensions start_dim..end_dim into one.",
            {"start_dim": Attr("int", 1), "end_dim": Attr("int", -1)},
            1,
            1,
            _flatten,
        ),
        _method(
            "reshape",
            "reshape",
            "Reshape (-1 infers one dimension).",
            star="shape",
            shape=Attr("list[int]"),
        ),
        _method("permute", "permute", "Reorder dimensions.", star="dims", dims=Attr("list[int]")),
        _method(
            "transpose", "transpose", "Swap two dimensions.", dim0=Attr("int"), dim1=Attr("int")
        ),
        _method("unsqueeze", "unsqueeze", "Insert a dimension of size 1.", dim=Attr("int")),
        _method("squeeze", "squeeze", "Remove dimensions of size 1.", dim=Attr("int | None", None)),
        _method(
            "mean",
            "mean",
            "Mean over dimensions.",
            dim=Attr("int | list[int] | None", None),
            keepdim=Attr("bool", False),
        ),
        _arith("add", "+", "Sum of the inputs (plus an optional scalar).", None),
        _arith("mul", "*", "Product of the inputs (times an optional scalar).", None),
        _arith("sub", "-", "First input minus the second (or minus a scalar).", 2),
        _arith("div", "/", "First input divided by the second (or by a scalar).", 2),
        FunctionalOp("matmul", "Matrix product of two inputs.", {}, 2, 2, _matmul),
        _cat_like("cat", "torch.cat", "Concatenate the inputs along a dimension.", 1),
        _cat_like("stack", "torch.stack", "Stack the inputs along a new dimension.", 0),
        FunctionalOp(
            "getitem",
            "Index into the input (e.g. one output of an LSTM).",
            {"index": Attr("int")},
            1,
            1,
            _getitem,
        ),
    ]
    return {op.name: op for op in ops}


FUNCTIONAL_OPS: dict[str, FunctionalOp] = _ops()


def check_functional(label: str, op: FunctionalOp, attributes: dict[str, Any], inputs: int) -> None:
    """Raise ArchitectureError when a functional node's attributes or inputs are wrong."""
    unknown = sorted(set(attributes) - set(op.attributes))
    if unknown:
        known = ", ".join(op.attributes) or "none"
        raise ArchitectureError(
            f"{label}: unknown attribute {unknown[0]!r} (attributes of {op.name}: {known})"
        )
    for key, attr in op.attributes.items():
        if attr.required and attributes.get(key) is None:
            raise ArchitectureError(f"{label}: set attribute {key!r} ({attr.type})")
    scalar = attributes.get("scalar") is not None
    low = op.min_inputs + (1 if op.name in {"sub", "div", "add", "mul"} and not scalar else 0)
    high = op.max_inputs
    if high is not None and scalar:
        high -= 1
    if inputs < low or (high is not None and inputs > high):
        wanted = f"{low}" if high == low else f"{low} or more" if high is None else f"{low}-{high}"
        raise ArchitectureError(f"{label} takes {wanted} input(s), has {inputs}")
