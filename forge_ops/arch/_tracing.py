"""Tracing a module into an fx graph, in the user's terms when it fails.

The module is traced in evaluation mode with symbolic sizes (``x.shape`` stays a graph value),
so the import works at any batch and image size. When forward branches on a size (``if H %
patch:``), symbolic tracing cannot decide the branch; given a sample input, the module is then
traced again with the sample's sizes (``torch.fx``'s meta tracer) and the import says that its
sizes are fixed to that sample. Imports torch.
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Sequence
from typing import Any

import torch
from torch import fx, nn
from torch.fx.experimental.meta_tracer import MetaProxy, MetaTracer

from forge_ops.arch._fx_specs import CHECK_FUNCTIONS
from forge_ops.arch._inputs import InputSpec
from forge_ops.arch._library import LeafRules, class_path, is_drop_path, is_library_class
from forge_ops.arch._user_code import ArchitectureImportError, frame_class, user_frame


def _configure(tracer: fx.Tracer) -> fx.Tracer:
    tracer.record_stack_traces = True
    tracer.proxy_buffer_attributes = True  # buffers read in forward become nodes too
    return tracer


class _SizedProxy(MetaProxy):
    """A traced value whose rank is known too (``x.ndim``, ``len(x.shape)``)."""

    @property
    def ndim(self) -> Any:
        meta = self.__dict__.get("_tensor_meta")
        return meta.ndim if isinstance(meta, torch.Tensor) else self.dim()


def _tracer(leaves: LeafRules, sizes: bool) -> fx.Tracer:
    """A tracer that keeps the leaves (and stochastic depth) whole; ``sizes`` traces with
    the sample's sizes (a meta tracer) instead of symbolic ones."""

    def keep(m: nn.Module) -> bool:
        return leaves.match(type(m)) is not None or is_drop_path(m)

    class Symbolic(fx.Tracer):
        def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
            return keep(m) or super().is_leaf_module(m, module_qualified_name)

    class Sized(MetaTracer):
        """Runs the module on the sample (real tensors, not meta ones) while tracing, so its
        parameters and the activations meet on one device and every size is known."""

        def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
            return keep(m) or super().is_leaf_module(m, module_qualified_name)

        def proxy(self, node: fx.Node) -> Any:
            return _SizedProxy(node, self)

        def create_proxy(self, kind: str, target: Any, *args: Any, **kwargs: Any) -> Any:
            proxy = super().create_proxy(kind, target, *args, **kwargs)
            if kind == "get_attr":
                self._disable_module_getattr = True  # read the attribute, do not trace it
                try:
                    value: Any = self.root
                    for atom in str(target).split("."):
                        value = getattr(value, atom)
                finally:
                    self._disable_module_getattr = False
                proxy.install_tensor_meta(value)
            return proxy

    return _configure(Sized() if sizes else Symbolic())


def trace_graph(
    module: nn.Module,
    leaves: LeafRules,
    samples: Sequence[InputSpec] | None,
    user_roots: Sequence[str],
    notes: list[str],
) -> fx.Graph:
    """The module's forward as an fx graph without input checks (``torch._assert``)."""
    cls = type(module).__name__
    mode = module.training
    module.eval()  # the inference path: dropout and stochastic depth follow self.training
    concrete = _concrete_arguments(module, len(samples) if samples else None)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # fx warns it cannot assert some defaults
            try:
                graph = _tracer(leaves, sizes=False).trace(module, concrete_args=concrete or None)
            except Exception as exc:
                error = _trace_error(cls, exc, user_roots)
                if not _branches(exc) or not samples:
                    if _branches(exc):
                        raise ArchitectureImportError(
                            f"{error}; if it depends on sizes only, --input traces it at "
                            "the sample's sizes"
                        ) from exc
                    raise error from exc
                graph = _sized_trace(module, leaves, samples, concrete, error)
                notes.append(
                    f"forward depends on sizes ({user_frame(exc) or cls}): traced at the sizes "
                    f"of {', '.join(s.text() for s in samples)}, so the import takes inputs of "
                    "those sizes only"
                )
    finally:
        module.train(mode)
    _drop_checks(graph)
    for node in list(graph.nodes):  # the placeholders of arguments fixed to their defaults
        if node.op == "placeholder" and not node.users and _fixed(str(node.target), concrete):
            graph.erase_node(node)
    return graph


