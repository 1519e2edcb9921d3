"""Recovering a layer's constructor arguments from the module object, checked by rebuilding.

torch keeps most constructor arguments as attributes of the same name (``Conv2d.stride``);
the rest are recovered from the layer's parts. Every recovered layer is rebuilt and compared
with the original, so an import never silently changes a layer. Imports torch; loaded only
when a module is being imported.
"""

from __future__ import annotations

import ast
import base64
import inspect
import math
import re
import textwrap
import zlib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from forge_ops.arch._calls import layer_call
from forge_ops.arch._model import BUFFER, PARAMETER
from forge_ops.arch._params import DATA_LIMIT, PACKED_LIMIT
from forge_ops.arch._user_code import ArchitectureImportError
from forge_ops.arch.build import instantiate
from forge_ops.arch.catalogue import LayerSpec, catalogue, layer_spec
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


def check_recovered(
    name: str, original: nn.Module, attributes: dict[str, Any], type_name: str | None = None
) -> None:
    """Rebuild a layer from recovered attributes and compare it with the original."""
    type_name = type_name or type(original).__name__
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


def check_library(name: str, original: nn.Module, path: str, attributes: dict[str, Any]) -> None:
    """A library layer rebuilt from its arguments has the original's parameters and repr."""
    try:
        check_recovered(name, original, attributes, path)
    except ArchitectureImportError as exc:
        raise ArchitectureImportError(
            f"{exc}; the class keeps its constructor arguments in ways Forge cannot read back"
        ) from exc


def recorded_attributes(
    name: str, module: nn.Module, recorded: Mapping[str, Any]
) -> dict[str, Any]:
    """Constructor arguments as given (recorded while the model was built), minus defaults."""
    parameters = inspect.signature(type(module).__init__).parameters
    found: dict[str, Any] = {}
    for key, value in recorded.items():
        param = parameters.get(key)
        if param is not None and param.default is not param.empty and _same(value, param.default):
            continue
        try:
            found[key] = _plain(value)
        except TypeError:
            raise ArchitectureImportError(
                f"layer {name!r} ({type(module).__name__}) was built with {key}={value!r}, "
                "which an architecture cannot store (numbers, strings, tuples and torch.nn "
                "layers can be); build it with its default or keep its parent whole"
            ) from None
    return found


def _same(value: Any, default: Any) -> bool:
    if value is default:
        return True
    try:
        return bool(type(value) is type(default) and value == default)
    except Exception:  # tensors and other values without a plain ==
        return False


def custom_attributes(
    module: nn.Module, spec: LayerSpec, recorded: Mapping[str, Any] | None
) -> dict[str, Any]:
    """A custom layer's attributes: the arguments it was built with, else its attributes of
    the same names."""
    if recorded is not None:
        return recorded_attributes(spec.name, module, recorded)
    return module_attributes(module, spec, collapse=False)


def library_attributes(module: nn.Module, recorded: Mapping[str, Any] | None) -> dict[str, Any]:
    """A library layer's constructor arguments (recorded, else read from its attributes)."""
    if recorded is not None:
        return recorded_attributes(type(module).__name__, module, recorded)
    return module_attributes(module, layer_spec(type(module)), collapse=False)


def tensor_attributes(value: torch.Tensor, kind: str, persistent: bool) -> dict[str, Any]:
    """A Parameter/Buffer node's attributes for a tensor: shape, dtype, a fitting init."""
    tensor = value.detach()
    found: dict[str, Any] = {"shape": list(tensor.shape)}
    dtype = str(tensor.dtype).removeprefix("torch.")
    if dtype != "float32":
        found["dtype"] = dtype
    if kind == PARAMETER and not value.requires_grad:
        found["requires_grad"] = False
    if kind == BUFFER and not persistent:
        found["persistent"] = False
    found.update(_init_of(tensor, kind))
    return found


def _shortest(values: torch.Tensor) -> list[Any]:
    """Values as plain numbers, floats written with the fewest digits that give the same
    value in the tensor's dtype (1e-06, not float32's 9.999999974752427e-07)."""
    if values.dtype in {torch.float16, torch.bfloat16, torch.float32}:
        return [float(str(v)) for v in values.detach().float().cpu().numpy()]
    return list(values.tolist())


def _round(value: float) -> float:
    return float(f"{value:.2g}")


def _init_of(tensor: torch.Tensor, kind: str) -> dict[str, Any]:
    """How a fresh model would fill the tensor: its constant, its values, or a fitted
    distribution (a guess: the trained values load from the state dict)."""
    if tensor.numel() == 0 or tensor.device.type == "meta":
        return {}
    flat = tensor.flatten()
    first = _shortest(flat[:1])[0]
    if bool((flat == flat[0]).all()):
        if first == 0:
            return {}
        if first == 1:
            return {"init": "ones"}
        return {"init": "full", "value": first if math.isfinite(first) else {"float": str(first)}}
    floating = tensor.is_floating_point()
    if (kind == BUFFER or not floating) and tensor.numel() <= DATA_LIMIT:
        return {"init": "data", "data": _shortest(flat)}
    if kind == BUFFER:
        raw = flat.contiguous().cpu().view(torch.uint8).numpy().tobytes()
        packed = base64.b64encode(zlib.compress(raw, 9)).decode()
        if len(packed) <= PACKED_LIMIT:
            return {"init": "packed", "packed": packed}
    if not floating:
        return {}
    values = flat.double()
    mean, std = float(values.mean()), float(values.std())
    low, high = float(values.min()), float(values.max())
    if values.numel() >= 16 and abs(std - (high - low) / math.sqrt(12)) < 0.1 * std:
        return {"init": "uniform", "low": _round(low), "high": _round(high)}
    init = "trunc_normal" if max(high - mean, mean - low) <= 2.05 * std else "normal"
    found: dict[str, Any] = {"init": init, "std": _round(std)}
    if abs(mean) > 0.1 * std:
        found["mean"] = _round(mean)
    return found


def class_source(cls: type) -> str:
    """A class's source, preceded by its file's top-level imports, the module-level functions
    and constants it uses, and its own base classes from the same file (so it runs alone)."""
    try:
        file = inspect.getsourcefile(cls)
        # Bytes, so a coding cookie is honoured as Python itself would read the file.
        tree = ast.parse(Path(file).read_bytes() if file else b"")
        classes = [
            base
            for base in reversed(cls.__mro__)
            if base is cls
            or (
                issubclass(base, nn.Module)
                and base.__module__ == cls.__module__
                and inspect.getsourcefile(base) == file
            )
        ]
        sources = [textwrap.dedent(inspect.getsource(c)) for c in classes]
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
    helpers = _helpers(tree, "\n".join(sources), {c.__name__ for c in classes})
    parts = ["\n".join(imports), *helpers, *sources]
    return "\n\n\n".join(p.strip("\n") for p in parts if p.strip()) + "\n"


def _helpers(tree: ast.Module, code: str, classes: set[str]) -> list[str]:
    """Top-level functions, classes and constants of the file that ``code`` uses, with what
    they use in turn, in file order."""
    definitions: dict[str, ast.stmt] = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.ClassDef) and node.name not in classes:
            definitions[node.name] = node
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    definitions[target.id] = node
    needed: set[str] = set()
    pending = [code]
    while pending:
        names = {n.id for n in ast.walk(ast.parse(pending.pop())) if isinstance(n, ast.Name)}
        for name in sorted(names & set(definitions) - needed):
            needed.add(name)
            pending.append(ast.unparse(definitions[name]))
    chosen = {id(definitions[name]) for name in needed}
    return [ast.unparse(node) for node in tree.body if id(node) in chosen]


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
