"""An operation's interface (ports, attributes, references) read from its code with ``ast``.

The code is never executed here. Rules (what users see in the code editor's help):

- The operation is the **last public top-level function** (a ``def`` whose name does not start
  with ``_``). Earlier functions and classes are helpers.
- **Positional parameters are input ports.** The annotation is the port type (``Tensor``,
  ``Dataset``, ``Model``, ``Metrics``, ``Any``, or any other name, matched by spelling); no
  annotation means ``Any``, and ``X | None`` / ``Optional[X]`` mean ``X``. A positional parameter
  with a default is an optional input. Each parameter name may be used once.
- **Keyword-only parameters** (after ``*``) are attributes and must have a default that is JSON
  data (None, a bool, int, finite float or string, or lists and string-keyed dicts of those). Their
  type comes from the annotation (``int``, ``float``, ``str``, ``bool``, ``list``, ``dict``,
  ``Literal[...]`` for a fixed set of choices, ``X | None`` to allow ``None``) or else from the
  default's type.
- A keyword-only parameter annotated with a reference type (``Architecture``, ``Criterion``,
  ``Layer``, ``Artifact``) is a **reference**; a string default makes it optional.
- **The return annotation gives the outputs**: ``-> None`` means none; a single type means one
  output port named ``out`` (no annotation at all means ``out: Any``); several named outputs are
  written as a dict literal ``-> {"train": Dataset, "test": Dataset}`` or as the name of a
  ``NamedTuple``/``TypedDict`` class defined in the same code. With several outputs the function
  returns a dict with those keys (or a tuple/NamedTuple in that order).
"""

from __future__ import annotations

import ast
import copy
import keyword
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from .types import ANY, REFERENCE_TYPES

__all__ = [
    "ATTRIBUTE_TYPES",
    "SINGLE_OUTPUT",
    "Attribute",
    "InterfaceError",
    "InterfaceTracker",
    "OperationInterface",
    "Port",
    "Reference",
    "parse_interface",
]

#: Name of the output port of an operation that returns a single value.
SINGLE_OUTPUT = "out"
ATTRIBUTE_TYPES = frozenset({"int", "float", "str", "bool", "list", "dict", ANY})

# Spellings that mean the same port type.
_TYPE_ALIASES = {
    "torch.Tensor": "Tensor",
    "nn.Module": "Model",
    "torch.nn.Module": "Model",
    "typing.Any": ANY,
    "object": ANY,
}
_GENERIC_ATTRIBUTE_TYPES = {"list": "list", "List": "list", "tuple": "list", "dict": "dict",
                            "Dict": "dict", "Mapping": "dict", "Sequence": "list"}


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
    return value == choice and value_matches_type(value, _type_of_value(choice))


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


class InterfaceTracker:
    """Keeps the last good interface of a code text that is being edited.

    ``update(code)`` re-parses: on success ``interface`` is replaced and ``error`` cleared; on
    failure ``error`` is set and ``interface`` keeps the last good value (None until one parsed).
    """

    def __init__(self, code: str | None = None) -> None:
        self.interface: OperationInterface | None = None
        self.error: InterfaceError | None = None
        if code is not None:
            self.update(code)

    def update(self, code: str) -> OperationInterface | None:
        try:
            self.interface = parse_interface(code)
            self.error = None
        except InterfaceError as exc:
            self.error = exc
        return self.interface


_TOO_DEEP = ("code nested too deeply to parse; split the deepest expression into several "
             "statements")


@lru_cache(maxsize=512)
def parse_interface(code: str) -> OperationInterface:
    """Read the operation interface declared by ``code``; raise InterfaceError if there is none."""
    module = _parse_module(code)
    function = _operation_function(module)
    try:
        return _read_interface(function, module)
    except (RecursionError, MemoryError):
        # ast.unparse and our own walk recurse over expressions, which may be deeper than the
        # stack allows.
        raise InterfaceError(function.lineno, _TOO_DEEP) from None


def _parse_module(code: str) -> ast.Module:
    try:
        return ast.parse(code)
    except SyntaxError as exc:
        raise InterfaceError(exc.lineno, f"syntax error: {exc.msg}") from None
    except (RecursionError, MemoryError):
        # Deep nesting (e.g. 100k chained `+` or unary `-`) overflows CPython's parser or its
        # AST construction; no line is known.
        raise InterfaceError(1, _TOO_DEEP) from None


