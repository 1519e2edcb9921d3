"""Turn a node's reference values (strings in the document) into objects inside a job.

How each reference type resolves (the value is the node's setting, else the code's default):

- ``Architecture``: an id in the project's ``architectures``; built into a fresh
  ``torch.nn.Module`` with ``forge_ops.arch.build_module(plain, custom_layers)``, its parameters
  initialised under ``ReferenceContext.seed`` so the same run builds the same weights.
- ``Criterion``: a ``torch.nn`` loss class name (``"CrossEntropyLoss"``) or a custom layer's id
  or name; instantiated with no arguments.
- ``Layer``: a custom layer's id or name, or a ``torch.nn`` class name; the class itself.
- ``Artifact``: a name in the project's ``artifacts``; its stored value, loaded by content hash
  with ``ReferenceContext.load_artifact``.

The executor builds the ReferenceContext from the snapshot the execution ran (the architectures,
layers and artifacts the pipeline's references point at).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from forge_ops.operations import OperationInterface, Reference, parse_interface

from ._context import ArtifactLoader

__all__ = ["ReferenceContext", "UnresolvedReference", "resolve_references"]


class UnresolvedReference(ValueError):
    """A reference cannot be resolved; the message says which one and what to pick instead."""


@dataclass(frozen=True)
class ReferenceContext:
    """Project items references may point at, as plain data (from the run's snapshot)."""

    architectures: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    layers: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    artifacts: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    load_artifact: ArtifactLoader | None = None
    seed: int = 0

    def custom_layer_code(self) -> dict[str, str]:
        """Custom layers as ``{name: code}``, the form ``build_module`` takes."""
        return {str(layer["name"]): str(layer["code"]) for layer in self.layers.values()}


def resolve_references(
    interface: OperationInterface | str,
    values: Mapping[str, Any],
    context: ReferenceContext,
) -> dict[str, Any]:
    """Resolve every reference of the operation (``interface`` or its code) to an object.

    References without a value and without a default are left out (the operation then fails
    saying it is not set; validation reports it before a run). Raises UnresolvedReference.
    """
    if isinstance(interface, str):
        interface = parse_interface(interface)
    resolved: dict[str, Any] = {}
    for reference in interface.references:
        value = values.get(reference.name) or reference.default
        if value is None:
            continue
        if not isinstance(value, str):
            raise UnresolvedReference(f"reference {reference.name!r} must be set to a name or id "
                                 f"(a string), not {value!r}")
        resolved[reference.name] = _resolve(reference, value, context)
    return resolved


def _resolve(reference: Reference, value: str, context: ReferenceContext) -> Any:
    if reference.type == "Architecture":
        return _architecture(reference, value, context)
    if reference.type == "Criterion":
        return _torch_or_custom(reference, value, context, loss=True)()
    if reference.type == "Layer":
        return _torch_or_custom(reference, value, context, loss=False)
    if reference.type == "Artifact":
        return _artifact(reference, value, context)
    raise UnresolvedReference(f"reference {reference.name!r} has unknown type {reference.type}")


def _architecture(reference: Reference, value: str, context: ReferenceContext) -> Any:
    plain = context.architectures.get(value)
    if plain is None:
        matches = [arch for arch in context.architectures.values() if arch.get("name") == value]
        if len(matches) != 1:
            raise UnresolvedReference(f"reference {reference.name!r}: no architecture with id "
                                 f"{value!r}; choose one of the project's architectures")
        plain = matches[0]
    import torch

    from forge_ops.arch import ArchitectureError, build_module

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(context.seed)
        try:
            return build_module(dict(plain), context.custom_layer_code())
        except ArchitectureError as exc:
            raise UnresolvedReference(f"reference {reference.name!r}: architecture "
                                      f"{plain.get('name', value)!r} cannot be built: {exc}; "
                                      "fix it in the architecture editor") from exc


def _custom_layer_class(value: str, context: ReferenceContext) -> type | None:
    layer = context.layers.get(value)
    if layer is None:
        layer = next((item for item in context.layers.values() if item.get("name") == value),
                     None)
    if layer is None:
        return None
    from forge_ops.arch.custom import CustomLayerError, load_custom_layers

    name = str(layer["name"])
    try:
        return load_custom_layers({name: str(layer["code"])})[name]
    except (CustomLayerError, ValueError) as exc:
        raise UnresolvedReference(f"custom layer {name!r} cannot be used: {exc}") from exc


def _torch_or_custom(
    reference: Reference, value: str, context: ReferenceContext, *, loss: bool
) -> type:
    custom = _custom_layer_class(value, context)
    if custom is not None:
        return custom
    import torch

    candidate = getattr(torch.nn, value, None)
    base: type = torch.nn.modules.loss._Loss if loss else torch.nn.Module
    if isinstance(candidate, type) and issubclass(candidate, base):
        return candidate
    what = "a torch.nn loss class (e.g. CrossEntropyLoss)" if loss else "a torch.nn layer class"
    raise UnresolvedReference(f"reference {reference.name!r}: {value!r} is neither a custom "
                              f"layer nor {what}; pick one of those")


def _artifact(reference: Reference, value: str, context: ReferenceContext) -> Any:
    record = context.artifacts.get(value)
    if record is None or not record.get("hash"):
        raise UnresolvedReference(f"reference {reference.name!r}: no artifact named {value!r}; "
                             "choose one of the project's artifacts")
    if context.load_artifact is None:
        raise UnresolvedReference(f"reference {reference.name!r}: no artifact store to load "
                             f"{value!r} from")
    return context.load_artifact(str(record["hash"]))
