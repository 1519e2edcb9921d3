"""Parameter and Buffer nodes: tensors a model holds directly (a class token, a position
embedding, a relative-position bias table, a layer-scale vector, an index buffer).

A ``Parameter`` or ``Buffer`` node has no inputs; its value is the tensor. Its name is the
original attribute path (``blocks.0.attn.relative_position_bias_table``), so the original's
state dict loads into the built or exported module strictly. Attributes:

- ``shape`` (list of ints, required) and ``dtype`` (default ``"float32"``);
- ``init``, how a fresh model fills it: ``zeros``, ``ones``, ``full`` (``value``), ``normal``
  and ``trunc_normal`` (``mean``, ``std``), ``uniform`` (``low``, ``high``), ``data``
  (``data``: the values, flattened, for computed buffers such as an index table) or ``packed``
  (``packed``: the raw values zlib-compressed and base64-encoded, for larger computed buffers
  such as an attention mask);
- ``requires_grad`` (Parameter, default true) and ``persistent`` (Buffer, default true: part
  of the state dict).

Building and exporting use the one expression :func:`init_source` writes. No torch import.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from forge_ops.arch._model import BUFFER, PARAMETER, ArchitectureError
from forge_ops.arch._op_base import DTYPES, literal

INITS: dict[str, tuple[str, ...]] = {
    "zeros": (),
    "ones": (),
    "full": ("value",),
    "normal": ("mean", "std"),
    "trunc_normal": ("mean", "std"),
    "uniform": ("low", "high"),
    "data": ("data",),
    "packed": ("packed",),
}
_DEFAULTS: dict[str, Any] = {
    "dtype": "float32", "init": "zeros", "value": 0.0, "mean": 0.0, "std": 1.0, "low": 0.0,
    "high": 1.0, "data": [], "packed": "",
}
_FLAGS = {PARAMETER: "requires_grad", BUFFER: "persistent"}
DATA_LIMIT = 4096  # values a Buffer keeps as a readable list (an index table is ~2,400)
PACKED_LIMIT = 1 << 20  # characters of packed values a Buffer keeps in the document


def attribute_names(node_type: str) -> list[str]:
    return ["shape", "dtype", "init", "value", "mean", "std", "low", "high", "data", "packed",
            _FLAGS[node_type]]


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def check_tensor_node(label: str, node_type: str, attributes: Mapping[str, Any]) -> None:
    """Raise ArchitectureError unless a Parameter/Buffer node's attributes make sense."""
    names = attribute_names(node_type)
    for key in attributes:
        if key not in names:
            raise ArchitectureError(
                f"{label}: unknown attribute {key!r} (attributes of {node_type}: "
                f"{', '.join(names)})"
            )
    shape = attributes.get("shape")
    if not isinstance(shape, list) or not all(
        isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape
    ):
        raise ArchitectureError(f"{label}: set shape, a list of sizes such as [1, 1, 768]")
    dtype = attributes.get("dtype", "float32")
    if dtype not in DTYPES:
        raise ArchitectureError(f"{label}: dtype {dtype!r} is not one of {sorted(DTYPES)}")
    init = attributes.get("init", "zeros")
    if init not in INITS:
        raise ArchitectureError(f"{label}: init must be one of {', '.join(INITS)}, got {init!r}")
    for key in ("value", "mean", "std", "low", "high"):
        if key in attributes and not (
            _number(attributes[key]) or attributes[key] in ({"float": "inf"}, {"float": "-inf"})
        ):
            raise ArchitectureError(f"{label}: {key} must be a number")
    flag = _FLAGS[node_type]
    if not isinstance(attributes.get(flag, True), bool):
        raise ArchitectureError(f"{label}: {flag} must be true or false")
    if init == "packed":
        packed = attributes.get("packed")
        if not isinstance(packed, str) or not re.fullmatch(r"[A-Za-z0-9+/=]*", packed):
            raise ArchitectureError(f"{label}: packed must be base64 text")
    if init == "data":
        data = attributes.get("data")
        if not isinstance(data, list) or not all(_number(v) or isinstance(v, bool) for v in data):
            raise ArchitectureError(f"{label}: data must be a flat list of numbers")
        if len(data) != math.prod(shape):
            raise ArchitectureError(
                f"{label}: data has {len(data)} values but shape {shape} holds "
                f"{math.prod(shape)}"
            )


def init_source(attributes: Mapping[str, Any]) -> str:
    """The expression that creates a fresh node's tensor (checked attributes)."""
    get = {**_DEFAULTS, **attributes}.__getitem__
    shape = literal(list(get("shape")))
    dtype = get("dtype")
    typed = "" if dtype == "float32" else f", dtype=torch.{dtype}"
    init = get("init")
    if init == "zeros":
        return f"torch.zeros({shape}{typed})"
    if init == "ones":
        return f"torch.ones({shape}{typed})"
    if init == "full":
        return f"torch.full({shape}, {literal(get('value'))}{typed})"
    if init == "data":
        return f"torch.tensor({literal(list(get('data')))}{typed}).reshape({shape})"
    if init == "packed":
        raw = f"zlib.decompress(base64.b64decode({get('packed')!r}))"
        return f"torch.frombuffer(bytearray({raw}), dtype=torch.{dtype}).reshape({shape})"
    empty = f"torch.empty({shape}{typed})"
    if init == "normal":
        return f"{empty}.normal_({literal(get('mean'))}, {literal(get('std'))})"
    if init == "trunc_normal":
        mean, std = literal(get("mean")), literal(get("std"))
        return f"nn.init.trunc_normal_({empty}, mean={mean}, std={std})"
    return f"{empty}.uniform_({literal(get('low'))}, {literal(get('high'))})"


def tensor_count(attributes: Mapping[str, Any]) -> int:
    """How many values the node holds."""
    return math.prod(attributes.get("shape") or [])


def is_trainable(node_type: str, attributes: Mapping[str, Any]) -> bool:
    return node_type == PARAMETER and attributes.get("requires_grad", True) is True


def is_persistent(node_type: str, attributes: Mapping[str, Any]) -> bool:
    return node_type == PARAMETER or attributes.get("persistent", True) is True
