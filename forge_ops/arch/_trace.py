"""The graph walk of an import: a module traced with ``torch.fx``, turned into plain data.

``torch.nn`` submodules become layers (attributes recovered by :mod:`._recover`); parameters
and buffers the forward code uses directly become Parameter/Buffer nodes named by their
attribute path; calls become functional nodes (:mod:`._trace_calls`); classes named as leaves
become library layers (by import path) or custom layers (their source). The module is traced
in evaluation mode, so dropout and stochastic depth follow their inference path; stochastic
depth modules are kept as ``stochastic_depth`` nodes. Imports torch; loaded only when a module
is being imported.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import fx, nn

from forge_ops.arch._functional import FUNCTIONAL_OPS
from forge_ops.arch._fx_specs import function_specs
from forge_ops.arch._inputs import InputSpec
from forge_ops.arch._library import (
    InitRecorder,
    LeafRules,
    class_path,
    drop_path_attributes,
    is_drop_path,
    is_library_class,
)
from forge_ops.arch._model import BUFFER, PARAMETER
from forge_ops.arch._recover import (
    check_custom,
    check_library,
    check_recovered,
    class_source,
    custom_attributes,
    library_attributes,
    module_attributes,
    tensor_attributes,
)
from forge_ops.arch._trace_calls import CallConverter
from forge_ops.arch._tracing import trace_graph
from forge_ops.arch._user_code import ArchitectureImportError, source_line
from forge_ops.arch.builtins import ArchitectureBuilder
from forge_ops.arch.catalogue import catalogue
from forge_ops.arch.custom import parse_custom_layer


@dataclass
class Traced:
    """An import's result and what checking it against the original needs."""

    arch: dict[str, Any]
    custom_layers: dict[str, str]
    graph_module: fx.GraphModule
    origin: dict[str, fx.Node]  # layer id -> the fx node whose value it holds
    notes: list[str] = field(default_factory=list)


