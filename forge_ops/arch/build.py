"""Turning an architecture's plain data into a runnable ``nn.Module`` (inside a job).

:func:`build_module` is what the job runtime calls for an operation's architecture reference.
Layers become submodules named by their identifiers (the same names exported source uses, so
state dicts move between a built module and its exported code unchanged).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from forge_ops.arch._calls import LayerCall, check_graph, custom_types, graph_specs
from forge_ops.arch._model import ArchitectureError, graph_of
from forge_ops.arch.custom import load_custom_layers

if TYPE_CHECKING:
    from torch import nn


def instantiate(call: LayerCall, classes: Mapping[str, type]) -> Any:
    """Create the module a LayerCall describes (nested layer attributes first)."""
    from torch import nn

    def value(v: Any) -> Any:
        if isinstance(v, LayerCall):
            return instantiate(v, classes)
        if isinstance(v, list):
            converted = [value(item) for item in v]
            # Layer lists stay lists (ModuleList-style); plain lists become tuples for torch.
            return (
                converted if any(isinstance(c, nn.Module) for c in converted) else tuple(converted)
            )
        return v

    if call.library:
        cls = import_path(call.type)
    else:
        cls = classes[call.type] if call.custom else getattr(nn, call.type)
    return cls(*[value(a) for a in call.args], **{k: value(v) for k, v in call.kwargs.items()})


def import_path(path: str) -> Any:
    """The object at ``package.module.name`` (imports the package: jobs and imports only)."""
    import importlib

    module, _, name = path.rpartition(".")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        raise ArchitectureError(
            f"cannot import {path} ({exc}); install its package where the job runs"
        ) from exc


def build_module(
    arch: Mapping[str, Any], custom_layers: Mapping[str, str] | None = None
) -> nn.Module:
    """Build an architecture's plain data into a module with freshly initialised weights.

    ``custom_layers`` maps a custom layer's class name to its code (the project's ``layers``);
    that code is executed here, so call this only inside a job. Raises ArchitectureError for
    malformed data, naming the layer at fault.
    """
    graph = graph_of(arch)
    custom = dict(custom_layers or {})
    specs = graph_specs(graph, custom)
    calls = check_graph(graph, specs)
    used = custom_types(calls.values())
    classes = load_custom_layers({name: custom[name] for name in sorted(used)})
    layers = {}
    for node_id, call in calls.items():
        node = graph.by_id[node_id]
        try:
            layers[node.ident] = instantiate(call, classes)
        except Exception as exc:
            if call.custom:
                raise  # user code: its own traceback says where it failed
            # torch's message alone ("negative dimension -16") does not say which layer
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise ArchitectureError(
                f"layer {node.name!r} ({node.type}): {first}", layer_id=node_id
            ) from exc
    from forge_ops.arch._runtime import ArchitectureModule  # imports torch: only when building

    return ArchitectureModule(graph, layers)
