"""An operation's interface: the ports, attributes and references its code declares.

The data here is what :func:`parse_interface` (in :mod:`._parse`) reads from code; the rules
for writing an operation are in that module's docstring.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Any

from .types import ANY

#: Name of the output port of an operation that returns a single value.
SINGLE_OUTPUT = "out"
ATTRIBUTE_TYPES = frozenset({"int", "float", "str", "bool", "list", "dict", ANY})


class InterfaceError(ValueError):
    """The code does not define a valid operation; ``line`` is 1-based (None if not known)."""

    def __init__(self, line: int | None, message: str) -> None:
        self.line = line
        self.message = message
        super().__init__(f"line {line}: {message}" if line is not None else message)

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.line, self.message))


@dataclass(frozen=True)
class Port:
    """An input or output port. ``required`` is False for inputs that have a default."""

    name: str
    type: str = ANY
    required: bool = True


@dataclass(frozen=True)
class Attribute:
    """A design-time constant; ``choices`` is set for ``Literal[...]`` annotations."""

    name: str
    type: str
    default: Any
    nullable: bool = False
    choices: tuple[Any, ...] | None = None

    def accepts(self, value: Any) -> bool:
        """Whether ``value`` is a valid value of this attribute."""
        if value is None:
            return self.nullable or self.type == ANY
        if self.choices is not None:
            return any(_is_choice(value, choice) for choice in self.choices)
        return value_matches_type(value, self.type)

    def describe_type(self) -> str:
        """The type as users should read it in an error message."""
        if self.choices is not None:
            text = "one of " + ", ".join(repr(choice) for choice in self.choices)
        else:
            text = self.type
        return f"{text} or None" if self.nullable else text


@dataclass(frozen=True)
class Reference:
    """A pointer to another project item; ``default`` (a string) makes it optional."""

    name: str
    type: str
    default: str | None = None

    @property
    def required(self) -> bool:
        return self.default is None


@dataclass(frozen=True)
class OperationInterface:
    """What an operation's code declares. ``line`` is the line of its ``def``."""

    function: str
    inputs: tuple[Port, ...] = ()
    outputs: tuple[Port, ...] = ()
    attributes: tuple[Attribute, ...] = ()
    references: tuple[Reference, ...] = ()
    line: int = 1
    doc: str | None = None
    # True when the function returns its single output bare (``-> Tensor``), False when it
    # returns a dict/tuple of named outputs.
    single_output: bool = field(default=False)

    def input(self, name: str) -> Port | None:
        return _find(self.inputs, name)

    def output(self, name: str) -> Port | None:
        return _find(self.outputs, name)

    def attribute(self, name: str) -> Attribute | None:
        return _find(self.attributes, name)

    def reference(self, name: str) -> Reference | None:
        return _find(self.references, name)

    def attribute_defaults(self) -> dict[str, Any]:
        """The attributes' defaults (copies: interfaces are cached and shared)."""
        return {attribute.name: copy.deepcopy(attribute.default) for attribute in self.attributes}

    def to_plain(self) -> dict[str, Any]:
        """The interface as plain JSON data (for display, export and APIs)."""
        return {
            "function": self.function,
            "line": self.line,
            "doc": self.doc,
            "inputs": [vars(port).copy() for port in self.inputs],
            "outputs": [{"name": port.name, "type": port.type} for port in self.outputs],
            "attributes": [
                {"name": a.name, "type": a.type, "default": copy.deepcopy(a.default),
                 "nullable": a.nullable,
                 "choices": list(a.choices) if a.choices is not None else None}
                for a in self.attributes
            ],
            "references": [vars(reference).copy() for reference in self.references],
        }


def _find(items: tuple[Any, ...], name: str) -> Any:
    for item in items:
        if item.name == name:
            return item
    return None


def _is_choice(value: Any, choice: Any) -> bool:
    # `==` alone would let True stand for 1 and 1.0 for 1; the type must fit as for plain
    # attributes (so an int may stand for a float choice, never a bool for an int).
    return value == choice and value_matches_type(value, type_of_value(choice))


def value_matches_type(value: Any, type_name: str) -> bool:
    """Whether a plain JSON value fits an attribute type (an int is a valid float)."""
    if type_name == ANY:
        return True
    if type_name == "bool":
        return isinstance(value, bool)
    if type_name == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if type_name == "float":  # NaN and infinities are not numbers a run can use
        return (isinstance(value, int | float) and not isinstance(value, bool)
                and math.isfinite(value))
    if type_name == "str":
        return isinstance(value, str)
    if type_name == "list":
        return isinstance(value, list | tuple)
    if type_name == "dict":
        return isinstance(value, dict)
    return False


def type_of_value(value: Any) -> str:
    """The attribute type a default value implies (None implies any)."""
    if value is None:
        return ANY
    for kind in ("bool", "int", "float", "str", "list", "dict"):
        if value_matches_type(value, kind):
            return kind
    return ANY
