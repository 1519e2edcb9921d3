"""Checking a layer's attributes before they are written, without running user code.

The editors call :func:`check_layer_attributes` with the attributes a layer would have after an
edit; a refusal names the layer and the attribute, so nothing invalid reaches the document.

- Every layer: attribute names and types against its constructor's signature (the catalogue
  for ``torch.nn`` classes; a custom layer's code read with ``ast``), nested layers included.
- ``torch.nn`` layers: the value rules their constructors imply but do not all enforce
  (``out_channels`` of 1 or more, probabilities between 0 and 1, ...), then, once every
  required attribute is set, the constructor itself on PyTorch's ``meta`` device (library
  code, no memory). A custom layer's constructor is user code: it runs only in jobs.

:func:`layer_parameters` counts the trainable parameters of the ``torch.nn`` layers the same
way, so editors show them for any architecture, even one still being wired.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Mapping
from typing import Any

from forge_ops.arch._calls import known_specs, layer_call
from forge_ops.arch._functional import FUNCTIONAL_OPS
from forge_ops.arch._model import INPUT, OUTPUT, ArchitectureError, is_layer_value
from forge_ops.arch.catalogue import LayerSpec
from forge_ops.arch.custom import custom_layer_specs
from forge_ops.input_shape import INPUT_SHAPE_RULE, is_input_shape

__all__ = ["VALUE_RULES", "check_layer_attributes", "layer_parameters", "uses_custom_layers"]

_POSITIVE = "a positive integer (1 or more)"
_NATURAL = "an integer of 0 or more"
_PROBABILITY = "a number from 0 to 1"
_POSITIVE_NUMBER = "a number above 0"

#: What the value of a ``torch.nn`` constructor argument must be, by argument name. A list
#: value (``kernel_size=[3, 3]``) must hold such values; ``None`` and text (``padding='same'``)
#: are left to the type check and the constructor.
VALUE_RULES: dict[str, str] = {
    **dict.fromkeys(
        (
            "in_channels", "out_channels", "in_features", "out_features", "in1_features",
            "in2_features", "num_features", "num_channels", "num_groups", "kernel_size",
            "stride", "dilation", "groups", "num_embeddings", "embedding_dim", "input_size",
            "hidden_size", "num_layers", "embed_dim", "num_heads", "d_model", "nhead",
            "dim_feedforward", "num_encoder_layers", "num_decoder_layers", "upscale_factor",
            "downscale_factor",
        ),
        _POSITIVE,
    ),
    **dict.fromkeys(("padding", "output_padding", "proj_size"), _NATURAL),
    **dict.fromkeys(("p", "dropout", "momentum"), _PROBABILITY),
    "eps": _POSITIVE_NUMBER,
}


def _obeys(rule: str, value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if rule == _POSITIVE:
        return isinstance(value, int) and value >= 1
    if rule == _NATURAL:
        return isinstance(value, int) and value >= 0
    if not isinstance(value, int | float) or not math.isfinite(value):
        return False
    if rule == _PROBABILITY:
        return 0 <= value <= 1
    return value > 0


def _check_rule(where: str, key: str, value: Any) -> None:
    rule = VALUE_RULES.get(key)
    if rule is None or value is None or isinstance(value, str):
        return
    values = value if isinstance(value, list) else [value]
    for item in values:
        if item is not None and not isinstance(item, str) and not _obeys(rule, item):
            shown = f"{item!r} in {value!r}" if isinstance(value, list) else repr(item)
            raise ArchitectureError(f"{where}: {key} must be {rule}, got {shown}")


def _check_rules(label: str, attributes: Mapping[str, Any], specs: Mapping[str, LayerSpec]) -> None:
    """The value rules for a ``torch.nn`` layer's attributes and the layers nested in them."""
    for key, value in attributes.items():
        nested = value if isinstance(value, list) else [value]
        if any(is_layer_value(v) for v in nested):
            for position, item in enumerate(nested):
                spec = specs.get(item["type"]) if is_layer_value(item) else None
                if spec is not None and not spec.custom:
                    where = f"{label}, attribute {key!r}"
                    where += f"[{position}]" if isinstance(value, list) else ""
                    _check_rules(f"{where} ({item['type']})", item.get("attributes") or {}, specs)
            continue
        _check_rule(label, key, value)


def _specs(custom_layers: Mapping[str, str]) -> dict[str, LayerSpec]:
    """The catalogue (imports torch, once) and the custom layers read with ``ast``."""
    return known_specs(custom_layer_specs(dict(custom_layers)))


def _check_special(where: str, layer_type: str, attributes: Mapping[str, Any]) -> None:
    """Input and Output take ``index`` (and an Input its ``shape``); functional ops their own."""
    if layer_type in {INPUT, OUTPUT}:
        allowed = {"index", "shape"} if layer_type == INPUT else {"index"}
        for key, value in attributes.items():
            if key not in allowed:
                raise ArchitectureError(
                    f"{where}: {layer_type} has no attribute {key!r} "
                    f"(attributes: {', '.join(sorted(allowed))})"
                )
            if key == "index" and not _obeys(_NATURAL, value):
                raise ArchitectureError(f"{where}: index must be {_NATURAL}, got {value!r}")
            if key == "shape" and value is not None and not is_input_shape(value):
                raise ArchitectureError(f"{where}: shape must be {INPUT_SHAPE_RULE}")
        return
    op = FUNCTIONAL_OPS[layer_type]
    for key in attributes:
        if key not in op.attributes:
            known = ", ".join(op.attributes) or "none"
            raise ArchitectureError(
                f"{where}: {layer_type} has no attribute {key!r} (attributes: {known})"
            )


