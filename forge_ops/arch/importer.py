"""Import a PyTorch module into an editable architecture with ``torch.fx``.

The module is traced symbolically: ``torch.nn`` submodules become layers whose attributes are
read back from the module objects (and checked by rebuilding each layer and comparing it with
the original), and functional calls (``F.relu``, ``torch.flatten``, ``+``, ``torch.cat``, ...)
become functional nodes. Container modules such as ``nn.Sequential`` and the user's own
submodules are traced through, so their contents become editable layers.

Importing a file runs the user's code. :func:`import_from_file` therefore loads and traces it in
a child process (``python -m forge_ops.arch.importer FILE:CLASS``) that prints the architecture
as JSON; the server and TUI never import user files.
"""

from __future__ import annotations

import argparse
import json
import operator
import os
import re
import subprocess
import sys
import traceback
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from forge_ops.arch._functional import FUNCTIONAL_OPS
from forge_ops.arch._model import ArchitectureError, identifier
from forge_ops.arch.builtins import ArchitectureBuilder
from forge_ops.arch.catalogue import LayerSpec, catalogue
from forge_ops.input_shape import InputShapeError, parse_input_shape

if TYPE_CHECKING:
    from torch import fx, nn


class ArchitectureImportError(ArchitectureError):
    """A module cannot be imported; the message names the source line when it can."""


# (op name, parameter names in call order, parameters to drop). A parameter whose value is a
# graph node (or a list of them) becomes an input; the others become attributes.
_Spec = tuple[str, tuple[str, ...], frozenset[str]]
_NO_DROP: frozenset[str] = frozenset()
_INPLACE = frozenset({"inplace"})


def _function_specs() -> dict[Any, _Spec]:
    import torch
    import torch.nn.functional as F

    unary = ("input",)
    specs: dict[Any, _Spec] = {
        F.relu: ("relu", ("input", "inplace"), _INPLACE),
        torch.relu: ("relu", unary, _NO_DROP),
        F.relu6: ("relu6", ("input", "inplace"), _INPLACE),
        F.gelu: ("gelu", ("input",), _NO_DROP),
        F.silu: ("silu", ("input", "inplace"), _INPLACE),
        F.elu: ("elu", ("input", "alpha", "inplace"), _INPLACE),
        F.leaky_relu: ("leaky_relu", ("input", "negative_slope", "inplace"), _INPLACE),
        torch.sigmoid: ("sigmoid", unary, _NO_DROP),
        F.sigmoid: ("sigmoid", unary, _NO_DROP),
        torch.tanh: ("tanh", unary, _NO_DROP),
        F.tanh: ("tanh", unary, _NO_DROP),
        F.softmax: ("softmax", ("input", "dim"), _NO_DROP),
        torch.softmax: ("softmax", ("input", "dim"), _NO_DROP),
        F.log_softmax: ("log_softmax", ("input", "dim"), _NO_DROP),
        torch.log_softmax: ("log_softmax", ("input", "dim"), _NO_DROP),
        F.max_pool2d: ("max_pool2d", ("input", "kernel_size", "stride", "padding"), _NO_DROP),
        F.avg_pool2d: ("avg_pool2d", ("input", "kernel_size", "stride", "padding"), _NO_DROP),
        F.adaptive_avg_pool2d: ("adaptive_avg_pool2d", ("input", "output_size"), _NO_DROP),
        F.dropout: (
            "dropout",
            ("input", "p", "training", "inplace"),
            frozenset({"training", "inplace"}),
        ),
        torch.flatten: ("flatten", ("input", "start_dim", "end_dim"), _NO_DROP),
        torch.reshape: ("reshape", ("input", "shape"), _NO_DROP),
        torch.permute: ("permute", ("input", "dims"), _NO_DROP),
        torch.transpose: ("transpose", ("input", "dim0", "dim1"), _NO_DROP),
        torch.unsqueeze: ("unsqueeze", ("input", "dim"), _NO_DROP),
        torch.squeeze: ("squeeze", ("input", "dim"), _NO_DROP),
        torch.mean: ("mean", ("input", "dim", "keepdim"), _NO_DROP),
        torch.cat: ("cat", ("tensors", "dim"), _NO_DROP),
        torch.concat: ("cat", ("tensors", "dim"), _NO_DROP),
        torch.stack: ("stack", ("tensors", "dim"), _NO_DROP),
        torch.chunk: ("chunk", ("input", "chunks", "dim"), _NO_DROP),
        torch.matmul: ("matmul", ("input", "other"), _NO_DROP),
        operator.matmul: ("matmul", ("input", "other"), _NO_DROP),
        operator.getitem: ("getitem", ("input", "index"), _NO_DROP),
    }
    for name, targets in {
        "add": (operator.add, torch.add),
        "mul": (operator.mul, torch.mul),
        "sub": (operator.sub, torch.sub),
        "div": (operator.truediv, torch.div),
    }.items():
        for target in targets:
            specs[target] = (name, ("input", "other"), _NO_DROP)
    return specs


