"""Keyword-only parameters of an operation: attributes (typed JSON defaults) and references."""

from __future__ import annotations

import ast
import math
from typing import Any

from ._annotations import TYPE_ALIASES, dotted_name, is_none, port_type
from ._interface import ATTRIBUTE_TYPES, Attribute, InterfaceError, Reference, type_of_value
from .types import ANY, REFERENCE_TYPES

_GENERIC_ATTRIBUTE_TYPES = {"list": "list", "List": "list", "tuple": "list", "dict": "dict",
                            "Dict": "dict", "Mapping": "dict", "Sequence": "list"}


def read_reference(arg: ast.arg, default: ast.expr | None) -> Reference:
    """A keyword-only parameter annotated with a reference type."""
    assert arg.annotation is not None
    kind = port_type(arg.annotation)
    if default is None:
        return Reference(arg.arg, kind)
    value = json_literal(default, f"reference {arg.arg!r}")
    if value is None:
        return Reference(arg.arg, kind)
    if not isinstance(value, str):
        raise InterfaceError(default.lineno, f"default of reference {arg.arg!r} must be a string "
                             f"naming the {kind}, or None")
    return Reference(arg.arg, kind, value)


_JSON_LITERALS = ("None, a bool, an int, a finite float, a string, or a list or a dict with "
                  "string keys of these")


def json_literal(node: ast.expr, what: str) -> Any:
    """The literal's value as JSON data (tuples become lists): values travel as JSON."""
    try:
        return _as_json(ast.literal_eval(node))
    except (ValueError, TypeError, SyntaxError):
        raise InterfaceError(node.lineno, f"default of {what} must be a literal of JSON data "
                             f"({_JSON_LITERALS}), not {ast.unparse(node)!r}") from None


def _as_json(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float) and math.isfinite(value):
        return value
    if isinstance(value, list | tuple):
        return [_as_json(item) for item in value]
    if isinstance(value, dict) and all(isinstance(key, str) for key in value):
        return {key: _as_json(item) for key, item in value.items()}
    raise ValueError(f"{value!r} is not JSON data")


def read_attribute(arg: ast.arg, default: ast.expr | None) -> Attribute:
    """A keyword-only parameter with a JSON default: its type from the annotation or default."""
    if default is None:
        raise InterfaceError(arg.lineno, f"attribute {arg.arg!r} needs a default value "
                             "(keyword-only parameters are attributes); give it one, or annotate "
                             f"it with a reference type ({', '.join(sorted(REFERENCE_TYPES))})")
    value = json_literal(default, f"attribute {arg.arg!r}")
    if arg.annotation is None:
        kind = type_of_value(value)
        attribute = Attribute(arg.arg, kind, value, nullable=value is None)
    else:
        kind, nullable, choices = _attribute_type(arg.annotation, arg.arg)
        attribute = Attribute(arg.arg, kind, value, nullable=nullable, choices=choices)
    if not attribute.accepts(value):
        raise InterfaceError(default.lineno, f"default {value!r} of attribute {arg.arg!r} is not "
                             f"of type {attribute.describe_type()}")
    return attribute


def _attribute_type(
    annotation: ast.expr, name: str
) -> tuple[str, bool, tuple[Any, ...] | None]:
    """(type, nullable, choices) of an attribute annotation."""
    unsupported = InterfaceError(
        annotation.lineno,
        f"attribute {name!r} has an unsupported type {ast.unparse(annotation)!r}: use int, "
        "float, str, bool, list, dict or Literal[...], optionally `| None`",
    )
    if isinstance(annotation, ast.Constant) and isinstance(annotation.value, str):
        try:
            annotation = ast.parse(annotation.value, mode="eval").body
        except SyntaxError:
            raise unsupported from None
    if is_none(annotation):
        return ANY, True, None
    if isinstance(annotation, ast.BinOp) and isinstance(annotation.op, ast.BitOr):
        sides = [annotation.left, annotation.right]
        nones = [side for side in sides if is_none(side)]
        if len(nones) != 1:
            raise unsupported
        other = sides[0] if sides[1] in nones else sides[1]
        kind, _, choices = _attribute_type(other, name)
        return kind, True, choices
    if isinstance(annotation, ast.Subscript):
        base = (dotted_name(annotation.value) or "").rsplit(".", 1)[-1]
        if base == "Optional":
            kind, _, choices = _attribute_type(annotation.slice, name)
            return kind, True, choices
        if base == "Literal":
            return _literal_choices(annotation.slice, name)
        if base in _GENERIC_ATTRIBUTE_TYPES:
            return _GENERIC_ATTRIBUTE_TYPES[base], False, None
        raise unsupported
    dotted = dotted_name(annotation)
    if dotted is None:
        raise unsupported
    dotted = TYPE_ALIASES.get(dotted, dotted)
    if dotted in ATTRIBUTE_TYPES:
        return dotted, False, None
    if dotted in _GENERIC_ATTRIBUTE_TYPES:
        return _GENERIC_ATTRIBUTE_TYPES[dotted], False, None
    raise unsupported


def _literal_choices(node: ast.expr, name: str) -> tuple[str, bool, tuple[Any, ...]]:
    elements = node.elts if isinstance(node, ast.Tuple) else [node]
    choices = tuple(json_literal(element, f"a Literal choice of {name!r}") for element in elements)
    nullable = None in choices
    choices = tuple(choice for choice in choices if choice is not None)
    kinds = {type_of_value(choice) for choice in choices}
    kind = kinds.pop() if len(kinds) == 1 else ANY
    return kind, nullable, choices