def _sized_trace(
    module: nn.Module,
    leaves: LeafRules,
    samples: Sequence[InputSpec],
    concrete: dict[str, Any],
    error: ArchitectureImportError,
) -> fx.Graph:
    names = [
        p.name
        for p in inspect.signature(module.forward).parameters.values()
        if p.kind in {p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD}
    ][: len(samples)]
    generator = torch.Generator().manual_seed(0)
    meta = {name: spec.sample(generator) for name, spec in zip(names, samples, strict=False)}
    try:
        tracer = _tracer(leaves, sizes=True)
        return tracer.trace(module, meta_args=meta, concrete_args=concrete or None)  # type: ignore[call-arg]
    except Exception as exc:
        raise error from exc


def _branches(exc: Exception) -> bool:
    """Whether tracing failed where known sizes would do: control flow (an ``if`` on a
    traced value), or a size used as a Python number (``range(x.shape[0])``)."""
    text = str(exc)
    return (
        isinstance(exc, fx.proxy.TraceError)
        or "symbolically traced" in text
        or any(words in text for words, _ in _MEANINGS[:4])
    )


def _drop_checks(graph: fx.Graph) -> None:
    """``torch._assert(h == 224, ...)`` checks the input; the architecture does not need it."""
    for node in list(graph.nodes):
        if node.op == "call_function" and node.target in CHECK_FUNCTIONS:
            graph.erase_node(node)
    changed = True
    while changed:  # then what only the checks used (h == 224, h // p, x.shape)
        changed = False
        for node in reversed(list(graph.nodes)):
            name = str(getattr(node.target, "__name__", node.target))
            pure = node.op in {"call_function", "call_method"} and not name.endswith("_")
            if pure and not node.users:
                graph.erase_node(node)
                changed = True


def _concrete_arguments(module: nn.Module, inputs: int | None) -> dict[str, Any]:
    """forward's optional arguments beyond the inputs, fixed to their defaults (``attn_mask=
    None``), so only the tensors the model is called with become inputs."""
    parameters = [
        p
        for p in inspect.signature(module.forward).parameters.values()
        if p.kind in {p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY}
    ]
    if inputs is None:
        inputs = sum(1 for p in parameters if p.default is p.empty)
    return {p.name: p.default for p in parameters[inputs:] if p.default is not p.empty}


def _fixed(target: str, concrete: dict[str, Any]) -> bool:
    return any(target == name or target.startswith(name + "_") for name in concrete)


# What a failure to follow forward means, by the words of Python's or torch.fx's message.
_MEANINGS = (
    ("cannot be interpreted as an integer", "a size read from a tensor is used as a Python int "
     "(range(x.shape[0]), a list length); it can only be used in tensor operations"),
    ("'len' is not supported", "len() of a tensor; use x.shape[0] or x.size(0)"),
    ("int() argument", "int() of a size read from a tensor; use the size itself"),
    ("float() argument", "float() of a value read from a tensor"),
    ("is not iterable", "a loop over a tensor or its shape; index its parts instead"),
    ("cannot unpack", "unpacking a tensor (a, b = x); use x.unbind(0) or x[0], x[1]"),
)


def _in_user_terms(text: str, kind: str) -> str:
    for words, meaning in _MEANINGS:
        if words in text:
            return meaning
    return f"{kind} while following forward"


def _trace_error(cls: str, exc: Exception, user_roots: Sequence[str]) -> ArchitectureImportError:
    """A tracing failure in the user's terms: what, where, and which class to keep whole."""
    where = user_frame(exc)
    text = str(exc).strip()
    detail = text.splitlines()[0] if text else type(exc).__name__
    hint = ""
    if isinstance(exc, fx.proxy.TraceError) or "symbolically traced" in text:
        detail = "control flow depends on a tensor's values or sizes"
        hint = "; make it static"
        owner = frame_class(exc)
        if owner is not None and owner.__name__ != cls:
            name = class_path(owner) if is_library_class(owner, user_roots) else owner.__name__
            kind = "library layer" if "." in name else "custom layer"
            hint += f" or keep {owner.__name__} whole as a {kind} (--leaf {name})"
    elif "Proxy" in text or "fx" in text or "symbolic tracing" in text:
        detail = _in_user_terms(text, type(exc).__name__)
    return ArchitectureImportError(
        f"cannot trace {cls}: {detail}" + (f" (at {where})" if where else "") + hint
    )
