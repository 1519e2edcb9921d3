"""Attribute values are checked against the layer's constructor before they are written, with
messages naming the layer and the attribute; custom layer code is read, never run."""

from __future__ import annotations

from typing import Any

import pytest

from forge_ops.arch import ArchitectureBuilder, ArchitectureError, infer_shapes, small_cnn
from forge_ops.arch.validate import (
    check_layer_attributes,
    layer_parameters,
    uses_custom_layers,
)
from forge_ops.examples import CUSTOM_LAYER, example_code

CUSTOM = {CUSTOM_LAYER: example_code(CUSTOM_LAYER)}
CONV = {"in_channels": 3, "out_channels": 16, "kernel_size": 3}


@pytest.mark.parametrize(("layer_type", "attributes", "message"), [
    ("Conv2d", {**CONV, "out_channels": -16},
     "layer 'l' (Conv2d): out_channels must be a positive integer (1 or more), got -16"),
    ("Conv2d", {"out_channels": 0},  # checked while the layer is still being filled in
     "out_channels must be a positive integer (1 or more), got 0"),
    ("Conv2d", {**CONV, "kernel_size": [3, 0]}, "kernel_size must be a positive integer"),
    ("Conv2d", {**CONV, "padding": -1}, "padding must be an integer of 0 or more, got -1"),
    ("Conv2d", {**CONV, "in_channels": "three"},
     "layer 'l' (Conv2d), attribute 'in_channels' must be int, got 'three'"),
    ("Conv2d", {**CONV, "kernel": 3}, "Conv2d has no attribute 'kernel'; did you mean"),
    ("Conv2d", {**CONV, "groups": 2}, "layer 'l' (Conv2d): in_channels must be divisible by"),
    ("Conv2d", {**CONV, "padding": "same", "stride": 2}, "not supported for strided"),
    ("Dropout", {"p": 1.5}, "layer 'l' (Dropout): p must be a number from 0 to 1, got 1.5"),
    ("BatchNorm2d", {"num_features": 16, "eps": 0}, "eps must be a number above 0"),
    ("Linear", {"in_features": True, "out_features": 3}, "must be int, got True"),
    ("Sequential", {"args": [{"type": "Linear",
                              "attributes": {"in_features": 3, "out_features": -1}}]},
     "attribute 'args'[0] (Linear): out_features must be a positive integer"),
    ("Input", {"shape": [1, -3]}, "layer 'l' (Input): shape must be positive integers"),
    ("Output", {"shape": [1]}, "Output has no attribute 'shape'"),
    ("relu", {"inplace": True}, "relu has no attribute 'inplace'"),
    (CUSTOM_LAYER, {"in_channels": "x"}, "attribute 'in_channels' must be int, got 'x'"),
])
def test_invalid_values_are_refused_naming_layer_and_attribute(
    layer_type: str, attributes: dict[str, Any], message: str
) -> None:
    with pytest.raises(ArchitectureError) as refused:
        check_layer_attributes("l", layer_type, attributes, CUSTOM)
    assert message in str(refused.value)


@pytest.mark.parametrize(("layer_type", "attributes"), [
    ("Conv2d", CONV),
    ("Conv2d", {**CONV, "padding": "same", "kernel_size": [3, 5]}),
    ("Conv2d", {"in_channels": 3}),  # the rest is set later
    ("Dropout", {"p": 0.0}),
    ("Input", {"index": 1, "shape": [1, 3, 8, 8]}),
    ("add", {}),
    # A custom constructor is user code: only its signature's types are checked, so a value
    # its code might refuse is written (and a run reports what the code says).
    (CUSTOM_LAYER, {"in_channels": -3, "out_channels": 8}),
])
def test_valid_values_pass(layer_type: str, attributes: dict[str, Any]) -> None:
    check_layer_attributes("l", layer_type, attributes, CUSTOM)


def test_custom_layer_code_never_runs(tmp_path: Any) -> None:
    marker = tmp_path / "ran"
    code = (
        "from torch import nn\n"
        f"open({str(marker)!r}, 'w').write('ran')\n"
        "class Boom(nn.Module):\n"
        "    def __init__(self, width: int = 3):\n"
        f"        open({str(marker)!r}, 'w').write('ran')\n"
        "        super().__init__()\n"
    )
    check_layer_attributes("b", "Boom", {"width": 4}, {"Boom": code})
    arch = {"layers": {"b": {"type": "Boom", "attributes": {"width": 4}}}, "edges": {}}
    assert layer_parameters(arch, {"Boom": code}) == {}
    assert uses_custom_layers(arch, ["Boom"])
    assert not marker.exists()


def test_parameters_are_counted_for_layers_that_can_be_built() -> None:
    counts = layer_parameters(small_cnn())
    assert sum(counts.values()) == 136_874 == infer_shapes(small_cnn()).total_parameters
    arch = {"layers": {
        "conv": {"type": "Conv2d", "attributes": CONV},
        "half": {"type": "Conv2d", "attributes": {"in_channels": 3}},  # not filled in yet
        "bad": {"type": "Conv2d", "attributes": {**CONV, "groups": 2}},
        "x": {"type": "Input", "attributes": {}},
    }, "edges": {}}
    assert layer_parameters(arch) == {"conv": 448, "x": 0}


def test_a_constructor_refusal_at_build_time_names_the_layer() -> None:
    """Before: PyTorch's "Trying to create tensor with negative dimension -16" alone."""
    b = ArchitectureBuilder("Net", [1, 3, 8, 8])
    x = b.input()
    conv = b.layer("Conv2d", "conv1", x, in_channels=3, out_channels=-16, kernel_size=3)
    b.output(conv)
    with pytest.raises(ArchitectureError, match=r"layer 'conv1' \(Conv2d\): .*-16") as failed:
        infer_shapes(b.plain())
    assert failed.value.layer_id == conv


def test_a_shape_error_carries_the_layer_id() -> None:
    b = ArchitectureBuilder("Net", [1, 3, 8, 8])
    x = b.input()
    fc = b.layer("Linear", "fc", x, in_features=5, out_features=2)
    b.output(fc)
    with pytest.raises(ArchitectureError, match=r"layer 'fc' \(Linear\) got input shape") as bad:
        infer_shapes(b.plain())
    assert bad.value.layer_id == fc
