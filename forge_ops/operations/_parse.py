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
from functools import lru_cache

from ._annotations import input_type, port_type
from ._attributes import read_attribute, read_reference
from ._interface import Attribute, InterfaceError, OperationInterface, Port, Reference
from ._outputs import read_outputs
from .types import REFERENCE_TYPES


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
        Port(arg.arg, input_type(arg.annotation), required=index < first_default)
        for index, arg in enumerate(positional)
    )
    attributes: list[Attribute] = []
    references: list[Reference] = []
    for arg, default in zip(args.kwonlyargs, args.kw_defaults, strict=True):
        if arg.annotation is not None and port_type(arg.annotation) in REFERENCE_TYPES:
            references.append(read_reference(arg, default))
        else:
            attributes.append(read_attribute(arg, default))
    outputs, single = read_outputs(function, module)
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