def _read_interface(function: ast.FunctionDef, module: ast.Module) -> OperationInterface:
    args = function.args
    _check_unique_parameters(args)
    if args.vararg is not None:
        raise InterfaceError(function.lineno, f"*{args.vararg.arg} cannot be a port: give each "
                             "input its own positional parameter")
    if args.kwarg is not None:
        raise InterfaceError(function.lineno, f"**{args.kwarg.arg} cannot be an attribute: give "
                             "each attribute its own keyword-only parameter with a default")
    positional = [*args.posonlyargs, *args.args]
    first_default = len(positional) - len(args.defaults)
    inputs = tuple(
        Port(arg.arg, _input_type(arg.annotation), required=index < first_default)
        for index, arg in enumerate(positional)
    )
    attributes: list[Attribute] = []
    references: list[Reference] = []
    for arg, default in zip(args.kwonlyargs, args.kw_defaults, strict=True):
        if arg.annotation is not None and _port_type(arg.annotation) in REFERENCE_TYPES:
            references.append(_reference(arg, default))
        else:
            attributes.append(_attribute(arg, default))
    outputs, single = _outputs(function, module)
    return OperationInterface(
        function=function.name,
        inputs=inputs,
        outputs=outputs,
        attributes=tuple(attributes),
        references=tuple(references),
        line=function.lineno,
        doc=ast.get_docstring(function),
        single_output=single,
    )


def _check_unique_parameters(args: ast.arguments) -> None:
    # The parser already NFKC-normalises identifiers (as Python does), so `ﬁ` arrives as `fi`.
    seen: set[str] = set()
    for arg in (*args.posonlyargs, *args.args, args.vararg, *args.kwonlyargs, args.kwarg):
        if arg is None:
            continue
        if arg.arg in seen:
            raise InterfaceError(arg.lineno, f"parameter {arg.arg!r} is declared twice; rename "
                                 "one of them")
        seen.add(arg.arg)


def _operation_function(module: ast.Module) -> ast.FunctionDef:
    public = [
        node for node in module.body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and not node.name.startswith("_")
    ]
    if not public:
        raise InterfaceError(None, "no operation function: define a public top-level function "
                             "(`def name(...)`); the last one in the code is the operation")
    last = public[-1]
    if isinstance(last, ast.AsyncFunctionDef):
        raise InterfaceError(last.lineno, f"operation function {last.name} must be a plain `def`, "
                             "not `async def`")
    return last


