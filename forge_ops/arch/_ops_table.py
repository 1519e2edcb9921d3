"""Functional ops declared by their PyTorch signature, and the generic ``call``/``method`` ops.

Each entry of :data:`_SIGNATURES` is ``(name, "target(parameters)", doc)``; parameters annotated
``T`` without a default are the op's primary (tensor) inputs, the rest are attributes (an
attribute may still hold ``{"input": k}``: ``F.layer_norm``'s ``weight`` is a Parameter node).
A target starting with ``.`` is a tensor method. Imported torch code calls anything else as
``call`` (a torch or library function by its import path) or ``method`` (a tensor method by
name), so importing never has to refuse a plain tensor operation. No torch import here.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from forge_ops.arch._model import ArchitectureError
from forge_ops.arch._op_base import (
    Attr,
    FunctionalOp,
    is_dotted_path,
    is_identifier,
    literal,
)

_SIGNATURES: list[tuple[str, str, str]] = [
    (
        "layer_norm",
        "F.layer_norm(input: T, normalized_shape, weight=None, bias=None, eps=1e-05)",
        "Layer normalisation over the trailing dimensions (weight/bias may be Parameter nodes).",
    ),
    (
        "group_norm",
        "F.group_norm(input: T, num_groups, weight=None, bias=None, eps=1e-05)",
        "Group normalisation.",
    ),
    ("linear", "F.linear(input: T, weight: T, bias=None)", "x @ weight.T + bias."),
    (
        "scaled_dot_product_attention",
        "F.scaled_dot_product_attention(query: T, key: T, value: T, attn_mask=None,"
        " dropout_p=0.0, is_causal=False, scale=None)",
        "Attention softmax(q k^T / sqrt(d)) v.",
    ),
    ("hardswish", "F.hardswish(input: T)", "Hard swish."),
    ("hardsigmoid", "F.hardsigmoid(input: T)", "Hard sigmoid."),
    ("mish", "F.mish(input: T)", "Mish, x * tanh(softplus(x))."),
    ("softplus", "F.softplus(input: T, beta=1.0, threshold=20.0)", "Smooth ReLU."),
    ("pad", "F.pad(input: T, pad, mode='constant', value=None)", "Pad the trailing dimensions."),
    (
        "interpolate",
        "F.interpolate(input: T, size=None, scale_factor=None, mode='nearest', align_corners=None,"
        " recompute_scale_factor=None, antialias=False)",
        "Resize (nearest, bilinear, ...).",
    ),
    (
        "normalize",
        "F.normalize(input: T, p=2.0, dim=1, eps=1e-12)",
        "Scale to unit norm along a dimension.",
    ),
    (
        "unfold",
        "F.unfold(input: T, kernel_size, dilation=1, padding=0, stride=1)",
        "Sliding blocks into columns (im2col).",
    ),
    (
        "fold",
        "F.fold(input: T, output_size, kernel_size, dilation=1, padding=0, stride=1)",
        "Columns back into an image (col2im).",
    ),
    (
        "adaptive_max_pool2d",
        "F.adaptive_max_pool2d(input: T, output_size)",
        "2D max pooling to a fixed output size.",
    ),
    ("pixel_shuffle", "F.pixel_shuffle(input: T, upscale_factor)", "Channels to space."),
    (
        "channel_shuffle",
        "F.channel_shuffle(input: T, groups)",
        "Interleave channel groups (ShuffleNet).",
    ),
    (
        "roll",
        "torch.roll(input: T, shifts, dims=None)",
        "Rotate along dimensions (shifted windows).",
    ),
    (
        "where",
        "torch.where(condition: T, input: T, other: T)",
        "Pick from input where condition, else other.",
    ),
    ("einsum", "torch.einsum(equation, *operands: T)", "Einstein summation."),
    ("bmm", "torch.bmm(input: T, mat2: T)", "Batched matrix product."),
    ("clamp", "torch.clamp(input: T, min=None, max=None)", "Limit values to [min, max]."),
    ("expand", ".expand(input: T, *size)", "Broadcast to a larger size (-1 keeps a dimension)."),
    ("expand_as", ".expand_as(input: T, other: T)", "Broadcast to another tensor's size."),
    ("repeat", ".repeat(input: T, *sizes)", "Tile along dimensions."),
    (
        "unbind",
        ".unbind(input: T, dim=0)",
        "Split into a tuple along a dimension (take one with getitem).",
    ),
    ("split", ".split(input: T, split_size, dim=0)", "Split into pieces (take one with getitem)."),
    ("unflatten", ".unflatten(input: T, dim, sizes)", "Expand one dimension into several."),
    ("sum", ".sum(input: T, dim=None, keepdim=False)", "Sum over dimensions."),
    ("masked_fill", ".masked_fill(input: T, mask: T, value)", "Fill where mask is true."),
    ("type_as", ".type_as(input: T, other: T)", "Cast to another tensor's dtype."),
    ("float", ".float(input: T)", "Cast to float32."),
    ("dim", ".dim(input: T)", "Number of dimensions (an int)."),
]
# Ops reached both as ``torch.name(x, ...)`` and as ``x.name(...)`` with the same arguments.
BOTH_FORMS = frozenset({"roll", "clamp", "bmm", "sum", "split", "unbind", "masked_fill"})

# Namespaces whose functions may run in the TUI's shape inference: pure tensor maths.
_SAFE_NAMESPACES = (
    "torch.nn.functional.", "torch.linalg.", "torch.fft.", "torch.special.", "math.",
    "operator.",
)
_UNSAFE_NAME = re.compile(
    r"(^_|save|load|file|seed|set_|compile|jit|hub|cuda|distributed|library|backends|"
    r"utils|classes|ops|profiler|export|storage|share|pin_memory|register)"
)


@dataclass(frozen=True)
class _Param:
    name: str
    tensor: bool
    required: bool
    variadic: bool
    default: Any


def _parse(params: str) -> list[_Param]:
    func = ast.parse(f"def f({params}): pass").body[0]
    assert isinstance(func, ast.FunctionDef)
    args = func.args
    defaults = [None] * (len(args.args) - len(args.defaults)) + list(args.defaults)
    found = [
        _Param(
            a.arg,
            a.annotation is not None,
            d is None,
            False,
            _plain(ast.literal_eval(d)) if d is not None else None,
        )
        for a, d in zip(args.args, defaults, strict=True)
    ]
    if args.vararg is not None:
        vararg = args.vararg
        found.append(_Param(vararg.arg, vararg.annotation is not None, False, True, []))
    return found


def _plain(value: Any) -> Any:
    return [_plain(v) for v in value] if isinstance(value, tuple | list) else value


def _signature_op(name: str, target: str, params: list[_Param], doc: str) -> FunctionalOp:
    tensors = tuple(p.name for p in params if p.tensor and p.required)
    variadic_tensors = any(p.tensor and p.variadic for p in params)
    attributes = {
        p.name: Attr("tensor" if p.tensor else "any") if p.required
        else Attr("list" if p.variadic else "any", p.default)
        for p in params
        if not (p.tensor and p.variadic)
    }

    def expression(inputs: list[str], values: dict[str, Any]) -> str:
        queue = list(inputs)
        positional: list[str] = []
        keywords: list[str] = []
        for p in params:
            if p.variadic:
                spread = queue if p.tensor else [literal(v) for v in values.get(p.name) or []]
                positional += spread
                queue = [] if p.tensor else queue
            elif p.required:
                if p.name in values:
                    positional.append(literal(values[p.name]))
                else:
                    positional.append(queue.pop(0))
            elif p.name in values and values[p.name] != p.default:
                keywords.append(f"{p.name}={literal(values[p.name])}")
        if target.startswith("."):
            return f"{positional[0]}{target}({', '.join(positional[1:] + keywords)})"
        return f"{target}({', '.join(positional + keywords)})"

    return FunctionalOp(
        name,
        doc,
        attributes,
        len(tensors),
        None if variadic_tensors else len(tensors),
        expression,
        tensors,
    )


def signatures() -> dict[str, tuple[str, list[_Param]]]:
    """Op name -> (target, parameters), for the importer's argument binding."""
    found: dict[str, tuple[str, list[_Param]]] = {}
    for name, signature, _ in _SIGNATURES:
        target, _, params = signature.partition("(")
        found[name] = (target, _parse(params.removesuffix(")")))
    return found


