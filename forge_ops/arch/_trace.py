"""The graph walk of an import: a module traced with ``torch.fx``, turned into plain data.

``torch.nn`` submodules become layers (attributes recovered by :mod:`._recover`), functional
calls become functional nodes (:mod:`._fx_specs` says which), and the user's classes named as
leaves become custom layers. Imports torch; loaded only when a module is being imported.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from typing import Any

from torch import fx, nn

from forge_ops.arch._functional import FUNCTIONAL_OPS
from forge_ops.arch._fx_specs import IDENTITY_METHODS, METHOD_SPECS, function_specs
from forge_ops.arch._recover import check_custom, check_recovered, class_source, module_attributes
from forge_ops.arch._user_code import (
    ArchitectureImportError,
    frame_class,
    source_line,
    user_frame,
)
from forge_ops.arch.builtins import ArchitectureBuilder
from forge_ops.arch.catalogue import catalogue
from forge_ops.arch.custom import parse_custom_layer


class _Importer:
    """Turns one traced fx graph into architecture plain data."""

    def __init__(
        self,
        root: nn.Module,
        name: str,
        input_shape: Sequence[int] | None,
        leaves: Sequence[str] = (),
    ) -> None:
        self.root = root
        self.leaves = set(leaves)
        self.custom_layers: dict[str, str] = {}  # leaf class name -> its source
        self.builder = ArchitectureBuilder(name, input_shape)
        self.layer_of: dict[fx.Node, str] = {}  # fx node -> layer id producing its value
        self.batch_size: set[fx.Node] = set()  # nodes holding x.size(0) / x.shape[0]
        self.shape_of: set[fx.Node] = set()  # nodes holding x.shape
        self.functions = function_specs()
        self.taken: set[str] = set()  # layer names in use
        self.called: set[str] = set()  # submodules already turned into layers

    def functional_name(self, op_name: str) -> str:
        """``relu``, ``relu_1``, ...: named by op, so re-importing exported code keeps names."""
        name, count = op_name, 0
        while name in self.taken:
            count += 1
            name = f"{op_name}_{count}"
        self.taken.add(name)
        return name

    def fail(self, node: fx.Node, problem: str) -> ArchitectureImportError:
        where = source_line(node.stack_trace)
        return ArchitectureImportError(f"{problem} (at {where})" if where else problem)

    def run(self, graph: fx.Graph) -> dict[str, Any]:
        self.taken = {str(n.target) for n in graph.nodes if n.op in {"call_module", "placeholder"}}
        inputs = 0
        for node in graph.nodes:
            if node.op == "placeholder":
                self.layer_of[node] = self.builder.input(str(node.target), inputs)
                inputs += 1
            elif node.op == "get_attr":
                raise self.fail(
                    node,
                    f"forward uses the parameter or buffer {node.target!r} directly; only "
                    "layers and functional calls can be imported (wrap it in a layer)",
                )
            elif node.op == "call_module":
                self.call_module(node)
            elif node.op in {"call_function", "call_method"}:
                self.call_function(node)
            elif node.op == "output":
                self.output(node)
        return self.builder.plain()

    def call_module(self, node: fx.Node) -> None:
        target = str(node.target)
        module = self.root.get_submodule(target)
        cls = type(module)
        if target in self.called:
            if any(True for _ in module.parameters()) or any(True for _ in module.buffers()):
                raise self.fail(
                    node,
                    f"layer {target!r} is used more than once; an architecture cannot share "
                    "weights between layers (give each use its own layer)",
                )
            target = self.functional_name(target)  # a parameterless layer reused: fine
        self.called.add(target)
        if cls.__name__ in self.leaves:
            self.custom_layer(node, target, module)
            return
        spec = catalogue().get(cls.__name__)
        if spec is None or getattr(nn, cls.__name__, None) is not cls:
            raise self.fail(node, f"{target} is a {cls.__name__}, which is not a torch.nn layer")
        if node.kwargs:
            raise self.fail(
                node,
                f"{target} is called with keyword arguments {sorted(node.kwargs)}; only "
                "positional tensor inputs can be imported",
            )
        attributes = module_attributes(module, spec)
        try:
            check_recovered(target, module, attributes)
        except ArchitectureImportError:  # e.g. AdaptiveAvgPool2d((4, 4)) differs from (4)
            attributes = module_attributes(module, spec, collapse=False)
            check_recovered(target, module, attributes)
        self.add(node, cls.__name__, target, list(node.args), attributes)

    def custom_layer(self, node: fx.Node, target: str, module: nn.Module) -> None:
        """A user class kept whole (``leaves``): its source becomes a custom layer."""
        name = type(module).__name__
        code = self.custom_layers.get(name) or class_source(type(module))
        spec = parse_custom_layer(code, name)
        attributes = module_attributes(module, spec, collapse=False)
        check_custom(target, module, name, code, attributes)
        self.custom_layers[name] = code
        if node.kwargs:
            raise self.fail(node, f"{target} is called with keyword arguments; pass tensors only")
        self.add(node, name, target, list(node.args), attributes)

    def add(
        self,
        node: fx.Node,
        type_name: str,
        name: str,
        inputs: list[Any],
        attributes: dict[str, Any],
    ) -> None:
        sources = []
        for value in inputs:
            if not isinstance(value, fx.Node) or value not in self.layer_of:
                raise self.fail(node, f"{name}: input {value!r} is not a tensor from the graph")
            sources.append(self.layer_of[value])
        self.layer_of[node] = self.builder.layer(type_name, name, *sources, **attributes)

    def call_function(self, node: fx.Node) -> None:
        target = node.target
        if node.op == "call_method":
            method = str(target)
            if method in IDENTITY_METHODS:
                self.layer_of[node] = self.layer_of[node.args[0]]  # type: ignore[index]
                return
            if method == "size" and len(node.args) > 1 and node.args[1] == 0:
                self.batch_size.add(node)
                return
            spec = METHOD_SPECS.get(method)
            label = f"method .{method}()"
        else:
            if target is getattr and node.args[1] == "shape":
                self.shape_of.add(node)
                return
            if target is operator.getitem and node.args[0] in self.shape_of:
                if node.args[1] == 0:
                    self.batch_size.add(node)
                    return
            spec = self.functions.get(target)
            label = getattr(target, "__name__", str(target))
        if spec is None:
            raise self.fail(
                node,
                f"{label} has no functional layer in Forge (supported: "
                f"{', '.join(sorted(FUNCTIONAL_OPS))}); wrap it in a custom layer",
            )
        op_name, params, dropped = spec
        bound = self.bind(node, params)
        for key in dropped:
            bound.pop(key, None)
        inputs: list[fx.Node] = []
        attributes: dict[str, Any] = {}
        for key, value in bound.items():
            if isinstance(value, fx.Node) and value not in self.batch_size:
                inputs.append(value)
            elif isinstance(value, list | tuple) and any(isinstance(v, fx.Node) for v in value):
                if op_name in {"cat", "stack"}:
                    inputs.extend(value)
                else:
                    attributes[key] = value  # shapes with x.size(0) in them: resolved below
            else:
                attributes[key] = value
        op_name, attributes = self.normalise(node, op_name, attributes)
        if op_name is None:
            self.layer_of[node] = self.layer_of[inputs[0]]  # an identity (e.g. eval dropout)
            return
        self.add(node, op_name, self.functional_name(op_name), list(inputs), attributes)

    def bind(self, node: fx.Node, params: tuple[str, ...]) -> dict[str, Any]:
        bound: dict[str, Any] = {}
        args = list(node.args)
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
            name = getattr(node.target, "__name__", node.target)
            raise self.fail(node, f"{name}: more arguments than Forge understands")
        for key, value in node.kwargs.items():
            if key.startswith("_") or (value is None and key not in bound):
                continue  # torch's internals (_stacklevel) and unset options (dtype=None)
            if key not in {p.lstrip("*") for p in params}:
                name = getattr(node.target, "__name__", node.target)
                raise self.fail(node, f"{name}: unsupported keyword argument {key!r}")
            bound[key] = value
        return bound

    def normalise(
        self, node: fx.Node, op_name: str, attributes: dict[str, Any]
    ) -> tuple[Any, dict[str, Any]]:
        """Map raw call arguments onto the functional op's attributes."""
        if op_name in {"add", "mul", "sub", "div"} and "other" in attributes:
            other = attributes.pop("other")
            if not isinstance(other, int | float):
                raise self.fail(node, f"{op_name} with a {type(other).__name__} operand")
            attributes["scalar"] = other
        if op_name in {"add", "sub"} and attributes.pop("alpha", 1) != 1:
            raise self.fail(node, f"{op_name} with alpha is not supported")
        if op_name == "reshape":
            shape = list(attributes.get("shape", []))
            batch = [i for i, v in enumerate(shape) if v in self.batch_size]
            if shape and batch == [0] and shape[1:] == [-1]:
                return "flatten", {}
            if batch == [0] and -1 not in shape:
                shape[0] = -1
            if any(isinstance(v, fx.Node) for v in shape):
                raise self.fail(
                    node,
                    "a reshape with a size computed at run time cannot be imported; "
                    "use x.flatten(1) or constant sizes",
                )
            attributes["shape"] = shape
        if op_name == "getitem" and not isinstance(attributes.get("index"), int):
            raise self.fail(node, "only integer indexing (e.g. an LSTM's output[0]) is supported")
        op = FUNCTIONAL_OPS[op_name]
        for key, value in list(attributes.items()):
            if key in op.attributes and value == op.attributes[key].default:
                del attributes[key]
            elif isinstance(value, tuple):
                attributes[key] = list(value)
        return op_name, attributes

    def output(self, node: fx.Node) -> None:
        result = node.args[0]
        results = list(result) if isinstance(result, tuple | list) else [result]
        for index, value in enumerate(results):
            if not isinstance(value, fx.Node) or value not in self.layer_of:
                raise self.fail(node, "forward must return a tensor or a tuple of tensors")
            name = "output" if len(results) == 1 else f"output{index}"
            self.builder.output(self.layer_of[value], name, index)