class _Importer(CallConverter):
    """Turns one traced fx graph into architecture plain data."""

    def __init__(
        self,
        root: nn.Module,
        name: str,
        input_shape: Sequence[int] | None,
        leaves: LeafRules,
        *,
        recorder: InitRecorder | None,
        user_roots: Sequence[str],
    ) -> None:
        self.root = root
        self.leaves = leaves
        self.recorder = recorder or InitRecorder()
        self.user_roots = list(user_roots)
        self.custom_layers: dict[str, str] = {}  # leaf class name -> its source
        self.builder = ArchitectureBuilder(name, input_shape)
        self.value_of: dict[fx.Node, str] = {}  # fx node -> layer id producing its value
        self.origin: dict[str, fx.Node] = {}
        self.shapes: dict[fx.Node, fx.Node] = {}
        self.tensors: dict[str, str] = {}  # attribute path -> Parameter/Buffer layer id
        self.layer_tensors: dict[str, str] = {}  # path -> layer_tensor node (a layer's own)
        self.layer_paths: set[str] = set()  # submodules called as layers
        self.covered: set[str] = set()  # module paths whose state a layer holds
        self.functions = function_specs()
        self.taken: set[str] = set()  # layer names in use
        self.called: set[str] = set()  # submodules already turned into layers
        self.notes: list[str] = []

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
        hint = self.leaf_hint(node)
        return ArchitectureImportError(
            problem + (f" (at {where})" if where else "") + (f"; {hint}" if hint else "")
        )

    def leaf_hint(self, node: fx.Node) -> str:
        """Which class to keep whole to get past a node, from the module stack fx recorded."""
        stack = list((node.meta.get("nn_module_stack") or {}).values())
        if not stack:
            return ""
        cls = stack[-1][1]
        if not isinstance(cls, type):
            return ""
        name = class_path(cls) if is_library_class(cls, self.user_roots) else cls.__name__
        return f"or keep the class whole with --leaf {name}"

    def run(self, graph: fx.Graph) -> dict[str, Any]:
        self.taken = {str(n.target) for n in graph.nodes if n.op in {"call_module", "placeholder"}}
        self.layer_paths = {str(n.target) for n in graph.nodes if n.op == "call_module"}
        inputs = 0
        for node in graph.nodes:
            if node.op == "placeholder":
                self.layer_of(node, self.builder.input(str(node.target), inputs))
                inputs += 1
            elif node.op == "get_attr":
                self.tensor(node)
            elif node.op == "call_module":
                self.call_module(node)
            elif node.op in {"call_function", "call_method"}:
                self.call_function(node)
            elif node.op == "output":
                self.output(node)
        self.keep_unused_state()
        self.prune()
        return self.builder.plain()

    def prune(self) -> None:
        """Drop functional nodes nothing reads (a size only a folded ``view`` used)."""
        layers, edges = self.builder.layers, self.builder.edges
        while True:
            read = {edge["src"] for edge in edges.values()}
            unused = [
                layer_id
                for layer_id, layer in layers.items()
                if layer_id not in read and layer["type"] in FUNCTIONAL_OPS
                and not str(layer["attributes"].get("name", "")).endswith("_")
            ]
            if not unused:
                return
            for layer_id in unused:
                del layers[layer_id]
                self.origin.pop(layer_id, None)
            for edge_id in [e for e, edge in edges.items() if edge["dst"] in unused]:
                del edges[edge_id]

    def layer_of(self, node: fx.Node, layer_id: str) -> None:
        self.value_of[node] = layer_id
        self.origin.setdefault(layer_id, node)

    def add_node(
        self, node: fx.Node, type_name: str, name: str, inputs: list[fx.Node], attrs: dict[str, Any]
    ) -> None:
        sources = [self.value(value) for value in inputs]
        self.layer_of(node, self.new_layer(type_name, name, sources, attrs))

    def new_layer(
        self, type_name: str, name: str, sources: list[str], attributes: dict[str, Any]
    ) -> str:
        layer_id = self.builder.layer(type_name, name, *sources)
        self.builder.layers[layer_id]["attributes"] = attributes  # may hold a key "name"
        return layer_id

    # ----- parameters and buffers ---------------------------------------------------------

    def tensor(self, node: fx.Node) -> None:
        path = str(node.target)
        if path in self.tensors:
            self.layer_of(node, self.tensors[path])
            return
        owner_path, _, attribute = path.rpartition(".")
        if owner_path in self.layer_paths:  # a tensor of a layer (self.proj.weight.dtype)
            layer = self.new_layer("layer_tensor", path, [], {"layer": owner_path,
                                                             "name": attribute})
            self.taken.add(path)
            self.layer_tensors[path] = layer
            self.layer_of(node, layer)
            return
        if path in self.layer_tensors:
            self.layer_of(node, self.layer_tensors[path])
            return
        if any(path.startswith(p + ".") for p in self.covered):
            raise self.fail(node, f"forward uses self.{path} directly and also calls its layer; "
                            "an architecture cannot share weights between nodes")
        owner = self.root.get_submodule(owner_path)
        value = getattr(owner, attribute)
        if not isinstance(value, torch.Tensor):
            raise self.fail(node, f"forward uses self.{path}, which is not a tensor")
        if attribute.startswith("_tensor_constant"):  # a tensor made while tracing
            self.tensors[path] = self.add_tensor(self.functional_name("constant"), value, False)
        elif isinstance(value, nn.Parameter):
            self.tensors[path] = self.add_tensor(path, value, True)
        else:
            persistent = attribute not in owner._non_persistent_buffers_set
            self.tensors[path] = self.add_tensor(path, value, persistent)
        self.layer_of(node, self.tensors[path])

    def add_tensor(self, name: str, value: torch.Tensor, persistent: bool) -> str:
        kind = PARAMETER if isinstance(value, nn.Parameter) else BUFFER
        attributes = tensor_attributes(value, kind, persistent)
        self.taken.add(name)
        return self.new_layer(kind, name, [], attributes)

    def keep_unused_state(self) -> None:
        """State the forward code never touched (an unused head) still has to load strictly:
        each such entry becomes a Parameter/Buffer node of its own."""
        for key, value in self.root.state_dict(keep_vars=True).items():
            if key in self.tensors or any(key.startswith(p + ".") for p in self.covered):
                continue
            self.tensors[key] = self.add_tensor(key, value, True)
            self.notes.append(f"{key} is not used by forward; kept as a {PARAMETER.lower()}")

    # ----- modules ------------------------------------------------------------------------

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
        if any(path.startswith(str(node.target) + ".") for path in self.tensors):
            raise self.fail(node, f"forward uses a parameter of {target} directly and also calls "
                            "it; an architecture cannot share weights between nodes")
        self.covered.add(str(node.target))
        leaf = self.leaves.match(cls)
        if leaf is not None:
            self.leaves.used.add(leaf)
            if is_library_class(cls, self.user_roots):
                self.library_layer(node, target, module)
            else:
                self.custom_layer(node, target, module)
            return
        if is_drop_path(module):
            self.functional(node, "stochastic_depth", [node.args[0]], drop_path_attributes(module))
            return
        spec = catalogue().get(cls.__name__)
        if spec is None or getattr(nn, cls.__name__, None) is not cls:
            self.library_layer(node, target, module)  # torch's own, outside torch.nn
            return
        attributes = module_attributes(module, spec)
        try:
            check_recovered(target, module, attributes)
        except ArchitectureImportError:  # e.g. AdaptiveAvgPool2d((4, 4)) differs from (4)
            attributes = module_attributes(module, spec, collapse=False)
            check_recovered(target, module, attributes)
        self.module_node(node, cls.__name__, target, module, attributes)

    def module_node(
        self, node: fx.Node, type_name: str, name: str, module: nn.Module, attrs: dict[str, Any]
    ) -> None:
        """A layer node called with the traced arguments: leading tensors are its inputs,
        the rest keyword arguments of its call (its ``forward`` attribute)."""
        try:
            bound = inspect.signature(module.forward).bind(*node.args, **node.kwargs)
        except TypeError as exc:
            problem = f"{name} is called with arguments it does not take ({exc})"
            raise self.fail(node, problem) from None
        inputs: list[Any] = []
        keywords: dict[str, Any] = {}
        positional = True
        parameters = inspect.signature(module.forward).parameters
        for key, value in bound.arguments.items():
            kind = parameters[key].kind
            if kind is inspect.Parameter.VAR_POSITIONAL and positional:
                if not all(isinstance(v, fx.Node) for v in value):
                    raise self.fail(node, f"{name} is given constants among its inputs")
                inputs.extend(value)
            elif kind is inspect.Parameter.VAR_KEYWORD:
                keywords.update(value)
            elif positional and isinstance(value, fx.Node) and kind is not _KEYWORD_ONLY:
                inputs.append(value)
            else:
                positional = False
                if value is not parameters[key].default:
                    keywords[key] = value
        slots: dict[fx.Node, int] = {}
        forward = {k: self.plain(node, v, inputs, slots) for k, v in keywords.items()}
        if forward:
            attrs = {**attrs, "forward": forward}
        self.add_node(node, type_name, name, inputs, attrs)

    def custom_layer(self, node: fx.Node, target: str, module: nn.Module) -> None:
        """A user class kept whole (``leaves``): its source becomes a custom layer."""
        name = type(module).__name__
        code = self.custom_layers.get(name) or class_source(type(module))
        spec = parse_custom_layer(code, name)
        attributes = custom_attributes(module, spec, self.recorder.of(module))
        check_custom(target, module, name, code, attributes)
        self.custom_layers[name] = code
        self.module_node(node, name, target, module, attributes)

    def library_layer(self, node: fx.Node, target: str, module: nn.Module) -> None:
        """A class from an installed package kept whole, by import path."""
        path = class_path(type(module))
        attributes = library_attributes(module, self.recorder.of(module))
        check_library(target, module, path, attributes)
        self.module_node(node, path, target, module, attributes)

    def output(self, node: fx.Node) -> None:
        result = node.args[0]
        if isinstance(result, dict):
            raise self.fail(node, "forward returns a dict; return a tensor or a tuple of them")
        results = list(result) if isinstance(result, tuple | list) else [result]
        for index, value in enumerate(results):
            if not isinstance(value, fx.Node):
                raise self.fail(node, "forward must return a tensor or a tuple of tensors")
            name = "output" if len(results) == 1 else f"output{index}"
            self.builder.output(self.value(value), name, index)


_KEYWORD_ONLY = inspect.Parameter.KEYWORD_ONLY


def trace_module(
    module: nn.Module,
    name: str | None = None,
    input_shape: Sequence[int] | None = None,
    leaves: Sequence[str] = (),
    *,
    samples: Sequence[InputSpec] | None = None,
    recorder: InitRecorder | None = None,
    user_roots: Sequence[str] = (),
) -> Traced:
    """:func:`forge_ops.arch.importer.import_module`, which documents it (imports torch)."""
    cls = type(module).__name__
    rules = LeafRules(leaves)
    notes: list[str] = []
    graph = trace_graph(module, rules, samples, user_roots, notes)
    importer = _Importer(
        module, name or cls, input_shape, rules, recorder=recorder, user_roots=user_roots
    )
    arch = importer.run(graph)
    unused = rules.unused()
    if unused:
        raise ArchitectureImportError(
            f"{cls} has no submodule of class {', '.join(unused)} to keep whole"
        )
    graph_module = fx.GraphModule(module, graph, class_name=cls)
    return Traced(
        arch, importer.custom_layers, graph_module, importer.origin, [*notes, *importer.notes]
    )
