"""Turning traced function and method calls into functional nodes (part of the import walk).

A call becomes a named op when its arguments fit the op (``F.layer_norm``, ``x.expand``,
``+``); anything else that is still plain tensor code becomes a generic ``call`` (a torch or
library function by import path) or ``method`` node, so a model is never refused for using an
ordinary tensor operation. Sizes read from tensors (``b, c, h, w = x.shape``) become ``size``
nodes that later calls refer to, so the sizes stay symbolic. Imports torch.
"""

from __future__ import annotations

import importlib
import inspect
import math
import operator
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import fx

from forge_ops.arch._functional import ARITHMETIC, FUNCTIONAL_OPS
from forge_ops.arch._fx_specs import IDENTITY_METHODS, METHOD_SPECS, CallSpec
from forge_ops.arch._user_code import ArchitectureImportError

# Parameters of the hand-written ops that take tensors from the graph.
_LEGACY_PRIMARY = ("input", "other", "tensors")
_COMMUTATIVE = {"add", "mul", "eq", "ne", "and_", "or_"}
_NAMESPACES: tuple[tuple[str, Any], ...] = (
    ("torch.nn.functional", F),
    ("torch", torch),
    ("torch.linalg", torch.linalg),
    ("torch.fft", torch.fft),
    ("torch.special", torch.special),
    ("math", math),
    ("operator", operator),
)


def function_path(target: Any) -> str | None:
    """The import path of a function fx recorded, or None when it is the user's own."""
    name = getattr(target, "__name__", None)
    if name is None:
        return None
    for path, namespace in _NAMESPACES:
        if getattr(namespace, name, None) is target:
            return f"{path}.{name}"
    module = getattr(target, "__module__", None) or ""
    if not module or module.startswith(("forge_import_", "__main__")):
        return None
    try:
        found: Any = importlib.import_module(module)
    except ImportError:
        return None
    qualname = str(getattr(target, "__qualname__", name))
    for part in qualname.split("."):
        found = getattr(found, part, None)
    return f"{module}.{qualname}" if found is target else None


def describe(node: fx.Node) -> str:
    """A call as the user wrote it: ``torch.roll``, ``x.masked_fill``, ``x.shape``."""
    if node.op == "call_method":
        return f".{node.target}()"
    if node.target is getattr:
        return f".{node.args[1]}"
    if node.target is operator.getitem:
        return "indexing"
    path = function_path(node.target)
    return path or str(getattr(node.target, "__name__", node.target))