def function_source(path: str) -> str:
    """How exported code names a function: ``F.x`` for torch.nn.functional, else its path."""
    if path.startswith("torch.nn.functional."):
        return "F." + path.removeprefix("torch.nn.functional.")
    return path


def is_safe_function(path: str) -> bool:
    """Whether a ``call`` node's function is pure tensor maths that may run outside a job."""
    if path.startswith(_SAFE_NAMESPACES):
        return _UNSAFE_NAME.search(path.rsplit(".", 1)[1]) is None
    if path.startswith("torch.") and path.count(".") == 1:
        return _UNSAFE_NAME.search(path.split(".", 1)[1]) is None
    return False


def _args_source(values: dict[str, Any]) -> str:
    parts = [literal(v) for v in values.get("args") or []]
    parts += [f"{k}={literal(v)}" for k, v in (values.get("kwargs") or {}).items()]
    return ", ".join(parts)


def _call(inputs: list[str], values: dict[str, Any]) -> str:
    return f"{function_source(values['function'])}({_args_source(values)})"


def _method(inputs: list[str], values: dict[str, Any]) -> str:
    return f"{inputs[0]}.{values['name']}({_args_source(values)})"


def _check_call(label: str, attributes: dict[str, Any]) -> None:
    if not is_dotted_path(attributes.get("function")):
        raise ArchitectureError(f"{label}: function must be an import path such as torch.roll")