_METHOD_SPECS: dict[str, _Spec] = {
    "relu": ("relu", ("input",), _NO_DROP),
    "sigmoid": ("sigmoid", ("input",), _NO_DROP),
    "tanh": ("tanh", ("input",), _NO_DROP),
    "softmax": ("softmax", ("input", "dim"), _NO_DROP),
    "log_softmax": ("log_softmax", ("input", "dim"), _NO_DROP),
    "flatten": ("flatten", ("input", "start_dim", "end_dim"), _NO_DROP),
    "view": ("reshape", ("input", "*shape"), _NO_DROP),
    "reshape": ("reshape", ("input", "*shape"), _NO_DROP),
    "permute": ("permute", ("input", "*dims"), _NO_DROP),
    "transpose": ("transpose", ("input", "dim0", "dim1"), _NO_DROP),
    "unsqueeze": ("unsqueeze", ("input", "dim"), _NO_DROP),
    "squeeze": ("squeeze", ("input", "dim"), _NO_DROP),
    "mean": ("mean", ("input", "dim", "keepdim"), _NO_DROP),
    "chunk": ("chunk", ("input", "chunks", "dim"), _NO_DROP),
    "add": ("add", ("input", "other"), _NO_DROP),
    "mul": ("mul", ("input", "other"), _NO_DROP),
    "sub": ("sub", ("input", "other"), _NO_DROP),
    "div": ("div", ("input", "other"), _NO_DROP),
    "matmul": ("matmul", ("input", "other"), _NO_DROP),
}
_IDENTITY_METHODS = {"contiguous", "clone", "detach"}


def _source_line(stack_trace: str | None) -> str:
    """``file:line: code`` of the user's frame in an fx node's recorded stack trace."""
    if not stack_trace:
        return ""
    lines = stack_trace.strip().splitlines()
    for i in range(len(lines) - 1, -1, -1):
        text = lines[i].strip()
        if text.startswith("File ") and not _is_library_path(text.split('"')[1]):
            code = lines[i + 1].strip() if i + 1 < len(lines) else ""
            where = text.split('"')[1] + ":" + text.split("line ")[1].split(",")[0]
            return f"{where}: {code}"
    return ""


def _is_library_path(path: str) -> bool:
    import torch

    roots = (os.path.dirname(torch.__file__), os.path.dirname(os.path.dirname(__file__)))
    return path.startswith(roots) or path.startswith("<")


def _user_frame(exc: BaseException) -> str:
    """``file:line: code`` of the innermost user frame in an exception's traceback."""
    frames = [
        f for f in traceback.extract_tb(exc.__traceback__) if not _is_library_path(f.filename)
    ]
    if not frames:
        return ""
    frame = frames[-1]
    return f"{frame.filename}:{frame.lineno}: {(frame.line or '').strip()}"