class CallConverter:
    """The call-conversion half of the importer (mixed into ``_trace._Importer``)."""

    functions: dict[Any, CallSpec]
    value_of: dict[fx.Node, str]
    shapes: dict[fx.Node, fx.Node]  # x.shape / x.size() nodes -> x, made nodes when needed
    fail: Callable[[fx.Node, str], ArchitectureImportError]
    functional_name: Callable[[str], str]
    add_node: Callable[[fx.Node, str, str, list[fx.Node], dict[str, Any]], None]

    # ----- dispatch ---------------------------------------------------------------------

    def call_function(self, node: fx.Node) -> None:
        if node.op == "call_method":
            self.call_method(node)
            return
        target = node.target
        if target is getattr:
            self.attribute(node)
        elif target is operator.getitem:
            self.getitem(node, node.args[0], node.args[1])
        elif target in self.functions and self.convert(
            node, self.functions[target], list(node.args), dict(node.kwargs)
        ):
            return
        else:
            self.generic_call(node)

    def call_method(self, node: fx.Node) -> None:
        method = str(node.target)
        receiver = node.args[0]
        if method in IDENTITY_METHODS and isinstance(receiver, fx.Node):
            self.alias(node, receiver)
        elif method == "size":
            dim = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim")
            if dim is None:
                self.shapes[node] = receiver  # type: ignore[assignment]
            else:
                self.functional(node, "size", [receiver], {"dim": dim})
        elif method == "__getitem__":
            self.getitem(node, receiver, node.args[1])
        elif method in METHOD_SPECS and self.convert(
            node, METHOD_SPECS[method], list(node.args), dict(node.kwargs)
        ):
            return
        else:
            self.generic_method(node)

    def alias(self, node: fx.Node, source: fx.Node) -> None:
        if source in self.shapes:
            self.shapes[node] = self.shapes[source]
        else:
            self.value_of[node] = self.value(source)

    def value(self, node: fx.Node) -> str:
        """The layer id holding a node's value (a whole shape becomes a ``size`` node)."""
        if node not in self.value_of and node in self.shapes:
            self.functional(node, "size", [self.shapes[node]], {})
        if node not in self.value_of:
            raise self.fail(node, f"{describe(node)}: its value comes from nothing Forge kept")
        return self.value_of[node]

    # ----- special forms ----------------------------------------------------------------

    def attribute(self, node: fx.Node) -> None:
        source, name = node.args[0], str(node.args[1])
        if name == "shape":
            self.shapes[node] = source  # type: ignore[assignment]
        elif name == "ndim":
            self.functional(node, "dim", [source], {})
        elif name.startswith("_"):
            raise self.fail(node, f"reading the private attribute .{name} cannot be imported")
        else:
            self.functional(node, "attribute", [source], {"name": name})

    def getitem(self, node: fx.Node, container: Any, index: Any) -> None:
        if container in self.shapes and isinstance(index, int):
            self.functional(node, "size", [self.shapes[container]], {"dim": index})
            return
        if isinstance(index, list):
            raise self.fail(
                node, "indexing with a Python list cannot be imported; use a tensor or a tuple"
            )
        if not isinstance(container, fx.Node):
            raise self.fail(node, "indexing a value built in forward (not a tensor or a size)")
        self.functional(node, "getitem", [container], {"index": index})

    # ----- named ops --------------------------------------------------------------------

    def convert(
        self, node: fx.Node, spec: CallSpec, args: list[Any], kwargs: dict[str, Any]
    ) -> bool:
        """Build a named op; False when the call does not fit it (then a generic node)."""
        op_name, params, dropped = spec
        bound = _bind(params, args, kwargs)
        if bound is None:
            return False
        for key in dropped:
            bound.pop(key, None)
        if op_name in ARITHMETIC or op_name in {"neg", "invert"}:
            return self.arithmetic(node, op_name, bound)
        if op_name == "reshape" and self.is_flatten(bound):
            self.functional(node, "flatten", [bound["input"]], {})
            return True
        op = FUNCTIONAL_OPS[op_name]
        primary = op.tensors or _LEGACY_PRIMARY
        inputs: list[Any] = []
        rest: dict[str, Any] = {}
        for key, value in bound.items():
            if key not in op.attributes and isinstance(value, list | tuple):
                inputs.extend(value)  # the tensors of cat, stack, einsum
            elif key in primary and isinstance(value, fx.Node):
                inputs.append(value)
            else:
                rest[key] = value
        self.functional(node, op_name, inputs, rest)
        return True

    def arithmetic(self, node: fx.Node, op_name: str, bound: dict[str, Any]) -> bool:
        if bound.pop("alpha", 1) != 1:
            return False
        left, right = bound.get("input"), bound.get("other")
        attributes: dict[str, Any] = {}
        if isinstance(left, fx.Node) and (isinstance(right, fx.Node) or "other" not in bound):
            inputs = [left] + ([right] if "other" in bound else [])
        elif isinstance(left, fx.Node):
            inputs, attributes["scalar"] = [left], right
        elif isinstance(right, fx.Node):
            inputs, attributes["scalar"] = [right], left
            if op_name not in _COMMUTATIVE or not isinstance(left, int | float):
                attributes["reverse"] = True
        else:
            return False
        self.functional(node, op_name, inputs, attributes)
        return True

    def is_flatten(self, bound: dict[str, Any]) -> bool:
        """``x.view(x.size(0), -1)``: written as a flatten, as people read it."""
        shape = list(bound.get("shape") or [])
        if len(shape) != 2 or shape[1] != -1 or not isinstance(shape[0], fx.Node):
            return False
        size, source = shape[0], bound.get("input")
        if size.op == "call_method" and size.target == "size":
            return bool(size.args[0] is source and (size.args[1:] or [None])[0] == 0)
        if size.target is operator.getitem and size.args[1] == 0:
            shape_node = size.args[0]
            return isinstance(shape_node, fx.Node) and self.shapes.get(shape_node) is source
        return False

    # ----- generic nodes ----------------------------------------------------------------

    def generic_call(self, node: fx.Node) -> None:
        path = function_path(node.target)
        if path is None:
            name = getattr(node.target, "__name__", str(node.target))
            raise self.fail(
                node,
                f"the function {name} is called as one opaque step (torch.fx.wrap) and is not "
                "importable from an installed package; call torch functions in it directly",
            )
        kwargs = dict(node.kwargs)
        try:
            parameters = inspect.signature(node.target).parameters  # type: ignore[arg-type]
        except (TypeError, ValueError):  # builtins without a signature keep every keyword
            parameters = {}  # type: ignore[assignment]
        for key, value in list(kwargs.items()):
            default = parameters[key].default if key in parameters else inspect.Parameter.empty
            if not isinstance(value, fx.Node) and _same(value, default):
                del kwargs[key]
        attributes = {"function": path, "args": tuple(node.args), "kwargs": kwargs}
        self.functional(node, "call", [], attributes, keep_lists=True)

    def generic_method(self, node: fx.Node) -> None:
        method = str(node.target)
        if method.startswith("_"):
            raise self.fail(node, f"calling the private method .{method}() cannot be imported")
        receiver = node.args[0]
        if not isinstance(receiver, fx.Node):
            raise self.fail(node, f".{method}() is called on a value Forge does not follow")
        attributes = {"name": method, "args": tuple(node.args[1:]), "kwargs": dict(node.kwargs)}
        self.functional(node, "method", [receiver], attributes, keep_lists=True)

    # ----- building ---------------------------------------------------------------------

    def functional(
        self,
        node: fx.Node,
        op_name: str,
        inputs: list[Any],
        raw: dict[str, Any],
        keep_lists: bool = False,
    ) -> None:
        """Add a functional node: ``inputs`` are primary; graph values in ``raw`` become
        ``{"input": k}`` references to further inputs. ``keep_lists`` keeps Python lists
        apart from tuples (a library function may need a list)."""
        sources: list[fx.Node] = []
        for value in inputs:
            if not isinstance(value, fx.Node):
                raise self.fail(node, f"{describe(node)}: an input is not a tensor")
            sources.append(value)
        slots: dict[fx.Node, int] = {}
        attributes = {
            key: self.plain(node, value, sources, slots, keep_lists) for key, value in raw.items()
        }
        op = FUNCTIONAL_OPS[op_name]
        for key, value in list(attributes.items()):
            if key in op.attributes and value == op.attributes[key].default:
                del attributes[key]
        self.add_node(node, op_name, self.functional_name(op_name), sources, attributes)

    def plain(
        self,
        node: fx.Node,
        value: Any,
        sources: list[fx.Node],
        slots: dict[fx.Node, int],
        keep_lists: bool = False,
    ) -> Any:
        """A call argument as plain data (graph values as references to inputs)."""

        def inner(item: Any) -> Any:
            return self.plain(node, item, sources, slots, keep_lists)

        if isinstance(value, fx.Node):
            if value not in slots:
                slots[value] = len(sources)
                sources.append(value)
            return {"input": slots[value]}
        if value is None or isinstance(value, bool | int | str):
            return value
        if isinstance(value, float):
            if math.isfinite(value):
                return value
            return {"float": "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")}
        if isinstance(value, slice):
            return {"slice": [inner(b) for b in (value.start, value.stop, value.step)]}
        if value is Ellipsis:
            return "..."
        if isinstance(value, list) and keep_lists:
            return {"list": [inner(v) for v in value]}
        if isinstance(value, tuple | list | torch.Size):
            return [inner(v) for v in value]
        if isinstance(value, torch.dtype):
            return {"dtype": str(value).removeprefix("torch.")}
        if isinstance(value, torch.device):
            return str(value)
        if isinstance(value, dict) and all(isinstance(k, str) for k in value):
            return {k: inner(v) for k, v in value.items()}
        raise self.fail(
            node,
            f"{describe(node)} is given a {type(value).__name__}, which an architecture "
            "cannot store (numbers, strings, tuples, dtypes and tensors can be)",
        )


def _same(value: Any, default: Any) -> bool:
    try:
        return type(value) is type(default) and bool(value == default)
    except Exception:  # values without a plain ==
        return False


def _bind(
    params: tuple[str, ...], args: list[Any], kwargs: dict[str, Any]
) -> dict[str, Any] | None:
    """Call arguments by parameter name; None when they do not fit ``params``."""
    bound: dict[str, Any] = {}
    args = list(args)
    names = {p.lstrip("*") for p in params}
    for param in params:
        if param.startswith("*"):
            rest = args[0] if len(args) == 1 and isinstance(args[0], list | tuple) else args
            bound[param[1:]] = list(rest)
            args = []
            break
        if not args:
            break
        bound[param] = args.pop(0)
    if args:
        return None
    for key, value in kwargs.items():
        if key.startswith("_") or (value is None and key not in bound):
            continue  # torch's internals (_stacklevel) and unset options (dtype=None)
        if key not in names:
            return None
        bound[key] = value
    return bound