def _check_name(label: str, attributes: dict[str, Any]) -> None:
    name = attributes.get("name")
    if not is_identifier(name) or str(name).startswith("_"):
        raise ArchitectureError(f"{label}: name must be a public attribute name, got {name!r}")


def _size(inputs: list[str], values: dict[str, Any]) -> str:
    dim = values.get("dim")
    return f"{inputs[0]}.shape" if dim is None else f"{inputs[0]}.size({literal(dim)})"


_GENERIC: list[tuple[str, str, dict[str, Attr], int, int | None, Callable[..., str]]] = [
    (
        "call",
        "A torch or library function by import path, with args and kwargs.",
        {"function": Attr("str"), "args": Attr("list", []), "kwargs": Attr("dict", {})},
        0,
        0,
        _call,
    ),
    (
        "method",
        "A tensor method by name, with args and kwargs.",
        {"name": Attr("str"), "args": Attr("list", []), "kwargs": Attr("dict", {})},
        1,
        1,
        _method,
    ),
    (
        "attribute",
        "An attribute of the input (dtype, device, T, ...).",
        {"name": Attr("str")},
        1,
        1,
        lambda inputs, values: f"{inputs[0]}.{values['name']}",
    ),
    (
        "layer_tensor",
        "A tensor of a layer in this architecture (its weight's dtype or device, a tied weight).",
        {"layer": Attr("str"), "name": Attr("str")},
        0,
        0,
        lambda inputs, values: f"self.{values['layer']}.{values['name']}",
    ),
    (
        "size",
        "A size read from a tensor (x.size(dim)), or its whole shape; stays symbolic.",
        {"dim": Attr("int | None", None)},
        1,
        1,
        _size,
    ),
]
CHECKS: dict[str, Callable[[str, dict[str, Any]], None]] = {
    "call": _check_call,
    "method": _check_name,
    "attribute": _check_name,
    "layer_tensor": _check_name,
}


def generated_ops() -> list[FunctionalOp]:
    """The signature-declared ops and the generic ones."""
    docs = {name: doc for name, _, doc in _SIGNATURES}
    ops = [
        _signature_op(name, target, params, docs[name])
        for name, (target, params) in signatures().items()
    ]
    ops += [FunctionalOp(*entry) for entry in _GENERIC]
    return ops