def _tracer(leaves: Sequence[str]) -> fx.Tracer:
    class Tracer(fx.Tracer):
        def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
            return type(m).__name__ in leaves or super().is_leaf_module(m, module_qualified_name)

    tracer = Tracer()
    tracer.record_stack_traces = True
    return tracer


def trace_module(
    module: nn.Module,
    name: str | None = None,
    input_shape: Sequence[int] | None = None,
    leaves: Sequence[str] = (),
    custom_layers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """:func:`forge_ops.arch.importer.import_module`, which documents it (imports torch)."""
    cls = type(module).__name__
    try:
        graph = _tracer(leaves).trace(module)
    except Exception as exc:
        where = user_frame(exc)
        hint = ""
        if isinstance(exc, fx.proxy.TraceError) or "symbolically traced" in str(exc):
            owner = frame_class(exc)
            hint = "; control flow that depends on tensor values cannot be traced: make it static"
            if owner and owner != cls:
                hint += f" or keep {owner} whole as a custom layer (--leaf {owner})"
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ArchitectureImportError(
            f"cannot trace {cls}: {detail}" + (f" (at {where})" if where else "") + hint
        ) from exc
    importer = _Importer(module, name or cls, input_shape, leaves)
    arch = importer.run(graph)
    unused = sorted(set(leaves) - set(importer.custom_layers))
    if unused:
        raise ArchitectureImportError(
            f"{cls} has no submodule of class {', '.join(unused)} to keep as a custom layer"
        )
    if custom_layers is not None:
        custom_layers.update(importer.custom_layers)
    return arch