def _dotted(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return f"{base}.{node.attr}" if base else None
    return None


def _port_type(annotation: ast.expr | None) -> str:
    if annotation is None:
        return ANY
    annotation = _parsed_annotation(annotation)
    name = _dotted(annotation) or ast.unparse(annotation)
    return _TYPE_ALIASES.get(name, name)


def _input_type(annotation: ast.expr | None) -> str:
    """An input port's type: ``X | None`` and ``Optional[X]`` are ``X``, so such an input
    connects to an ``X`` output (whether it is optional depends on its default)."""
    if annotation is None:
        return ANY
    return _port_type(_without_none(_parsed_annotation(annotation)))


def _parsed_annotation(annotation: ast.expr) -> ast.expr:
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
        others = [side for side in sides if not _is_none(side)]
        if len(others) == 1:
            return others[0]
    if (isinstance(annotation, ast.Subscript)
            and (_dotted(annotation.value) or "").rsplit(".", 1)[-1] == "Optional"):
        return annotation.slice
    return annotation


def _is_none(node: ast.expr) -> bool:
    return isinstance(node, ast.Constant) and node.value is None


def _reference(arg: ast.arg, default: ast.expr | None) -> Reference:
    assert arg.annotation is not None
    kind = _port_type(arg.annotation)
    if default is None:
        return Reference(arg.arg, kind)
    value = _literal(default, f"reference {arg.arg!r}")
    if value is None:
        return Reference(arg.arg, kind)
    if not isinstance(value, str):
        raise InterfaceError(default.lineno, f"default of reference {arg.arg!r} must be a string "
                             f"naming the {kind}, or None")
    return Reference(arg.arg, kind, value)


_JSON_LITERALS = ("None, a bool, an int, a finite float, a string, or a list or a dict with "
                  "string keys of these")


def _literal(node: ast.expr, what: str) -> Any:
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


def _attribute(arg: ast.arg, default: ast.expr | None) -> Attribute:
    if default is None:
        raise InterfaceError(arg.lineno, f"attribute {arg.arg!r} needs a default value "
                             "(keyword-only parameters are attributes); give it one, or annotate "
                             f"it with a reference type ({', '.join(sorted(REFERENCE_TYPES))})")
    value = _literal(default, f"attribute {arg.arg!r}")
    if arg.annotation is None:
        kind = _type_of_value(value)
        attribute = Attribute(arg.arg, kind, value, nullable=value is None)
    else:
        kind, nullable, choices = _attribute_type(arg.annotation, arg.arg)
        attribute = Attribute(arg.arg, kind, value, nullable=nullable, choices=choices)
    if not attribute.accepts(value):
        raise InterfaceError(default.lineno, f"default {value!r} of attribute {arg.arg!r} is not "
                             f"of type {attribute.describe_type()}")
    return attribute


def _type_of_value(value: Any) -> str:
    if value is None:
        return ANY
    for kind in ("bool", "int", "float", "str", "list", "dict"):
        if value_matches_type(value, kind):
            return kind
    return ANY


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
    if _is_none(annotation):
        return ANY, True, None
    if isinstance(annotation, ast.BinOp) and isinstance(annotation.op, ast.BitOr):
        sides = [annotation.left, annotation.right]
        nones = [side for side in sides if _is_none(side)]
        if len(nones) != 1:
            raise unsupported
        other = sides[0] if sides[1] in nones else sides[1]
        kind, _, choices = _attribute_type(other, name)
        return kind, True, choices
    if isinstance(annotation, ast.Subscript):
        base = (_dotted(annotation.value) or "").rsplit(".", 1)[-1]
        if base == "Optional":
            kind, _, choices = _attribute_type(annotation.slice, name)
            return kind, True, choices
        if base == "Literal":
            return _literal_choices(annotation.slice, name)
        if base in _GENERIC_ATTRIBUTE_TYPES:
            return _GENERIC_ATTRIBUTE_TYPES[base], False, None
        raise unsupported
    dotted = _dotted(annotation)
    if dotted is None:
        raise unsupported
    dotted = _TYPE_ALIASES.get(dotted, dotted)
    if dotted in ATTRIBUTE_TYPES:
        return dotted, False, None
    if dotted in _GENERIC_ATTRIBUTE_TYPES:
        return _GENERIC_ATTRIBUTE_TYPES[dotted], False, None
    raise unsupported


def _literal_choices(node: ast.expr, name: str) -> tuple[str, bool, tuple[Any, ...]]:
    elements = node.elts if isinstance(node, ast.Tuple) else [node]
    choices = tuple(_literal(element, f"a Literal choice of {name!r}") for element in elements)
    nullable = None in choices
    choices = tuple(choice for choice in choices if choice is not None)
    kinds = {_type_of_value(choice) for choice in choices}
    kind = kinds.pop() if len(kinds) == 1 else ANY
    return kind, nullable, choices


def _outputs(
    function: ast.FunctionDef, module: ast.Module
) -> tuple[tuple[Port, ...], bool]:
    returns = function.returns
    if returns is None:
        return (Port(SINGLE_OUTPUT, ANY),), True
    if isinstance(returns, ast.Constant) and returns.value is None:
        return (), False
    if isinstance(returns, ast.Dict):
        return _named_outputs(_dict_items(returns)), False
    name = _dotted(returns)
    classes = {node.name: node for node in module.body if isinstance(node, ast.ClassDef)}
    if name in classes:
        return _named_outputs(_class_fields(classes[name])), False
    return (Port(SINGLE_OUTPUT, _port_type(returns)),), True


def _dict_items(node: ast.Dict) -> Iterator[tuple[str, ast.expr, int]]:
    for key, value in zip(node.keys, node.values, strict=True):
        if not (isinstance(key, ast.Constant) and isinstance(key.value, str)):
            line = value.lineno if key is None else key.lineno
            raise InterfaceError(line, "output names in a `-> {...}` annotation must be string "
                                 "literals, e.g. -> {\"train\": Dataset, \"test\": Dataset}")
        yield key.value, value, key.lineno


def _class_fields(node: ast.ClassDef) -> Iterator[tuple[str, ast.expr, int]]:
    bases = {(_dotted(base) or "").rsplit(".", 1)[-1] for base in node.bases}
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
        ports.append(Port(name, _port_type(annotation)))
    if not ports:
        raise InterfaceError(None, "the return annotation declares no outputs; write `-> None` "
                             "for an operation without outputs")
    return tuple(ports)
