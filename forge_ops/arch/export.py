"""Export an architecture to readable, standalone PyTorch source.

The result is one ``nn.Module`` class: layers are attributes made in ``__init__`` and
``forward`` follows the graph in topological order, one line per layer. It imports only torch
(custom layer code is copied in), so it runs without Forge installed. Attribute names are the
layers' identifiers, the same names :func:`build_module` uses, so a state dict trained in Forge
loads into the exported class as is.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from forge_ops.arch._calls import (
    LayerCall,
    call_modules,
    check_graph,
    custom_types,
    forward_arguments,
    functional_attributes,
    graph_specs,
    library_imports,
)
from forge_ops.arch._functional import FUNCTIONAL_OPS, render_functional
from forge_ops.arch._model import INPUT, OUTPUT, PARAMETER, TENSOR_NODES, Graph, Node, graph_of
from forge_ops.arch._op_base import literal, substitute
from forge_ops.arch._params import init_source, is_persistent
from forge_ops.arch.naming import class_name

_LINE = 100
_STATE_DICT_HOOK = """
    def _load_from_state_dict(self, state_dict: dict, prefix: str, *args, **kwargs) -> None:
        # Checkpoints of the original (imported) module use its nested names; accept them too.
        for new, old in self.ORIGINAL_NAMES.items():
            for key in [k for k in state_dict if k.startswith(prefix + old + ".")]:
                state_dict[prefix + new + key[len(prefix + old):]] = state_dict.pop(key)
            if prefix + old in state_dict:  # a parameter or buffer of its own
                state_dict[prefix + new] = state_dict.pop(prefix + old)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
"""


def render_call(call: LayerCall) -> str:
    """``nn.Conv2d(in_channels=3, ...)`` for a LayerCall (custom layers by class name)."""
    parts = [render_value(a) for a in call.args]
    parts += [f"{key}={render_value(value)}" for key, value in call.kwargs.items()]
    prefix = "" if call.custom or call.library else "nn."
    return f"{prefix}{call.type}({', '.join(parts)})"


def render_value(value: Any) -> str:
    if isinstance(value, LayerCall):
        return render_call(value)
    if isinstance(value, list) and any(isinstance(v, LayerCall) for v in value):
        return "[" + ", ".join(render_value(v) for v in value) + "]"
    return literal(value)


def _wrap(head: str, call: str, indent: str, tail: str = "") -> list[str]:
    """One line if it fits, otherwise the call's arguments one per line (recursively)."""
    line = f"{indent}{head}{call}{tail}"
    if len(line) <= _LINE or "(" not in call or not call.endswith(")"):
        return [line]
    name, _, rest = call.partition("(")
    lines = [f"{indent}{head}{name}("]
    for arg in _split_args(rest[:-1]):
        key, eq, value = arg.partition("=")
        if eq and key.isidentifier():
            lines += _wrap(f"{key}=", value, indent + "    ", ",")
        else:
            lines += _wrap("", arg, indent + "    ", ",")
    return [*lines, f"{indent}){tail}"]


def _split_args(text: str) -> list[str]:
    """Split top-level comma-separated arguments (brackets and strings respected)."""
    parts: list[str] = []
    current: list[str] = []
    depth, quote = 0, ""
    for char in text:
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append("".join(current).strip())
            current = []
            continue
        current.append(char)
    if "".join(current).strip():
        parts.append("".join(current).strip())
    return parts


def _calls_into(graph: Graph, module: str) -> bool:
    return any(
        str(node.attributes.get("function", "")).startswith(module + ".")
        for node in graph.nodes
        if node.type == "call"
    )


def _value_name(node: Node) -> str:
    """How forward code names a node's value: its variable, or the module's own tensor."""
    return f"self.{node.ident}" if node.type in TENSOR_NODES else node.ident


def _tensor_lines(node: Node) -> list[str]:
    """``__init__`` lines creating a Parameter or Buffer node's tensor."""
    value = init_source(node.attributes)
    if node.type == PARAMETER:
        grad = "" if node.attributes.get("requires_grad", True) else ", requires_grad=False"
        return _wrap(f"self.{node.ident} = ", f"nn.Parameter({value}{grad})", " " * 8)
    persistent = "" if is_persistent(node.type, node.attributes) else ", persistent=False"
    return _wrap("", f"self.register_buffer({node.ident!r}, {value}{persistent})", " " * 8)


