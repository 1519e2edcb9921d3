"""Functional layer types: graph nodes for calls such as ``F.relu``, ``+`` and ``torch.cat``.

Each op knows its attributes and how to write itself as a Python expression. Building a module
(:mod:`.build`) and exporting source (:mod:`.export`) both use that one expression, so the two
can never disagree.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from forge_ops.arch._model import ArchitectureError
from forge_ops.arch._op_base import (
    Attr,
    FunctionalOp,
    check_value,
    index_source,
    literal,
    refs_in,
    substitute,
)
from forge_ops.arch._op_base import kwargs_source as _kwargs
from forge_ops.arch._ops_table import CHECKS, generated_ops

# Binary operators: two primary inputs, or one and a scalar (``reverse`` puts it first).
ARITHMETIC = {
    "add": "+", "mul": "*", "sub": "-", "div": "/", "floordiv": "//", "mod": "%",
    "pow": "**", "eq": "==", "ne": "!=", "lt": "<", "le": "<=", "gt": ">", "ge": ">=",
    "and_": "&", "or_": "|",
}


def _unary(name: str, call: str, doc: str, **attrs: Attr) -> FunctionalOp:
    def expression(inputs: list[str], values: dict[str, Any]) -> str:
        return f"{call}({inputs[0]}{_kwargs(values, attrs)})"

    return FunctionalOp(name, doc, dict(attrs), 1, 1, expression)


def _softmax(name: str, call: str, doc: str) -> FunctionalOp:
    """``dim`` is always written: torch's own default (no dim) picks one by the input's rank."""

    def expression(inputs: list[str], values: dict[str, Any]) -> str:
        return f"{call}({inputs[0]}, dim={literal(values.get('dim', -1))})"

    return FunctionalOp(name, doc, {"dim": Attr("int", -1)}, 1, 1, expression)


def _arith(name: str, symbol: str, doc: str, max_inputs: int | None) -> FunctionalOp:
    attrs = {"scalar": Attr("float | None", None)}
    if max_inputs == 2:
        attrs["reverse"] = Attr("bool", False)

    def expression(inputs: list[str], values: dict[str, Any]) -> str:
        scalar = values.get("scalar")
        terms = [*inputs, literal(scalar)] if scalar is not None else list(inputs)
        if values.get("reverse"):
            terms.reverse()
        return f" {symbol} ".join(terms)

    return FunctionalOp(name, doc, attrs, 1, max_inputs, expression)


def _prefix(name: str, symbol: str, doc: str) -> FunctionalOp:
    return FunctionalOp(name, doc, {}, 1, 1, lambda inputs, values: f"{symbol}{inputs[0]}")


def _cat_like(name: str, call: str, doc: str, default_dim: int) -> FunctionalOp:
    attrs = {"dim": Attr("int", default_dim)}

    def expression(inputs: list[str], values: dict[str, Any]) -> str:
        dim = values.get("dim", default_dim)
        return f"{call}([{', '.join(inputs)}], dim={literal(dim)})"

    return FunctionalOp(name, doc, attrs, 1, None, expression)


def _method(
    name: str, method: str, doc: str, star: str | None = None, **attrs: Attr
) -> FunctionalOp:
    """``x.method(...)``; ``star`` names a list attribute spread as positional arguments."""

    def expression(inputs: list[str], values: dict[str, Any]) -> str:
        if star is not None:
            args = ", ".join(literal(v) for v in values[star])
            return f"{inputs[0]}.{method}({args}{_kwargs(values, attrs, skip=(star,))})"
        required = [k for k, a in attrs.items() if a.required]
        parts = [literal(values[k]) for k in required]
        keywords = _kwargs(values, attrs, skip=tuple(required))[2:]
        parts += [keywords] if keywords else []
        return f"{inputs[0]}.{method}({', '.join(parts)})"

    return FunctionalOp(name, doc, dict(attrs), 1, 1, expression)


def _flatten(inputs: list[str], values: dict[str, Any]) -> str:
    start, end = values.get("start_dim", 1), values.get("end_dim", -1)
    return f"torch.flatten({inputs[0]}, {literal(start)}" + (
        f", {literal(end)})" if end != -1 else ")"
    )


def _dropout(inputs: list[str], values: dict[str, Any]) -> str:
    return f"F.dropout({inputs[0]}, p={literal(values.get('p', 0.5))}, training=self.training)"


def _getitem(inputs: list[str], values: dict[str, Any]) -> str:
    return f"{inputs[0]}[{index_source(values['index'])}]"


STOCHASTIC_DEPTH = '''
def _stochastic_depth(x: torch.Tensor, p: float, mode: str, scale: bool, training: bool):
    """Drop whole samples ("row") or the batch ("batch") of a residual branch in training."""
    if not training or p == 0.0:
        return x
    size = [x.shape[0]] + [1] * (x.dim() - 1) if mode == "row" else [1] * x.dim()
    keep = x.new_empty(size).bernoulli_(1.0 - p)
    return x * (keep / (1.0 - p) if scale and p < 1.0 else keep)
'''


def _drop_path(inputs: list[str], values: dict[str, Any]) -> str:
    """torchvision's ``stochastic_depth`` and timm's ``DropPath`` written with torch alone."""
    args = [literal(values.get(k, d)) for k, d in (("p", 0.0), ("mode", "row"))]
    scale = literal(values.get("scale_by_keep", True))
    return f"_stochastic_depth({inputs[0]}, {', '.join(args)}, {scale}, self.training)"


def _matmul(inputs: list[str], values: dict[str, Any]) -> str:
    return f"{inputs[0]} @ {inputs[1]}"


def _ops() -> dict[str, FunctionalOp]:
    ops = [
        _unary("relu", "F.relu", "Rectified linear unit, max(0, x)."),
        _unary("relu6", "F.relu6", "ReLU capped at 6."),
        _unary(
            "gelu",
            "F.gelu",
            "Gaussian error linear unit.",
            approximate=Attr("Literal['none', 'tanh']", "none"),
        ),
        _unary("silu", "F.silu", "Sigmoid linear unit, x * sigmoid(x)."),
        _unary("elu", "F.elu", "Exponential linear unit.", alpha=Attr("float", 1.0)),
        _unary("leaky_relu", "F.leaky_relu", "Leaky ReLU.", negative_slope=Attr("float", 0.01)),
        _unary("sigmoid", "torch.sigmoid", "Logistic sigmoid."),
        _unary("tanh", "torch.tanh", "Hyperbolic tangent."),
        _softmax("softmax", "F.softmax", "Softmax along a dimension."),
        _softmax("log_softmax", "F.log_softmax", "Log of softmax along a dimension."),
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
        _arith("floordiv", "//", "Integer division (sizes: h // patch).", 2),
        _arith("mod", "%", "Remainder of a division.", 2),
        _arith("pow", "**", "First input to the power of the second (or of a scalar).", 2),
        _arith("eq", "==", "Elementwise equality.", 2),
        _arith("ne", "!=", "Elementwise inequality.", 2),
        _arith("lt", "<", "Elementwise less-than.", 2),
        _arith("le", "<=", "Elementwise less-or-equal.", 2),
        _arith("gt", ">", "Elementwise greater-than.", 2),
        _arith("ge", ">=", "Elementwise greater-or-equal.", 2),
        _arith("and_", "&", "Elementwise (bitwise) and.", 2),
        _arith("or_", "|", "Elementwise (bitwise) or.", 2),
        _prefix("neg", "-", "Negation, -x."),
        _prefix("invert", "~", "Bitwise or logical not, ~x."),
        FunctionalOp(
            "stochastic_depth",
            "Stochastic depth / DropPath: drops samples' residual branch in training.",
            {
                "p": Attr("float", 0.0),
                "mode": Attr("Literal['row', 'batch']", "row"),
                "scale_by_keep": Attr("bool", True),
            },
            1,
            1,
            _drop_path,
            helper=STOCHASTIC_DEPTH,
        ),
        FunctionalOp("matmul", "Matrix product of two inputs.", {}, 2, 2, _matmul),
        _cat_like("cat", "torch.cat", "Concatenate the inputs along a dimension.", 1),
        _cat_like("stack", "torch.stack", "Stack the inputs along a new dimension.", 0),
        FunctionalOp(
            "getitem",
            "Index or slice the input: 0, [{'slice': [null, null, null]}, 0] is x[:, 0].",
            {"index": Attr("int | list | slice")},
            1,
            1,
            _getitem,
        ),
    ]
    ops += generated_ops()
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
    for key, value in attributes.items():
        check_value(label, key, value, inputs)
    if op.name in CHECKS:
        CHECKS[op.name](label, attributes)
    for key, attr in op.attributes.items():
        if attr.required and key not in op.tensors and attributes.get(key) is None:
            raise ArchitectureError(f"{label}: set attribute {key!r} ({attr.type})")
    primary = inputs - len(set(refs_in(list(attributes.values()))))
    given = sum(1 for key in op.tensors if key in attributes)
    scalar = attributes.get("scalar") is not None
    low = op.min_inputs - given + (1 if op.name in ARITHMETIC and not scalar else 0)
    high = None if op.max_inputs is None else op.max_inputs - given
    if high is not None and scalar:
        high -= 1
    low = max(low, 0)
    if primary < low or (high is not None and primary > high):
        wanted = f"{low}" if high == low else f"{low} or more" if high is None else f"{low}-{high}"
        raise ArchitectureError(f"{label} takes {wanted} input(s), has {primary}")


def render_functional(op: FunctionalOp, names: list[str], attributes: Mapping[str, Any]) -> str:
    """The Python expression of a functional node whose inputs are named ``names``."""
    referenced = set(refs_in(list(attributes.values())))
    primary = [name for i, name in enumerate(names) if i not in referenced]
    values = substitute(op.resolved(attributes), names)
    return op.expression(primary, values)
