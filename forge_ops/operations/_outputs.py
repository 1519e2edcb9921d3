"""An operation's outputs, read from its return annotation."""

from __future__ import annotations

import ast
import keyword
from collections.abc import Iterator

from ._annotations import dotted_name, port_type
from ._interface import SINGLE_OUTPUT, InterfaceError, Port
from .types import ANY


def read_outputs(
    function: ast.FunctionDef, module: ast.Module
) -> tuple[tuple[Port, ...], bool]:
    """The output ports and whether the function returns its single output bare."""
    returns = function.returns
    if returns is None:
        return (Port(SINGLE_OUTPUT, ANY),), True
    if isinstance(returns, ast.Constant) and returns.value is None:
        return (), False
    if isinstance(returns, ast.Dict):
        return _named_outputs(_dict_items(returns)), False
    name = dotted_name(returns)
    classes = {node.name: node for node in module.body if isinstance(node, ast.ClassDef)}
    if name in classes:
        return _named_outputs(_class_fields(classes[name])), False
    return (Port(SINGLE_OUTPUT, port_type(returns)),), True


def _dict_items(node: ast.Dict) -> Iterator[tuple[str, ast.expr, int]]:
    for key, value in zip(node.keys, node.values, strict=True):
        if not (isinstance(key, ast.Constant) and isinstance(key.value, str)):
            line = value.lineno if key is None else key.lineno
            raise InterfaceError(line, "output names in a `-> {...}` annotation must be string "
                                 "literals, e.g. -> {\"train\": Dataset, \"test\": Dataset}")
        yield key.value, value, key.lineno


def _class_fields(node: ast.ClassDef) -> Iterator[tuple[str, ast.expr, int]]:
    bases = {(dotted_name(base) or "").rsplit(".", 1)[-1] for base in node.bases}
    if not bases & {"NamedTuple", "TypedDict"}:
        raise InterfaceError(node.lineno, f"return type {node.name} must be a NamedTuple or "
                             "TypedDict to declare named outputs")
    for statement in node.body:
        if isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name):
            yield statement.target.id, statement.annotation, statement.lineno


def _named_outputs(items: Iterator[tuple[str, ast.expr, int]]) -> tuple[Port, ...]:
    ports: list[Port] = []
    for name, annotation, line in items:
        if not name.isidentifier() or keyword.iskeyword(name):
            raise InterfaceError(line, f"output name {name!r} must be a Python identifier")
        if any(port.name == name for port in ports):
            raise InterfaceError(line, f"output {name!r} is declared twice")
        ports.append(Port(name, port_type(annotation)))
    if not ports:
        raise InterfaceError(None, "the return annotation declares no outputs; write `-> None` "
                             "for an operation without outputs")
    return tuple(ports)