def _plain(value: Any) -> Any:
    """A module attribute as a plain JSON value, or raise TypeError."""
    import torch
    from torch import nn

    if isinstance(value, bool | int | float | str) or value is None:
        return value
    if isinstance(value, tuple | list | torch.Size):
        return [_plain(v) for v in value]
    if isinstance(value, nn.Module):
        return layer_value(value)
    if callable(value) and getattr(value, "__name__", None):
        return value.__name__  # e.g. Transformer's activation=F.relu; torch takes "relu" too
    raise TypeError(type(value).__name__)


def layer_value(module: nn.Module) -> dict[str, Any]:
    """``{"type", "attributes"}`` of a torch.nn module (the form of a layer attribute)."""
    cls = type(module)
    spec = catalogue().get(cls.__name__)
    if spec is None or getattr(__import__("torch").nn, cls.__name__, None) is not cls:
        raise ArchitectureImportError(
            f"{cls.__module__}.{cls.__name__} is not a torch.nn layer; only torch.nn layers "
            "can be layer attributes"
        )
    return {"type": cls.__name__, "attributes": module_attributes(module, spec)}


def _recoveries() -> dict[str, dict[str, Callable[[Any], Any]]]:
    """Constructor arguments that torch.nn layers do not keep under their own names."""
    transformer_layer = {
        "d_model": lambda m: m.self_attn.embed_dim,
        "nhead": lambda m: m.self_attn.num_heads,
        "dim_feedforward": lambda m: m.linear1.out_features,
        "dropout": lambda m: m.dropout.p,
        "layer_norm_eps": lambda m: m.norm1.eps,
        "batch_first": lambda m: m.self_attn.batch_first,
        "bias": lambda m: m.linear1.bias is not None,
    }
    return {
        "TransformerEncoderLayer": transformer_layer,
        "TransformerDecoderLayer": transformer_layer,
        "TransformerEncoder": {"encoder_layer": lambda m: m.layers[0]},
        "TransformerDecoder": {"decoder_layer": lambda m: m.layers[0]},
        "MultiheadAttention": {
            "bias": lambda m: m.out_proj.bias is not None,
            "add_bias_kv": lambda m: m.bias_k is not None,
        },
    }


def module_attributes(module: nn.Module, spec: LayerSpec, collapse: bool = True) -> dict[str, Any]:
    """Recover a layer's constructor arguments from the module object's attributes.

    ``collapse`` writes a repeated tuple such as Conv2d's ``(3, 3)`` as ``3``.
    """
    import torch

    found: dict[str, Any] = {}
    recover = _recoveries().get(spec.name, {})
    for attr in spec.attributes:
        if attr.name in recover:
            value = recover[attr.name](module)
        elif attr.variadic or not hasattr(module, attr.name):
            continue
        else:
            value = getattr(module, attr.name)
        if attr.type == "bool" and (value is None or isinstance(value, torch.Tensor)):
            value = value is not None  # e.g. Linear.bias holds the parameter, not the flag
        try:
            plain = _plain(value)
        except TypeError:
            continue  # not a constructor argument stored under its own name
        if (
            collapse
            and isinstance(plain, list)
            and len(set(map(repr, plain))) == 1
            and re.search(r"\bint\b", attr.type) is not None
            and isinstance(plain[0], int)
        ):
            plain = plain[0]  # Conv2d keeps kernel_size=3 as (3, 3); write it as 3 again
        if attr.required or plain != attr.default:
            found[attr.name] = plain
    return found