def _requires_missing(spec: LayerSpec, attributes: Mapping[str, Any]) -> bool:
    return any(a.required and a.name not in attributes for a in spec.attributes)


def _uses_custom(value: Any, specs: Mapping[str, LayerSpec]) -> bool:
    if is_layer_value(value):
        spec = specs.get(value["type"])
        return spec is None or spec.custom or any(
            _uses_custom(v, specs) for v in (value.get("attributes") or {}).values()
        )
    return isinstance(value, list) and any(_uses_custom(v, specs) for v in value)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _construct(label: str, call: Any) -> Any:
    """Run a ``torch.nn`` constructor on the meta device; its refusal names the layer."""
    import torch

    from forge_ops.arch.build import instantiate

    try:
        with warnings.catch_warnings(), torch.device("meta"):
            warnings.simplefilter("ignore")  # e.g. "Initializing zero-element tensors"
            return instantiate(call, {})
    except Exception as exc:  # the constructor's own checks: say which layer refused
        raise ArchitectureError(f"{label}: {_first_line(exc)}") from None


def check_layer_attributes(
    name: str,
    layer_type: str,
    attributes: Mapping[str, Any],
    custom_layers: Mapping[str, str] | None = None,
) -> None:
    """Raise ArchitectureError (naming layer ``name`` and the attribute) unless ``attributes``
    are valid for ``layer_type``. Attributes still unset are not an error here (a layer is
    filled in one attribute at a time); shape inference and runs report those."""
    label = f"layer {name!r} ({layer_type})"
    custom = dict(custom_layers or {})
    specs = _specs(custom)
    if layer_type in {INPUT, OUTPUT} or (layer_type in FUNCTIONAL_OPS and layer_type not in specs):
        _check_special(label, layer_type, attributes)
        return
    spec = specs.get(layer_type)
    complete = spec is not None and not _requires_missing(spec, attributes)
    # Names, types and nested layers, by the same checks a build makes.
    call = layer_call(label, layer_type, attributes, specs, partial=True)
    if spec is None or spec.custom:
        return  # a custom constructor is user code: its signature is all we check
    _check_rules(label, attributes, specs)
    if complete and not any(_uses_custom(v, specs) for v in attributes.values()):
        _construct(label, call)


def layer_parameters(
    arch: Mapping[str, Any], custom_layers: Mapping[str, str] | None = None
) -> dict[str, int]:
    """Trainable parameters of each ``torch.nn`` layer that can be constructed, by layer id.

    Layers with no parameters (Input, Output, functional ops, buffers) count 0, a Parameter
    node the values it holds (when trainable); custom layers and layers whose attributes are
    incomplete or invalid are left out (their code runs only in jobs; the editor reports the
    others' errors).
    """
    from forge_ops.arch._model import TENSOR_NODES
    from forge_ops.arch._params import is_trainable, tensor_count

    specs = _specs(dict(custom_layers or {}))
    counts: dict[str, int] = {}
    for layer_id, layer in (arch.get("layers") or {}).items():
        layer_type = str(layer.get("type"))
        attributes = dict(layer.get("attributes") or {})
        if layer_type in TENSOR_NODES:
            trainable = is_trainable(layer_type, attributes)
            counts[layer_id] = tensor_count(attributes) if trainable else 0
            continue
        if layer_type in {INPUT, OUTPUT} or (
            layer_type in FUNCTIONAL_OPS and layer_type not in specs
        ):
            counts[layer_id] = 0
            continue
        spec = specs.get(layer_type)
        if spec is None or spec.custom or _requires_missing(spec, attributes):
            continue
        if any(_uses_custom(v, specs) for v in attributes.values()):
            continue
        try:
            call = layer_call(f"layer {layer_id!r}", layer_type, attributes, specs)
            module = _construct(f"layer {layer_id!r}", call)
        except ArchitectureError:
            continue
        counts[layer_id] = sum(p.numel() for p in module.parameters() if p.requires_grad)
    return counts


def uses_custom_layers(arch: Mapping[str, Any], custom_names: Iterable[str]) -> bool:
    """Whether any layer of ``arch`` (nested layer attributes included) is a custom layer,
    whose code may run only in jobs."""
    names = set(custom_names)

    def walk(value: Any) -> bool:
        if is_layer_value(value):
            return value["type"] in names or any(
                walk(v) for v in (value.get("attributes") or {}).values()
            )
        return isinstance(value, list) and any(walk(v) for v in value)

    return any(
        walk({"type": layer.get("type"), "attributes": layer.get("attributes") or {}})
        for layer in (arch.get("layers") or {}).values()
        if isinstance(layer, Mapping) and isinstance(layer.get("type"), str)
    )
