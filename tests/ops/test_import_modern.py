"""Today's architectures import and export exactly (Issue 20).

Each family in ``modern_models.py`` reproduces, at tiny width, the constructs torchvision and
timm use (class tokens, channels-first LayerNorm via F.layer_norm, window attention with a
relative-position bias table, stochastic depth, channel shuffle, unfold/fold, last-step
slicing, factories). Each is imported, exported, loaded strictly with the original's weights,
and compared at two batch sizes and two input sizes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from forge_ops.arch import (
    ArchitectureImportError,
    build_module,
    canonical,
    export_source,
    infer_shapes,
)
from forge_ops.arch._inputs import parse_input
from forge_ops.arch._load import load_target
from forge_ops.arch.importer import import_file

MODELS = Path(__file__).with_name("modern_models.py")

# name, --input given to the import, then samples: two batch sizes and two input sizes.
FAMILIES = [
    ("TinyViT", ["float[2,3,8,8]"], ["float[1,3,8,8]", "float[3,3,8,8]", "float[2,3,16,12]"]),
    ("TinyConvNeXt", ["float[2,3,16,16]"], ["float[1,3,16,16]", "float[3,3,24,32]"]),
    ("TinySwin", ["float[2,3,8,8]"], ["float[1,3,8,8]", "float[3,3,16,12]"]),
    ("TinyEfficientNet", ["float[2,3,16,16]"], ["float[1,3,16,16]", "float[3,3,24,20]"]),
    ("TinyShuffleNet", ["float[2,3,16,16]"], ["float[1,3,16,16]", "float[4,3,12,20]"]),
    ("TinyMobileViT", ["float[2,3,16,16]"], ["float[1,3,16,16]", "float[3,3,8,24]"]),
    ("TextClassifier", ["long[2,7]:0..99"], ["long[1,7]:0..99", "long[4,11]:0..99"]),
    ("make_classifier", None, ["float[1,3,8,8]", "float[3,3,12,16]"]),
    ("FourierPositions", None, ["float[1,3,8,8]", "float[3,3,5,7]"]),
]


def randomised(module: torch.nn.Module) -> torch.nn.Module:
    """Weights far from their initial values (a layer scale of 1e-6 would hide mistakes)."""
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.5)
    return module.eval()


def load_exported(source: str) -> torch.nn.Module:
    namespace: dict[str, Any] = {"__name__": "exported"}
    exec(compile(source, "<exported>", "exec"), namespace)
    name = source.rsplit("\nclass ", 1)[-1].split("(", 1)[0]
    module: torch.nn.Module = namespace[name]()
    return module.eval()


def same_outputs(a: Any, b: Any) -> bool:
    a = a if isinstance(a, tuple) else (a,)
    b = b if isinstance(b, tuple) else (b,)
    return all(torch.allclose(x, y, atol=1e-5, rtol=1e-4) for x, y in zip(a, b, strict=True))


def layers_of(arch: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {layer["name"]: layer for layer in arch["layers"].values()}


def imported(name: str, inputs: list[str] | None) -> tuple[dict[str, Any], dict[str, str]]:
    custom: dict[str, str] = {}
    notes: list[str] = []
    arch = import_file(str(MODELS), name, inputs=inputs, custom_layers=custom, notes=notes)
    assert notes[-1].endswith("the import matches the original"), notes
    return arch, custom


class TestFamilies:
    @pytest.mark.parametrize(("name", "inputs", "samples"), FAMILIES, ids=[f[0] for f in FAMILIES])
    def test_round_trip_loads_strictly_and_matches(
        self, name: str, inputs: list[str] | None, samples: list[str]
    ) -> None:
        arch, custom = imported(name, inputs)
        original = randomised(load_target(str(MODELS), name).module)
        exported = load_exported(export_source(arch, custom))
        exported.load_state_dict(original.state_dict(), strict=True)
        built = build_module(arch, custom).eval()
        built.load_state_dict(original.state_dict(), strict=True)
        count = sum(p.numel() for p in original.parameters())
        assert sum(p.numel() for p in exported.parameters()) == count
        assert sum(p.numel() for p in built.parameters()) == count
        generator = torch.Generator().manual_seed(2)
        for text in samples:
            sample = parse_input(text).sample(generator)
            with torch.no_grad():
                want = original(sample)
                assert same_outputs(want, exported(sample)), text
                assert same_outputs(want, built(sample)), text

    def test_vit_class_token_position_embedding_and_attention(self) -> None:
        arch, _ = imported("TinyViT", ["float[2,3,8,8]"])
        layers = layers_of(arch)
        assert layers["class_token"]["type"] == "Parameter"
        assert layers["class_token"]["attributes"] == {"shape": [1, 1, 16]}
        assert layers["pos_embedding"]["attributes"]["shape"] == [1, 5, 16]
        assert layers["pos_embedding"]["attributes"]["init"] in {"normal", "trunc_normal"}
        attention = layers["blocks.1.attn"]
        assert attention["type"] == "MultiheadAttention"
        assert attention["attributes"]["forward"] == {"need_weights": False}
        types = {layer["type"] for layer in arch["layers"].values()}
        assert {"scaled_dot_product_attention", "unbind", "expand", "size", "floordiv"} <= types
        pooled = [layer for layer in arch["layers"].values() if layer["type"] == "getitem"
                  and layer["attributes"]["index"] == [{"slice": [None, None, None]}, 0]]
        assert pooled  # x[:, 0]
        drops = [layer["attributes"] for layer in arch["layers"].values()
                 if layer["type"] == "stochastic_depth"]
        assert {"p": 0.1} in drops
        source = export_source(arch)
        assert "torch._assert" not in source and "self.class_token.expand(size, -1, -1)" in source
        original = load_target(str(MODELS), "TinyViT").module
        report = infer_shapes(arch)  # on the meta device, Parameter nodes counted
        assert report.total_parameters == sum(p.numel() for p in original.parameters())
        head = next(i for i, layer in arch["layers"].items() if layer["name"] == "head")
        assert report.layer_shapes[head] == [2, 5]

    def test_convnext_layer_norm_parameters_keep_their_names(self) -> None:
        arch, _ = imported("TinyConvNeXt", ["float[2,3,16,16]"])
        layers = layers_of(arch)
        assert layers["stage1.layer_scale"]["attributes"] == {
            "shape": [8, 1, 1], "init": "full", "value": pytest.approx(1e-6),
        }
        assert layers["stem.1.weight"]["type"] == "Parameter"
        norm = next(i for i, layer in arch["layers"].items() if layer["type"] == "layer_norm")
        assert arch["layers"][norm]["attributes"]["weight"] == {"input": 1}
        fed = {arch["layers"][e["src"]]["name"] for e in arch["edges"].values() if e["dst"] == norm}
        assert {"stem.1.weight", "stem.1.bias"} <= fed
        source = export_source(arch)
        assert "'stage1_layer_scale': 'stage1.layer_scale'" in source
        assert "def _stochastic_depth(" in source  # written with torch alone

    def test_swin_bias_table_and_index_buffer(self) -> None:
        arch, _ = imported("TinySwin", ["float[2,3,8,8]"])
        layers = layers_of(arch)
        index = layers["blocks.0.attn.relative_position_index"]
        assert index["type"] == "Buffer"
        assert index["attributes"]["persistent"] is False
        assert index["attributes"]["init"] == "data" and len(index["attributes"]["data"]) == 16
        assert layers["blocks.1.attn.relative_position_bias_table"]["type"] == "Parameter"
        assert "roll" in {layer["type"] for layer in arch["layers"].values()}

    def test_text_model_takes_token_ids(self) -> None:
        arch, _ = imported("TextClassifier", ["long[2,7]:0..99"])
        tokens = next(layer for layer in arch["layers"].values() if layer["type"] == "Input")
        assert tokens["attributes"] == {"shape": [2, 7], "dtype": "int64", "range": [0.0, 99.0]}
        last = [layer["attributes"]["index"] for layer in arch["layers"].values()
                if layer["type"] == "getitem" and isinstance(layer["attributes"]["index"], list)]
        assert [{"slice": [None, None, None]}, -1, {"slice": [None, None, None]}] in last

    def test_several_inputs(self) -> None:
        arch, _ = imported("PairModel", ["long[2,5]:0..49", "float[2,5]:0..1"])
        inputs = sorted((layer["attributes"].get("index", 0), layer["name"], layer["attributes"])
                        for layer in arch["layers"].values() if layer["type"] == "Input")
        assert [name for _, name, _ in inputs] == ["tokens", "mask"]
        assert inputs[1][2]["range"] == [0.0, 1.0]

    def test_branches_on_sizes_trace_at_the_sample_size(self) -> None:
        with pytest.raises(ArchitectureImportError, match="--input traces it at the sample's"):
            import_file(str(MODELS), "PaddedPatches")
        notes: list[str] = []
        arch = import_file(str(MODELS), "PaddedPatches", inputs=["float[2,3,7,9]"], notes=notes)
        assert "traced at the sizes of float32[2,3,7,9]" in notes[0]
        assert "modern_models.py:" in notes[0]  # the line that branches
        assert notes[-1].endswith("the import matches the original")
        assert "interpolate" in {layer["type"] for layer in arch["layers"].values()}

    def test_a_layers_own_weight_read_in_forward(self) -> None:
        arch, _ = imported("FourierPositions", None)
        weight = layers_of(arch)["token_projection.weight"]
        assert weight == {"type": "layer_tensor", "name": "token_projection.weight",
                          "attributes": {"layer": "token_projection", "name": "weight"}}
        assert "self.token_projection.weight" in export_source(arch)

    def test_factories_and_calls_with_arguments(self) -> None:
        default, _ = imported("make_classifier", None)
        narrow, _ = imported("make_classifier(width=4, depth=3)", None)
        assert default["name"] == "make_classifier"
        assert layers_of(narrow)["0"]["attributes"]["out_channels"] == 4
        assert len(narrow["layers"]) > len(default["layers"])

    def test_exported_code_imports_back_to_the_same_graph(self, tmp_path: Path) -> None:
        arch, _ = imported("TinySwin", ["float[2,3,8,8]"])
        second = reimported(tmp_path, arch)
        third = reimported(tmp_path, second)
        assert without_inits(canonical(third)) == without_inits(canonical(second))
        assert sorted(layer["type"] for layer in second["layers"].values()) == sorted(
            layer["type"] for layer in arch["layers"].values()
        )


def reimported(folder: Path, arch: dict[str, Any]) -> dict[str, Any]:
    path = folder / "exported.py"
    path.write_text(export_source(arch))
    return import_file(str(path), arch["name"], inputs=["float[2,3,8,8]"])


def without_inits(graph: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """A fresh model's parameters are drawn again: their fitted initialiser may differ."""
    fitted = {"init", "mean", "std", "low", "high", "value"}
    return [
        (ident, kind, [(k, v) for k, v in attributes if kind != "Parameter" or k not in fitted],
         inputs)
        for ident, kind, attributes, inputs in graph
    ]
