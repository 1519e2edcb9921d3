"""The parts every functional op is made of: attributes, values that name inputs, literals.

A functional node's attribute value is plain JSON. Besides numbers, strings, lists and ``null``
it may hold these forms, each a one-key map:

- ``{"input": k}``: the value of the node's input ``k`` (a tensor, or a size read from one:
  ``x.reshape(b, -1)`` keeps ``b`` symbolic, so exported code works at any batch size);
- ``{"slice": [start, stop, step]}``: a slice in an index (``x[:, 1:]``); ``"..."`` is
  ``Ellipsis`` there and ``null`` a new axis;
- ``{"dtype": "float32"}``: a torch dtype; ``{"float": "-inf"}``: a float JSON cannot hold;
- ``{"list": [...]}``: a Python list where a function needs one (plain lists are written as
  tuples, as torch takes sizes).

The inputs no attribute refers to are the op's *primary* inputs, taken in order (``relu`` has
one, ``add`` several). No torch import here.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from forge_ops.arch._model import ArchitectureError

_REQUIRED = object()
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
DTYPES = frozenset(
    {
        "float32", "float64", "float16", "bfloat16", "int64", "int32", "int16", "int8",
        "uint8", "bool", "complex64", "complex128", "float", "double", "half", "long", "int",
    }
)
_SPECIAL_FLOATS = {"inf": "float('inf')", "-inf": "float('-inf')", "nan": "float('nan')"}


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
    """A functional node type. ``expression(inputs, attributes)`` returns Python source.

    ``inputs`` are the names of the primary inputs; attribute values that refer to inputs
    arrive as :class:`Code`. ``tensors`` names the attributes that may instead be given as
    primary inputs (in order); ``min_inputs``/``max_inputs`` count primary inputs.
    """

    name: str
    doc: str
    attributes: dict[str, Attr]
    min_inputs: int
    max_inputs: int | None  # None: any number
    expression: Callable[[list[str], dict[str, Any]], str]
    tensors: tuple[str, ...] = field(default=())
    helper: str = ""  # source of a function the expression calls (defined once per module)

    def resolved(self, attributes: Mapping[str, Any]) -> dict[str, Any]:
        """Attributes with defaults filled in (no validation)."""
        values = {k: a.default for k, a in self.attributes.items() if not a.required}
        values.update(attributes)
        return values


class Code(str):
    """Python source written as is (an input's variable name), never quoted."""


def form_of(value: Any) -> str | None:
    """Which special form a value is (``input``, ``dtype``, ``float``, ``slice``, ``list``),
    or None. The form's content must have its type, so a keyword map whose one key is
    ``dtype`` (``{"dtype": {"dtype": "bool"}}``) stays a keyword map."""
    if not isinstance(value, Mapping) or len(value) != 1:
        return None
    (key, content), = value.items()
    fits = {
        "input": isinstance(content, int) and not isinstance(content, bool),
        "dtype": isinstance(content, str),
        "float": isinstance(content, str),
        "slice": isinstance(content, list) and len(content) == 3,
        "list": isinstance(content, list),
    }
    return str(key) if fits.get(str(key), False) else None


def is_ref(value: Any) -> bool:
    """Whether a value is ``{"input": k}`` (``k`` an int; a keyword argument named ``input``
    holding anything else is not a reference)."""
    return form_of(value) == "input"


def refs_in(value: Any) -> list[int]:
    """The input positions an attribute value refers to, in order of appearance."""
    found: list[int] = []
    if is_ref(value):
        found.append(value["input"])
    elif isinstance(value, Mapping):
        for item in value.values():
            found += refs_in(item)
    elif isinstance(value, list | tuple):
        for item in value:
            found += refs_in(item)
    return found


def substitute(value: Any, names: list[str]) -> Any:
    """Replace every ``{"input": k}`` with the code naming input ``k``."""
    if is_ref(value):
        return Code(names[value["input"]])
    if isinstance(value, Mapping):
        return {k: substitute(v, names) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute(v, names) for v in value]
    return value


def literal(value: Any) -> str:
    """Python source for a plain JSON value (lists become tuples, as torch expects)."""
    if isinstance(value, Code):
        return str(value)
    if isinstance(value, list):
        inner = ", ".join(literal(v) for v in value)
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    if isinstance(value, Mapping):
        form = form_of(value)
        if form == "dtype":
            return f"torch.{value['dtype']}"
        if form == "float":
            return _SPECIAL_FLOATS[value["float"]]
        if form == "slice":
            start, stop, step = value["slice"]
            return f"slice({literal(start)}, {literal(stop)}, {literal(step)})"
        if form == "list":
            return "[" + ", ".join(literal(v) for v in value["list"]) + "]"
        return "{" + ", ".join(f"{k!r}: {literal(v)}" for k, v in value.items()) + "}"
    if isinstance(value, float) and not math.isfinite(value):
        return _SPECIAL_FLOATS["nan" if math.isnan(value) else ("-inf" if value < 0 else "inf")]
    return repr(value)


def index_source(value: Any) -> str:
    """An index as written between brackets: ``:, 0``, ``..., None``, ``1::2``."""
    items = value if isinstance(value, list) else [value]
    parts = []
    for item in items:
        if isinstance(item, Mapping) and list(item) == ["slice"]:
            bounds = ["" if b is None else literal(b) for b in item["slice"]]
            parts.append(":".join(bounds[:2]) + (f":{bounds[2]}" if bounds[2] else ""))
        elif item == "...":
            parts.append("...")
        else:
            parts.append(literal(item))
    if isinstance(value, list) and len(parts) == 1:
        return parts[0] + ","
    return ", ".join(parts) if parts else "()"


def kwargs_source(values: Mapping[str, Any], op_attrs: Mapping[str, Attr],
                  skip: tuple[str, ...] = ()) -> str:
    """``, name=value`` for every attribute that differs from its default."""
    parts = []
    for key, attr in op_attrs.items():
        if key in skip:
            continue
        value = values.get(key, attr.default)
        if attr.required or value != attr.default:
            parts.append(f", {key}={literal(value)}")
    return "".join(parts)


def check_value(label: str, key: str, value: Any, inputs: int) -> None:
    """Raise ArchitectureError unless an attribute value is plain data of the known forms.

    The forms are written into Python source, so this is what keeps an edited document from
    smuggling code into a built or exported module.
    """
    where = f"{label}, attribute {key!r}"
    if value is None or isinstance(value, bool | int | float | str):
        return
    if isinstance(value, list):
        for item in value:
            check_value(label, key, item, inputs)
        return
    if not isinstance(value, Mapping):
        raise ArchitectureError(f"{where}: {value!r} is not plain data")
    if is_ref(value):
        k = value["input"]
        if not 0 <= k < inputs:
            raise ArchitectureError(f"{where}: {{'input': {k!r}}} names no input (it has {inputs})")
    elif form_of(value) == "dtype":
        if value["dtype"] not in DTYPES:
            raise ArchitectureError(f"{where}: unknown dtype {value['dtype']!r}")
    elif form_of(value) == "float":
        if value["float"] not in _SPECIAL_FLOATS:
            raise ArchitectureError(f"{where}: float must be one of {sorted(_SPECIAL_FLOATS)}")
    elif form_of(value) in {"list", "slice"}:
        check_value(label, key, next(iter(value.values())), inputs)
    else:
        for name, item in value.items():
            if not _IDENT.match(str(name)):
                raise ArchitectureError(f"{where}: {name!r} is not a keyword name")
            check_value(label, key, item, inputs)


def is_identifier(text: Any) -> bool:
    return isinstance(text, str) and _IDENT.match(text) is not None


def is_dotted_path(text: Any) -> bool:
    """``package.module.name``: identifiers joined by dots (no calls, no brackets)."""
    return isinstance(text, str) and all(_IDENT.match(p) for p in text.split("."))
