"""Import of PyTorch modules with torch.fx, and the import -> export -> import round trip."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

from forge_ops.arch import (
    ArchitectureImportError,
    build_module,
    canonical,
    export_source,
    import_from_file,
    resnet,
    small_cnn,
    vgg,
)
from forge_ops.arch.importer import import_file, load_class

MODELS = '''
import torch
import torch.nn as nn
import torch.nn.functional as F


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.conv2 = nn.Conv2d(c, c, 3, padding=1)

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.conv2(y) + x)


class Residual(nn.Module):
    """Residual add, concatenation, functional calls, nested Sequential, view(size(0), -1)."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(inplace=True))
        self.block = Block(8)
        self.branch = nn.Conv2d(8, 4, 1)
        self.pool = nn.AdaptiveAvgPool2d((4, 4))
        self.head = nn.Linear(12 * 4 * 4, 10)

    def forward(self, x):
        x = self.stem(x)
        x = self.block(x)
        x = torch.cat([x, self.branch(x)], dim=1)
        x = self.pool(x)
        x = x.view(x.size(0), -1)
        return F.log_softmax(self.head(x) * 0.5, dim=1)


class Recurrent(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(20, 6)
        self.lstm = nn.LSTM(6, 5, batch_first=True)
        self.norm = nn.LayerNorm(5)

    def forward(self, tokens):
        out = self.lstm(self.embed(tokens))[0]
        return self.norm(out).mean(dim=1), out.permute(0, 2, 1)


class Attention(nn.Module):
    """Layers whose attributes are layers (TransformerEncoder) and a multi-input layer."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Linear(6, 16)
        layer = nn.TransformerEncoderLayer(16, 2, dim_feedforward=32, dropout=0.0,
                                           batch_first=True, activation="gelu")
        self.encoder = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
        self.attn = nn.MultiheadAttention(16, 4, batch_first=True, bias=False)
        self.head = nn.Linear(16, 3)

    def forward(self, x):
        h = self.encoder(self.embed(x))
        a = self.attn(h, h, h)[0]
        return self.head(a.mean(dim=1))


class Branchy(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x):
        if x.sum() > 0:
            return self.fc(x)
        return x


class Gate(nn.Module):
    """Scale by a learned factor unless the input is all below the floor."""

    def __init__(self, channels: int, floor: float = 0.0):
        super().__init__()
        self.channels = channels
        self.floor = floor
        self.weight = nn.Parameter(torch.ones(channels))

    def forward(self, x):
        if x.max() < self.floor:
            return x
        return x * self.weight[:, None, None]


class Gated(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.gate = Gate(4, floor=-1.0)

    def forward(self, x):
        return self.gate(self.conv(x)).flatten(1)


class Reuse(nn.Module):
    def __init__(self):
        super().__init__()
        self.act = nn.ReLU()
        self.fc = nn.Linear(4, 4)

    def forward(self, x):
        return self.act(self.fc(self.act(x)))


class SharedWeights(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x):
        return self.fc(self.fc(x))


class UsesParameter(nn.Module):
    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(4))

    def forward(self, x):
        return x * self.scale


class NeedsArguments(nn.Module):
    def __init__(self, width):
        super().__init__()
'''


@pytest.fixture(scope="module")
def models_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("models") / "models.py"
    path.write_text(MODELS)
    return path


def parity(original: torch.nn.Module, module: torch.nn.Module, *inputs: torch.Tensor) -> None:
    """Same parameter count, and with the original's weights the same outputs."""
    assert sum(p.numel() for p in module.parameters()) == sum(
        p.numel() for p in original.parameters()
    )
    module.load_state_dict(original.state_dict())
    original.eval()
    module.eval()
    with torch.no_grad():
        want, got = original(*inputs), module(*inputs)
    want = want if isinstance(want, tuple) else (want,)
    got = got if isinstance(got, tuple) else (got,)
    for a, b in zip(want, got, strict=True):
        assert torch.allclose(a, b, atol=1e-5)


def round_trip(tmp_path: Path, arch: dict[str, Any], class_name: str) -> dict[str, Any]:
    """Export an architecture to a file and import that file again."""
    path = tmp_path / f"{class_name.lower()}_exported.py"
    path.write_text(export_source(arch, class_name_=class_name))
    return import_file(str(path), class_name, arch["input_shape"])


class TestImport:
    def test_layers_edges_and_functional_calls(self, models_file: Path) -> None:
        arch = import_file(str(models_file), "Residual", [2, 3, 8, 8])
        layers = {layer["name"]: layer for layer in arch["layers"].values()}
        assert layers["stem.0"]["type"] == "Conv2d"
        assert layers["stem.0"]["attributes"] == {
            "in_channels": 3, "out_channels": 8, "kernel_size": 3, "padding": 1,
        }
        assert layers["stem.1"]["attributes"] == {"inplace": True}
        assert layers["block.conv1"]["attributes"]["bias"] is False
        assert layers["pool"]["attributes"] == {"output_size": [4, 4]}
        types = sorted(layer["type"] for layer in arch["layers"].values())
        for functional in ["add", "cat", "flatten", "log_softmax", "mul", "relu"]:
            assert functional in types
        assert layers["mul"]["attributes"] == {"scalar": 0.5}
        add = next(i for i, layer in arch["layers"].items() if layer["type"] == "add")
        sources = {arch["layers"][e["src"]]["name"] for e in arch["edges"].values()
                   if e["dst"] == add}
        assert sources == {"block.conv2", "stem.1"}  # the skip connection
        assert arch["input_shape"] == [2, 3, 8, 8]

    def test_round_trip_gives_the_same_graph_and_outputs(
        self, models_file: Path, tmp_path: Path
    ) -> None:
        first = import_file(str(models_file), "Residual", [2, 3, 8, 8])
        second = round_trip(tmp_path, first, "Residual")
        assert canonical(second) == canonical(first)
        original = load_class(str(models_file), "Residual")()
        exported = load_exported(export_source(first), "Residual")
        parity(original, exported, torch.randn(2, 3, 8, 8))  # original's state_dict loads
        parity(original, build_module(first), torch.randn(2, 3, 8, 8))

    def test_multiple_outputs_and_recurrent_layers(self, models_file: Path, tmp_path: Path) -> None:
        first = import_file(str(models_file), "Recurrent")
        names = {layer["name"]: layer for layer in first["layers"].values()}
        assert names["lstm"]["attributes"] == {
            "input_size": 6, "hidden_size": 5, "batch_first": True,
        }
        types = {layer["type"] for layer in first["layers"].values()}
        assert {"getitem", "mean", "permute"} <= types
        first["input_shape"] = None
        second = round_trip(tmp_path, first, "Recurrent")
        assert canonical(second) == canonical(first)
        original = load_class(str(models_file), "Recurrent")()
        tokens = torch.randint(0, 20, (3, 7))
        parity(original, load_exported(export_source(first), "Recurrent"), tokens)

    def test_layer_valued_attributes_are_recovered(self, models_file: Path, tmp_path: Path) -> None:
        first = import_file(str(models_file), "Attention", [2, 5, 6])  # checks parity itself
        layers = {layer["name"]: layer for layer in first["layers"].values()}
        inner = layers["encoder"]["attributes"]["encoder_layer"]
        assert inner["type"] == "TransformerEncoderLayer"
        assert inner["attributes"]["activation"] == "gelu"
        assert inner["attributes"]["dim_feedforward"] == 32
        assert layers["attn"]["attributes"]["bias"] is False
        into_attn = [e for e in first["edges"].values() if e["dst"] == by_name(first, "attn")]
        assert sorted(e["index"] for e in into_attn) == [0, 1, 2]
        second = round_trip(tmp_path, first, "Attention")
        assert canonical(second) == canonical(first)
        original = load_class(str(models_file), "Attention")()
        parity(original, load_exported(export_source(first), "Attention"), torch.randn(2, 5, 6))

    @pytest.mark.parametrize("make", [small_cnn, resnet, lambda: vgg(11)])
    def test_builtins_round_trip(self, make, tmp_path: Path) -> None:
        arch = make()
        name = arch["name"]
        built = build_module(arch)
        imported = round_trip(tmp_path, arch, name)
        again = round_trip(tmp_path, imported, name)
        assert canonical(again) == canonical(imported)
        assert export_source(again) == export_source(imported)
        parity(built, build_module(imported), torch.randn(2, 3, 32, 32))
        parity(built, load_exported(export_source(imported), name), torch.randn(2, 3, 32, 32))

    def test_control_flow_error_names_the_line(self, models_file: Path) -> None:
        with pytest.raises(ArchitectureImportError) as caught:
            import_file(str(models_file), "Branchy")
        message = str(caught.value)
        assert "cannot trace Branchy" in message
        line = MODELS.splitlines().index("        if x.sum() > 0:") + 1
        assert f"models.py:{line}: if x.sum() > 0:" in message
        assert "control flow" in message

    def test_untraceable_blocks_become_custom_layers(
        self, models_file: Path, tmp_path: Path
    ) -> None:
        with pytest.raises(ArchitectureImportError, match=r"keep Gate whole as a custom layer "
                           r"\(--leaf Gate\)"):
            import_file(str(models_file), "Gated")
        custom: dict[str, str] = {}
        first = import_file(str(models_file), "Gated", [1, 3, 6, 6], leaves=["Gate"],
                            custom_layers=custom)
        assert set(custom) == {"Gate"} and "import torch" in custom["Gate"]
        gate = first["layers"][by_name(first, "gate")]
        assert gate == {"type": "Gate", "name": "gate",
                        "attributes": {"channels": 4, "floor": -1.0}}
        source = export_source(first, custom)
        assert source.count("import torch\n") == 1  # the custom code's copy is dropped
        path = tmp_path / "gated.py"
        path.write_text(source)
        again: dict[str, str] = {}
        second = import_file(str(path), "Gated", [1, 3, 6, 6], leaves=["Gate"],
                             custom_layers=again)
        assert canonical(second) == canonical(first)
        original = load_class(str(models_file), "Gated")()
        parity(original, build_module(first, custom), torch.randn(1, 3, 6, 6))
        with pytest.raises(ArchitectureImportError, match="no submodule of class Missing"):
            import_file(str(models_file), "Gated", leaves=["Gate", "Missing"])

    def test_reused_layers(self, models_file: Path) -> None:
        arch = import_file(str(models_file), "Reuse", [2, 4])  # parity checked
        assert sorted(layer["name"] for layer in arch["layers"].values()) == [
            "act", "act_1", "fc", "output", "x",
        ]
        with pytest.raises(ArchitectureImportError, match="'fc' is used more than once"):
            import_file(str(models_file), "SharedWeights")

    def test_direct_parameter_use_and_constructor_arguments(self, models_file: Path) -> None:
        arch = import_file(str(models_file), "UsesParameter", [2, 4])
        scale = arch["layers"][by_name(arch, "scale")]
        assert scale == {"type": "Parameter", "name": "scale",
                         "attributes": {"shape": [4], "init": "ones"}}
        original = load_class(str(models_file), "UsesParameter")()
        with torch.no_grad():
            original.scale.mul_(3)
        parity(original, load_exported(export_source(arch), "UsesParameter"), torch.randn(2, 4))
        with pytest.raises(ArchitectureImportError, match="without arguments"):
            import_file(str(models_file), "NeedsArguments")
        with pytest.raises(ArchitectureImportError, match="defines no class or function 'Missing'"):
            import_file(str(models_file), "Missing")

    def test_import_runs_in_a_child_process(self, models_file: Path, tmp_path: Path) -> None:
        marker = tmp_path / "ran.py"
        marker.write_text(
            MODELS + "\nimport os\nRAN_IN = os.getpid()\n"
            "class Pid(Residual):\n    pass\n"
        )
        arch = import_from_file(str(marker), "Pid", [1, 3, 8, 8])
        assert json.loads(json.dumps(arch)) == arch  # plain JSON data
        assert "forge_import_ran" not in __import__("sys").modules  # never loaded here
        assert canonical(arch) == canonical(import_file(str(marker), "Pid", [1, 3, 8, 8]))


def by_name(arch: dict[str, Any], name: str) -> str:
    return next(i for i, layer in arch["layers"].items() if layer["name"] == name)


def load_exported(source: str, name: str) -> torch.nn.Module:
    namespace: dict[str, Any] = {"__name__": "exported"}
    exec(compile(source, "<exported>", "exec"), namespace)
    module: torch.nn.Module = namespace[name]()
    return module