def _check_recovered(name: str, original: nn.Module, attributes: dict[str, Any]) -> None:
    """Rebuild a layer from recovered attributes and compare it with the original."""
    import torch

    from forge_ops.arch._calls import layer_call
    from forge_ops.arch.build import instantiate

    type_name = type(original).__name__
    label = f"layer {name!r} ({type_name})"
    try:
        with torch.device("meta"):
            rebuilt = instantiate(layer_call(label, type_name, attributes, catalogue()), {})
    except Exception as exc:
        raise ArchitectureImportError(
            f"could not recreate {label} from its attributes {attributes}: {exc}"
        ) from exc
    shapes = {k: tuple(v.shape) for k, v in original.state_dict().items()}
    rebuilt_shapes = {k: tuple(v.shape) for k, v in rebuilt.state_dict().items()}
    if shapes != rebuilt_shapes or original.extra_repr() != rebuilt.extra_repr():
        raise ArchitectureImportError(
            f"could not recover the constructor arguments of {label}: the original is "
            f"{type_name}({original.extra_repr()}) but its attributes give "
            f"{type_name}({rebuilt.extra_repr()})"
        )


def class_source(cls: type) -> str:
    """A class's source preceded by its file's top-level imports (so it runs on its own)."""
    import ast
    import inspect
    import textwrap

    try:
        source = textwrap.dedent(inspect.getsource(cls))
        file = inspect.getsourcefile(cls)
        tree = ast.parse(open(file).read()) if file else ast.Module(body=[], type_ignores=[])
    except (OSError, TypeError, SyntaxError) as exc:
        raise ArchitectureImportError(
            f"the source of {cls.__name__} is not available ({exc}); it cannot become a "
            "custom layer"
        ) from exc
    imports = [
        ast.unparse(n)
        for n in tree.body
        if isinstance(n, ast.Import)
        or (isinstance(n, ast.ImportFrom) and n.level == 0 and n.module != "__future__")
    ]
    return "\n".join(imports) + ("\n\n\n" if imports else "") + source


def _check_custom(
    target: str, original: nn.Module, name: str, code: str, attributes: dict[str, Any]
) -> None:
    """Rebuild a custom layer from its recovered attributes; compare parameter shapes."""
    from forge_ops.arch.custom import load_custom_layers

    label = f"layer {target!r} (custom layer {name})"
    try:
        rebuilt = load_custom_layers({name: code})[name](**attributes)
    except Exception as exc:
        raise ArchitectureImportError(
            f"could not recreate {label} from {attributes}: {exc}; keep each constructor "
            "argument as an attribute of the same name (self.width = width)"
        ) from exc
    shapes = {k: tuple(v.shape) for k, v in original.state_dict().items()}
    if shapes != {k: tuple(v.shape) for k, v in rebuilt.state_dict().items()}:
        raise ArchitectureImportError(
            f"could not recover the constructor arguments of {label}: got {attributes}, "
            "which builds different parameters; keep each constructor argument as an "
            "attribute of the same name (self.width = width)"
        )


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
        self.functions = _function_specs()
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
        where = _source_line(node.stack_trace)
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
        from torch import nn

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
            _check_recovered(target, module, attributes)
        except ArchitectureImportError:  # e.g. AdaptiveAvgPool2d((4, 4)) differs from (4)
            attributes = module_attributes(module, spec, collapse=False)
            _check_recovered(target, module, attributes)
        self.add(node, cls.__name__, target, list(node.args), attributes)

    def custom_layer(self, node: fx.Node, target: str, module: nn.Module) -> None:
        """A user class kept whole (``leaves``): its source becomes a custom layer."""
        from forge_ops.arch.custom import parse_custom_layer

        name = type(module).__name__
        code = self.custom_layers.get(name) or class_source(type(module))
        spec = parse_custom_layer(code, name)
        attributes = module_attributes(module, spec, collapse=False)
        _check_custom(target, module, name, code, attributes)
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
        from torch import fx

        sources = []
        for value in inputs:
            if not isinstance(value, fx.Node) or value not in self.layer_of:
                raise self.fail(node, f"{name}: input {value!r} is not a tensor from the graph")
            sources.append(self.layer_of[value])
        self.layer_of[node] = self.builder.layer(type_name, name, *sources, **attributes)

    def call_function(self, node: fx.Node) -> None:
        from torch import fx

        target = node.target
        if node.op == "call_method":
            method = str(target)
            if method in _IDENTITY_METHODS:
                self.layer_of[node] = self.layer_of[node.args[0]]  # type: ignore[index]
                return
            if method == "size" and len(node.args) > 1 and node.args[1] == 0:
                self.batch_size.add(node)
                return
            spec = _METHOD_SPECS.get(method)
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
        from torch import fx

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
        from torch import fx

        result = node.args[0]
        results = list(result) if isinstance(result, tuple | list) else [result]
        for index, value in enumerate(results):
            if not isinstance(value, fx.Node) or value not in self.layer_of:
                raise self.fail(node, "forward must return a tensor or a tuple of tensors")
            name = "output" if len(results) == 1 else f"output{index}"
            self.builder.output(self.layer_of[value], name, index)


