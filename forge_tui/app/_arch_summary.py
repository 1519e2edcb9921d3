"""What the architecture editor shows everyone about an architecture: the input shape it
starts from, each layer's parameters and the total, each edge's shape, and the first error
with the layer it names.

Everything is read from the shared document (the input shape included), so every client
shows the same. :func:`summarize` imports torch (layers are built on the ``meta`` device):
call it off the UI thread. Custom layers are user code, which runs only in jobs: their
parameters are not counted, and shapes are not inferred through them here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from forge_tui.app._graphs import format_params

NO_INPUT_SHAPE = "no input shape yet: press s to set one (e.g. 1, 3, 32, 32)"
CUSTOM_SHAPES = "shapes are not inferred here through custom layers (their code runs in jobs)"


@dataclass(frozen=True)
class ArchSummary:
    """``parameters`` by layer id (layers left out are not counted: custom or incomplete);
    ``edge_shapes`` by edge id; ``error`` the first problem and ``error_layer`` its layer."""

    input_shape: list[int] | None = None
    parameters: dict[str, int] = field(default_factory=dict)
    uncounted: int = 0
    edge_shapes: dict[str, Any] = field(default_factory=dict)
    error: str = ""
    error_layer: str | None = None

    @property
    def total(self) -> int:
        return sum(self.parameters.values())

    def line(self) -> str:
        """One line for the top of the editor: input shape, then the parameter total."""
        shape = "×".join(str(d) for d in self.input_shape) if self.input_shape else "not set (s)"
        total = f"total {format_params(self.total)}"
        if self.uncounted:
            total += f" (+{self.uncounted} uncounted)"
        return f"input {shape} · {total}"


def summarize(arch: Mapping[str, Any], custom_layers: Mapping[str, str]) -> ArchSummary:
    """Parameters always (of the layers that can be built), shapes when there is an input
    shape; never raises: a problem becomes ``error``."""
    from forge_ops.arch import ArchitectureError, user_code_in
    from forge_ops.arch.shapes import infer_shapes
    from forge_ops.arch.validate import layer_parameters, uses_custom_layers

    layers = arch.get("layers") or {}
    input_shape = arch.get("input_shape")
    code = user_code_in(arch, custom_layers)
    if code and not code.startswith("custom layer"):
        # Library layers and functions import packages: that code runs only in jobs.
        return ArchSummary(input_shape, uncounted=len(layers),
                           error=f"shapes and parameters: not worked out here ({code} runs in "
                           "jobs)")
    try:
        parameters = layer_parameters(arch, custom_layers)
    except Exception as exc:  # a broken torch install must not take the editor down
        return ArchSummary(input_shape, error=f"parameters: {exc}")
    base = ArchSummary(input_shape, parameters, uncounted=len(layers) - len(parameters))
    if not layers:
        return base
    if uses_custom_layers(arch, custom_layers):
        return replace(base, error=CUSTOM_SHAPES)
    has_shape = input_shape or any(
        (layer.get("attributes") or {}).get("shape") for layer in layers.values()
    )
    if not has_shape:
        return replace(base, error=NO_INPUT_SHAPE)
    try:
        report = infer_shapes(arch)
    except ArchitectureError as exc:
        return replace(base, error=str(exc), error_layer=exc.layer_id)
    except Exception as exc:  # torch may refuse in ways we do not model; say so, keep drawing
        return replace(base, error=f"{type(exc).__name__}: {exc}")
    return replace(base, edge_shapes=dict(report.edge_shapes))
