"""Recovering a layer's constructor arguments from the module object, checked by rebuilding.

torch keeps most constructor arguments as attributes of the same name (``Conv2d.stride``);
the rest are recovered from the layer's parts. Every recovered layer is rebuilt and compared
with the original, so an import never silently changes a layer. Imports torch; loaded only
when a module is being imported.
"""

from __future__ import annotations

import ast
import inspect
import re
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from forge_ops.arch._calls import layer_call
from forge_ops.arch._user_code import ArchitectureImportError
from forge_ops.arch.build import instantiate
from forge_ops.arch.catalogue import LayerSpec, catalogue
from forge_ops.arch.custom import load_custom_layers


def _plain(value: Any) -> Any:
    """A module attribute as a plain JSON value, or raise TypeError."""
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
    if spec is None or getattr(nn, cls.__name__, None) is not cls:
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


def check_recovered(name: str, original: nn.Module, attributes: dict[str, Any]) -> None:
    """Rebuild a layer from recovered attributes and compare it with the original."""
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
    try:
        source = textwrap.dedent(inspect.getsource(cls))
        file = inspect.getsourcefile(cls)
        # Bytes, so a coding cookie is honoured as Python itself would read the file.
        tree = ast.parse(Path(file).read_bytes() if file else b"")
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


def check_custom(
    target: str, original: nn.Module, name: str, code: str, attributes: dict[str, Any]
) -> None:
    """Rebuild a custom layer from its recovered attributes; compare parameter shapes."""
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