def _tracer(leaves: Sequence[str]) -> fx.Tracer:
    from torch import fx

    class Tracer(fx.Tracer):
        def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
            return type(m).__name__ in leaves or super().is_leaf_module(m, module_qualified_name)

    tracer = Tracer()
    tracer.record_stack_traces = True
    return tracer


def _frame_class(exc: BaseException) -> str | None:
    """Class of the innermost user ``forward`` in a traceback (the module that failed)."""
    tb, found = exc.__traceback__, None
    while tb is not None:
        if not _is_library_path(tb.tb_frame.f_code.co_filename):
            owner = tb.tb_frame.f_locals.get("self")
            found = type(owner).__name__ if owner is not None else found
        tb = tb.tb_next
    return found


def import_module(
    module: nn.Module,
    name: str | None = None,
    input_shape: Sequence[int] | None = None,
    leaves: Sequence[str] = (),
    custom_layers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Trace a module into architecture plain data (runs the module's Python code).

    Submodules whose class is named in ``leaves`` are kept whole as custom layers (their
    source goes into ``custom_layers``, a dict this fills) instead of being traced through;
    that is the way to import a block with data-dependent control flow.
    """
    from torch import fx

    cls = type(module).__name__
    try:
        graph = _tracer(leaves).trace(module)
    except Exception as exc:
        where = _user_frame(exc)
        hint = ""
        if isinstance(exc, fx.proxy.TraceError) or "symbolically traced" in str(exc):
            owner = _frame_class(exc)
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


def load_class(path: str, class_name: str) -> type:
    """Import a Python file and return one of its classes (runs the file's code)."""
    import importlib.util

    if not os.path.isfile(path):
        raise ArchitectureImportError(f"no such file: {path}")
    module_name = "forge_import_" + identifier(os.path.splitext(os.path.basename(path))[0])
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ArchitectureImportError(f"{path} is not a Python file")
    loaded = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = loaded
    sys.path.insert(0, os.path.dirname(os.path.abspath(path)))
    try:
        spec.loader.exec_module(loaded)
    except Exception as exc:
        raise ArchitectureImportError(
            f"{path} failed to run: {type(exc).__name__}: {exc} (at {_user_frame(exc)})"
        ) from exc
    cls = getattr(loaded, class_name, None)
    if not isinstance(cls, type):
        raise ArchitectureImportError(f"{path} defines no class {class_name!r}")
    return cls


def import_file(
    path: str,
    class_name: str,
    input_shape: Sequence[int] | None = None,
    *,
    leaves: Sequence[str] = (),
    custom_layers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Load ``path``, instantiate ``class_name()`` and import it (in this process).

    With ``input_shape`` the result is checked: built with the original's weights it must
    give the original's outputs. ``leaves``/``custom_layers`` as for :func:`import_module`.
    """
    cls = load_class(path, class_name)
    try:
        module = cls()
    except TypeError as exc:
        raise ArchitectureImportError(
            f"{class_name}() could not be created without arguments ({exc}); add defaults to "
            "its constructor or a subclass that sets them"
        ) from exc
    layers: dict[str, str] = {}
    arch = import_module(module, class_name, input_shape, leaves, layers)
    if input_shape is not None:
        check_parity(module, arch, [list(input_shape)], layers)
    if custom_layers is not None:
        custom_layers.update(layers)
    return arch


def check_parity(
    original: nn.Module,
    arch: Mapping[str, Any],
    input_shapes: list[list[int]],
    custom_layers: Mapping[str, str] | None = None,
) -> None:
    """Build the architecture, load the original's weights, compare outputs on random input."""
    import torch

    from forge_ops.arch.build import build_module

    rebuilt = build_module(arch, custom_layers)
    rebuilt.load_state_dict(original.state_dict())
    original_mode = original.training
    original.eval()
    rebuilt.eval()
    inputs = [torch.randn(*shape) for shape in input_shapes]
    with torch.no_grad():
        expected, got = original(*inputs), rebuilt(*inputs)
    original.train(original_mode)
    expected_list = list(expected) if isinstance(expected, tuple | list) else [expected]
    got_list = list(got) if isinstance(got, tuple | list) else [got]
    for index, (a, b) in enumerate(zip(expected_list, got_list, strict=True)):
        if not torch.allclose(a, b, atol=1e-5, rtol=1e-4):
            raise ArchitectureImportError(
                f"imported architecture's output {index} differs from the original's "
                f"(max difference {float((a - b).abs().max()):.3g})"
            )


def import_from_file(
    path: str,
    class_name: str,
    input_shape: Sequence[int] | None = None,
    *,
    leaves: Sequence[str] = (),
    custom_layers: dict[str, str] | None = None,
    timeout: float = 120.0,
) -> dict[str, Any]:
    """Import ``path:class_name`` in a child process (user code never runs in this one).

    Arguments as for :func:`import_file`; ``custom_layers`` receives the leaves' code.
    """
    command = [sys.executable, "-m", "forge_ops.arch.importer", f"{path}:{class_name}"]
    if input_shape is not None:
        command += ["--input-shape", ",".join(str(d) for d in input_shape)]
    for leaf in leaves:
        command += ["--leaf", leaf]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        raise ArchitectureImportError(
            f"importing {path}:{class_name} took longer than {timeout:.0f} s; stopped"
        ) from exc
    try:
        answer = json.loads(done.stdout.strip().splitlines()[-1]) if done.stdout.strip() else {}
    except json.JSONDecodeError:
        answer = {}
    if "error" in answer:
        raise ArchitectureImportError(answer["error"])
    if done.returncode != 0 or "architecture" not in answer:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise ArchitectureImportError(f"importing {path}:{class_name} failed: {tail}")
    arch: dict[str, Any] = answer["architecture"]
    if custom_layers is not None:
        custom_layers.update(answer.get("custom_layers") or {})
    return arch


def parse_shape(text: str) -> list[int]:
    """``"1,3,32,32"`` -> ``[1, 3, 32, 32]`` (the rule of :mod:`forge_ops.input_shape`)."""
    try:
        return parse_input_shape(text)
    except InputShapeError as exc:
        raise ArchitectureImportError(str(exc)) from None


def _main(argv: Sequence[str] | None = None, out: Callable[[str], Any] = print) -> int:
    parser = argparse.ArgumentParser(prog="python -m forge_ops.arch.importer")
    parser.add_argument("target", help="path/to/file.py:ClassName")
    parser.add_argument("--input-shape", default=None)
    parser.add_argument("--leaf", action="append", default=[])
    args = parser.parse_args(argv)
    path, _, class_name = str(args.target).rpartition(":")
    try:
        if not path or not class_name:
            raise ArchitectureImportError(
                f"give the module as path/to/file.py:ClassName (got {args.target!r})"
            )
        shape = parse_shape(args.input_shape) if args.input_shape else None
        layers: dict[str, str] = {}
        arch = import_file(path, class_name, shape, leaves=args.leaf, custom_layers=layers)
    except ArchitectureError as exc:
        out(json.dumps({"error": str(exc)}))
        return 1
    out(json.dumps({"architecture": arch, "custom_layers": layers}))
    return 0


if __name__ == "__main__":
    sys.exit(_main())
