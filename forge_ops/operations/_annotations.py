"""Reading type annotations in operation code: port types and their spellings."""

from __future__ import annotations

import ast

from ._interface import InterfaceError
from .types import ANY

# Spellings that mean the same port type.
TYPE_ALIASES = {
    "torch.Tensor": "Tensor",
    "nn.Module": "Model",
    "torch.nn.Module": "Model",
    "typing.Any": ANY,
    "object": ANY,
}


def dotted_name(node: ast.expr) -> str | None:
    """``torch.nn.Module`` for a name or attribute chain; None for anything else."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = dotted_name(node.value)
        return f"{base}.{node.attr}" if base else None
    return None


def port_type(annotation: ast.expr | None) -> str:
    """The port type an annotation names, with aliases resolved (none means ``Any``)."""
    if annotation is None:
        return ANY
    annotation = parsed_annotation(annotation)
    name = dotted_name(annotation) or ast.unparse(annotation)
    return TYPE_ALIASES.get(name, name)


def input_type(annotation: ast.expr | None) -> str:
    """An input port's type: ``X | None`` and ``Optional[X]`` are ``X``, so such an input
    connects to an ``X`` output (whether it is optional depends on its default)."""
    if annotation is None:
        return ANY
    return port_type(_without_none(parsed_annotation(annotation)))


def parsed_annotation(annotation: ast.expr) -> ast.expr:
    """A string annotation (``"Tensor"``) parsed into the expression it quotes."""
    if isinstance(annotation, ast.Constant) and isinstance(annotation.value, str):
        text = annotation.value
        try:
            return ast.parse(text, mode="eval").body
        except SyntaxError:
            raise InterfaceError(annotation.lineno, f"annotation {text!r} is not a valid type "
                                 "expression") from None
    return annotation


def _without_none(annotation: ast.expr) -> ast.expr:
    if isinstance(annotation, ast.BinOp) and isinstance(annotation.op, ast.BitOr):
        sides = [annotation.left, annotation.right]
        others = [side for side in sides if not is_none(side)]
        if len(others) == 1:
            return others[0]
    if (isinstance(annotation, ast.Subscript)
            and (dotted_name(annotation.value) or "").rsplit(".", 1)[-1] == "Optional"):
        return annotation.slice
    return annotation


def is_none(node: ast.expr) -> bool:
    """Whether an annotation is ``None``."""
    return isinstance(node, ast.Constant) and node.value is None