def export_source(
    arch: Mapping[str, Any],
    custom_layers: Mapping[str, str] | None = None,
    class_name_: str | None = None,
) -> str:
    """PyTorch source for an architecture (one class named after it).

    ``custom_layers`` maps custom layer class names to code; the code of those the
    architecture uses is copied in verbatim. Raises ArchitectureError for malformed data.
    """
    graph = graph_of(arch)
    custom = dict(custom_layers or {})
    specs = graph_specs(graph, custom)
    calls = check_graph(graph, specs)
    used_custom = sorted(custom_types(calls.values()))
    cls = class_name_ or class_name(graph.name)
    if cls in used_custom or cls in {"F", "nn", "torch"}:
        cls = f"{cls}Net"

    header = ["import torch", "import torch.nn.functional as F", "from torch import nn"]
    libraries = sorted(library_imports(calls.values()) | call_modules(graph))
    header += [f"import {m}" for m in ("math", "operator") if _calls_into(graph, m)]
    if any(n.attributes.get("init") == "packed" for n in graph.nodes if n.type in TENSOR_NODES):
        header = ["import base64", "import zlib", "", *header]
    needs = "only torch" if not libraries else "torch and " + ", ".join(libraries)
    lines = [
        f'"""{graph.name}: exported from Forge as plain PyTorch (needs {needs})."""',
        "",
        *header,
        *[f"import {module}" for module in libraries],
        "",
    ]
    helpers = {FUNCTIONAL_OPS[n.type].helper for n in graph.nodes if n.type in FUNCTIONAL_OPS}
    for helper in sorted(h for h in helpers if h):
        lines += ["", helper.strip(), ""]
    for name in used_custom:
        # The header already has the usual imports; drop the custom code's copies of them.
        code = "\n".join(line for line in custom[name].splitlines() if line not in header)
        code = re.sub(r"\n{4,}", "\n\n\n", code.strip())
        lines += ["", f"# Custom layer {name}", code, ""]
    lines += ["", f"class {cls}(nn.Module):"]
    lines.append(f'    """{graph.name} ({len(graph.nodes)} layers, generated by Forge)."""')
    renamed = {
        node.ident: node.name
        for node in graph.nodes
        if (node.id in calls or node.type in TENSOR_NODES) and node.name != node.ident
    }
    if renamed:
        lines += ["", "    # Names of layers in the module this architecture was imported from."]
        lines += ["    ORIGINAL_NAMES = {"]
        lines += [f"        {new!r}: {old!r}," for new, old in renamed.items()]
        lines += ["    }"]
    lines += ["", "    def __init__(self) -> None:", "        super().__init__()"]
    for node in graph.nodes:
        if node.id in calls:
            lines += _wrap(f"self.{node.ident} = ", render_call(calls[node.id]), " " * 8)
        elif node.type in TENSOR_NODES:
            lines += _tensor_lines(node)

    inputs = graph.inputs
    outputs = graph.outputs
    params = ", ".join(f"{n.ident}: torch.Tensor" for n in inputs)
    returns = "torch.Tensor" if len(outputs) == 1 else "tuple[torch.Tensor, ...]"
    lines += ["", f"    def forward(self, {params}) -> {returns}:"]
    for node in graph.nodes:
        if node.type in {INPUT, OUTPUT} or node.type in TENSOR_NODES:
            continue
        args = [_value_name(graph.by_id[i]) for i in node.inputs]
        if node.id in calls:
            positions, keywords = forward_arguments(node)
            parts = [args[i] for i in positions]
            parts += [f"{k}={literal(substitute(v, args))}" for k, v in keywords.items()]
            expression = f"self.{node.ident}({', '.join(parts)})"
        else:
            expression = render_functional(
                FUNCTIONAL_OPS[node.type], args, functional_attributes(node, graph)
            )
        lines += _wrap(f"{node.ident} = ", expression, " " * 8)
    results = [_value_name(graph.by_id[n.inputs[0]]) for n in outputs]
    lines.append(f"        return {', '.join(results)}")
    if renamed:
        lines += _STATE_DICT_HOOK.splitlines()

    lines += ["", "", 'if __name__ == "__main__":', f"    model = {cls}()"]
    shapes = [
        n.attributes.get("shape") or (graph.input_shape if i == 0 else None)
        for i, n in enumerate(inputs)
    ]
    lines.append('    print(f"{sum(p.numel() for p in model.parameters())} parameters")')
    if all(shapes):
        sample = ", ".join(f"torch.randn({', '.join(map(str, s or []))})" for s in shapes)
        lines += [
            "    model.eval()",
            f"    result = model({sample})",
            "    print(result.shape if isinstance(result, torch.Tensor) "
            "else [r.shape for r in result])",
        ]
    return "\n".join(lines) + "\n"
