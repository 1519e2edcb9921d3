"""Architectures: catalogue, custom layers, validation, building and shape inference."""

from __future__ import annotations

import pickle

import pytest
import torch

from forge_ops.arch import (
    ArchitectureBuilder,
    ArchitectureError,
    CustomLayerError,
    LayerRuntimeError,
    ShapeError,
    build_module,
    catalogue,
    graph_of,
    infer_shapes,
    infer_shapes_isolated,
    parse_custom_layer,
    resnet,
    small_cnn,
    vgg,
)

SCALE_LAYER = '''
import torch
from torch import nn


class Scale(nn.Module):
    """Multiply by a learnable per-channel factor."""

    def __init__(self, channels: int, init: float = 1.0, *, bias: bool = False):
        super().__init__()
        self.factor = nn.Parameter(torch.full((channels, 1, 1), init))
        self.shift = nn.Parameter(torch.zeros(channels, 1, 1)) if bias else None

    def forward(self, x):
        y = x * self.factor
        return y + self.shift if self.shift is not None else y
'''


def by_name(arch: dict, name: str) -> str:
    return next(i for i, layer in arch["layers"].items() if layer["name"] == name)


class TestCatalogue:
    def test_common_layers_have_typed_attributes(self) -> None:
        layers = catalogue()
        conv = layers["Conv2d"]
        assert conv.doc.startswith("Applies a 2D convolution")
        names = [a.name for a in conv.attributes]
        assert names[:3] == ["in_channels", "out_channels", "kernel_size"]
        assert "device" not in names and "dtype" not in names
        in_channels = conv.attribute("in_channels")
        assert in_channels is not None and in_channels.type == "int" and in_channels.required
        kernel = conv.attribute("kernel_size")
        assert kernel is not None and "int" in kernel.type and "tuple" in kernel.type
        stride = conv.attribute("stride")
        assert stride is not None and stride.default == 1 and not stride.required
        assert "Stride of the convolution" in stride.doc
        bias = layers["Linear"].attribute("bias")
        assert bias is not None and (bias.type, bias.default) == ("bool", True)
        p = layers["Dropout"].attribute("p")
        assert p is not None and (p.type, p.default) == ("float", 0.5)
        eps = layers["BatchNorm2d"].attribute("eps")
        assert eps is not None and eps.type == "float" and eps.default == pytest.approx(1e-5)
        mode = layers["Conv2d"].attribute("padding_mode")
        assert mode is not None and "'reflect'" in mode.type

    def test_every_torch_layer_is_listed_and_containers_are_not(self) -> None:
        layers = catalogue()
        for name in ["LSTM", "MultiheadAttention", "TransformerEncoderLayer", "Upsample",
                     "LayerNorm", "Embedding", "GELU", "Identity", "Flatten"]:
            assert name in layers
        assert len(layers) > 120
        assert "Module" not in layers and "ModuleList" not in layers
        assert catalogue() is layers  # cached

    def test_layer_and_layer_sequence_attributes(self) -> None:
        layers = catalogue()
        args = layers["Sequential"].attributes[0]
        assert (args.type, args.variadic) == ("layers", True)
        encoder = layers["TransformerEncoder"].attribute("encoder_layer")
        assert encoder is not None and encoder.type == "layer" and encoder.required

    def test_rnn_attributes_come_from_the_documented_signature(self) -> None:
        lstm = catalogue()["LSTM"]
        names = [a.name for a in lstm.attributes]
        assert names[:3] == ["input_size", "hidden_size", "num_layers"]
        batch_first = lstm.attribute("batch_first")
        assert batch_first is not None and batch_first.default is False


class TestCustomLayers:
    def test_constructor_arguments_become_attributes(self) -> None:
        spec = parse_custom_layer(SCALE_LAYER)
        assert spec.name == "Scale" and spec.custom
        assert spec.doc == "Multiply by a learnable per-channel factor."
        channels, init, bias = spec.attributes
        assert (channels.name, channels.type, channels.required) == ("channels", "int", True)
        assert (init.name, init.default, init.required) == ("init", 1.0, False)
        assert (bias.name, bias.default, bias.keyword_only) == ("bias", False, True)

    def test_parsing_never_runs_the_code(self) -> None:
        code = "raise SystemExit('ran')\nfrom torch import nn\nclass Boom(nn.Module):\n"
        code += "    def __init__(self, k=3):\n        super().__init__()\n"
        spec = parse_custom_layer(code)
        assert [a.name for a in spec.attributes] == ["k"]

    def test_bad_code_gives_clear_errors(self) -> None:
        with pytest.raises(CustomLayerError, match="syntax error at line 1"):
            parse_custom_layer("class (:")
        with pytest.raises(CustomLayerError, match=r"deriving from nn\.Module"):
            parse_custom_layer("class NotALayer:\n    pass\n")
        with pytest.raises(CustomLayerError, match="a class named 'Other'"):
            parse_custom_layer(SCALE_LAYER, "Other")

    def test_custom_layer_builds_and_runs(self) -> None:
        b = ArchitectureBuilder("Scaled", [2, 3, 4, 4])
        x = b.input()
        y = b.layer("Scale", "scale", x, channels=3, init=2.0, bias=True)
        b.output(y)
        module = build_module(b.plain(), {"Scale": SCALE_LAYER})
        assert sum(p.numel() for p in module.parameters()) == 6
        x_in = torch.ones(2, 3, 4, 4)
        assert torch.allclose(module(x_in), torch.full((2, 3, 4, 4), 2.0))


class TestValidation:
    def make(self) -> tuple[ArchitectureBuilder, str]:
        b = ArchitectureBuilder("T", [1, 4])
        return b, b.input()

    def test_unknown_type_and_attribute_suggest_a_fix(self) -> None:
        b, x = self.make()
        b.output(b.layer("Linaer", "fc", x, in_features=4, out_features=2))
        with pytest.raises(ArchitectureError, match="unknown type 'Linaer'; did you mean 'Linear'"):
            build_module(b.plain())
        b, x = self.make()
        b.output(b.layer("Linear", "fc", x, in_feature=4, out_features=2))
        with pytest.raises(ArchitectureError, match="no attribute 'in_feature'; did you mean"):
            build_module(b.plain())

    def test_missing_and_mistyped_attributes(self) -> None:
        b, x = self.make()
        b.output(b.layer("Linear", "fc", x, in_features=4))
        with pytest.raises(ArchitectureError, match="set attribute 'out_features'"):
            build_module(b.plain())
        b, x = self.make()
        b.output(b.layer("Linear", "fc", x, in_features="four", out_features=2))
        with pytest.raises(ArchitectureError, match="'in_features' must be int, got 'four'"):
            build_module(b.plain())

    def test_graph_structure_errors(self) -> None:
        b, x = self.make()
        relu = b.layer("relu", "r", x)
        arch = b.plain()  # no Output
        with pytest.raises(ArchitectureError, match="no Output layer"):
            graph_of(arch)
        b.output(relu)
        arch = b.plain()
        arch["edges"]["loop"] = {"src": relu, "dst": relu, "index": 1}
        with pytest.raises(ArchitectureError, match="cycle \\(r -> r\\)"):
            graph_of(arch)
        del arch["edges"]["loop"]
        arch["edges"]["dangling"] = {"src": "missing", "dst": relu, "index": 1}
        with pytest.raises(ArchitectureError, match="missing layer 'missing'"):
            graph_of(arch)

    def test_stored_input_shapes_read_as_leniently_as_before(self) -> None:
        # Documents written before the one input-shape rule may hold []: they still build.
        b, x = self.make()
        b.output(b.layer("relu", "r", x))
        arch = b.plain()
        arch["input_shape"] = []
        assert graph_of(arch).input_shape == []
        arch["input_shape"] = [1, 0]
        with pytest.raises(ArchitectureError, match="positive ints"):
            graph_of(arch)

    def test_functional_node_arity(self) -> None:
        b, x = self.make()
        b.output(b.layer("add", "plus", x))
        with pytest.raises(ArchitectureError, match="'plus' \\(add\\) takes 2 or more input"):
            build_module(b.plain())

    def test_order_does_not_depend_on_map_order(self) -> None:
        arch = resnet()
        reversed_arch = {**arch, "layers": dict(reversed(list(arch["layers"].items())))}
        assert [n.ident for n in graph_of(arch).nodes] == [
            n.ident for n in graph_of(reversed_arch).nodes
        ]


class TestBuild:
    @pytest.mark.parametrize("make", [small_cnn, resnet, lambda: vgg(11)])
    def test_builtins_build_run_and_pickle(self, make) -> None:
        module = build_module(make())
        module.eval()
        out = module(torch.randn(2, 3, 32, 32))
        assert out.shape == (2, 10)
        clone = pickle.loads(pickle.dumps(module))
        assert torch.allclose(clone(torch.ones(1, 3, 32, 32)), module(torch.ones(1, 3, 32, 32)))

    def test_vgg_is_the_papers_network(self) -> None:
        arch = vgg()
        types = [layer["type"] for layer in arch["layers"].values()]
        assert types.count("Conv2d") == 13 and types.count("MaxPool2d") == 5
        fc1 = arch["layers"][by_name(arch, "fc1")]["attributes"]
        assert fc1 == {"in_features": 512, "out_features": 512, "bias": False}

    def test_layer_valued_attributes(self) -> None:
        b = ArchitectureBuilder("Nested", [2, 3, 8, 8])
        x = b.input()
        body = b.layer(
            "Sequential",
            "body",
            x,
            args=[
                {"type": "Conv2d", "attributes": {"in_channels": 3, "out_channels": 4,
                                                  "kernel_size": 3}},
                {"type": "ReLU", "attributes": {}},
            ],
        )
        enc = b.layer(
            "TransformerEncoder",
            "encoder",
            b.layer("flatten", "tokens", body, start_dim=2),
            encoder_layer={"type": "TransformerEncoderLayer",
                           "attributes": {"d_model": 36, "nhead": 2, "dim_feedforward": 8,
                                          "batch_first": True}},
            num_layers=2,
            enable_nested_tensor=False,
        )
        b.output(enc)
        module = build_module(b.plain())
        assert isinstance(module.body, torch.nn.Sequential)
        assert len(module.encoder.layers) == 2
        module.eval()
        assert module(torch.randn(2, 3, 8, 8)).shape == (2, 4, 36)


    def test_a_wrong_input_shape_names_the_layer_and_what_to_fix(self) -> None:
        module = build_module(small_cnn(input_shape=(1, 1, 28, 28)))
        with pytest.raises(LayerRuntimeError) as caught:
            module(torch.randn(4, 3, 32, 32))  # CIFAR images into a net drawn for MNIST
        message = str(caught.value)
        assert message.startswith("layer 'conv1' (Conv2d) failed: ")
        assert ("SmallCNN was drawn for input of shape [N, 1, 28, 28] (its input shape) but got"
                " [4, 3, 32, 32]: set the architecture's input shape") in message
        assert "\n" not in message  # a job's error line shows all of it

    def test_no_shape_hint_when_the_input_fits_the_declared_shape(self) -> None:
        b = ArchitectureBuilder("Bad", [1, 3, 8, 8])
        b.output(b.layer("Linear", "fc", b.layer("flatten", "flat", b.input(), start_dim=1),
                         in_features=5, out_features=2))  # wrong in_features: the net's bug
        with pytest.raises(LayerRuntimeError) as caught:
            build_module(b.plain())(torch.randn(2, 3, 8, 8))
        assert "input shape" not in str(caught.value)

class TestShapes:
    def test_vgg_shapes_and_parameters(self) -> None:
        arch = vgg()
        report = infer_shapes(arch)
        assert report.layer_shapes[by_name(arch, "pool5")] == [1, 512, 1, 1]
        assert report.layer_shapes[by_name(arch, "view")] == [1, 512]
        assert report.layer_shapes[by_name(arch, "output")] == [1, 10]
        conv = by_name(arch, "conv1_1")
        assert report.parameters[conv] == 3 * 64 * 9 + 64
        real = sum(p.numel() for p in build_module(arch).parameters())
        assert report.total_parameters == real
        edge = next(i for i, e in arch["edges"].items() if e["src"] == conv)
        assert report.edge_shapes[edge] == [1, 64, 32, 32]

    def test_resnet_skip_connections(self) -> None:
        arch = resnet()
        report = infer_shapes(arch)
        add = by_name(arch, "s2b1_add")
        into_add = [e for e in arch["edges"].values() if e["dst"] == add]
        assert len(into_add) == 2
        assert all(report.layer_shapes[e["src"]] == [1, 32, 16, 16] for e in into_add)
        assert report.layer_shapes[by_name(arch, "fc")] == [1, 10]

    def test_a_layer_that_cannot_take_its_input_is_named(self) -> None:
        arch = small_cnn()
        arch["layers"][by_name(arch, "fc1")]["attributes"]["in_features"] = 100
        with pytest.raises(ShapeError) as caught:
            infer_shapes(arch)
        message = str(caught.value)
        assert "'fc1' (Linear) got input shape [1, 2048]" in message
        assert "expects a last dimension of 100" in message
        assert caught.value.layer == "fc1"

    def test_wrong_channel_count_is_explained(self) -> None:
        arch = vgg(11)
        arch["input_shape"] = [1, 1, 32, 32]
        with pytest.raises(ShapeError, match=r"'conv1_1' \(Conv2d\) got input shape "
                           r"\[1, 1, 32, 32\] but expects .* with 3 channels"):
            infer_shapes(arch)

    def test_no_real_memory_is_allocated(self) -> None:
        b = ArchitectureBuilder("Huge", [1, 100_000])
        b.output(b.layer("Linear", "fc", b.input(), in_features=100_000, out_features=100_000))
        report = infer_shapes(b.plain())  # 10^10 parameters: 40 GB if they were real
        assert report.total_parameters == 100_000 * 100_000 + 100_000

    def test_missing_input_shape(self) -> None:
        arch = small_cnn()
        arch["input_shape"] = None
        with pytest.raises(ArchitectureError, match="set an input shape on the architecture"):
            infer_shapes(arch)


class TestIsolatedShapes:
    def test_custom_layer_code_runs_in_a_child_process(self, tmp_path) -> None:
        marker = tmp_path / "ran-in"
        code = SCALE_LAYER + f"\nimport os\nopen({str(marker)!r}, 'w').write(str(os.getpid()))\n"
        b = ArchitectureBuilder("Scaled", [2, 3, 4, 4])
        b.output(b.layer("Scale", "scale", b.input(), channels=3))
        arch = b.plain()
        report = infer_shapes_isolated(arch, {"Scale": code})
        assert report.total_parameters == 3
        assert report.layer_shapes[by_name(arch, "scale")] == [2, 3, 4, 4]
        assert int(marker.read_text()) != __import__("os").getpid()

    def test_errors_come_back_with_their_kind(self) -> None:
        arch = small_cnn()
        arch["layers"][by_name(arch, "fc1")]["attributes"]["in_features"] = 100
        with pytest.raises(ShapeError, match="'fc1' \\(Linear\\) got input shape") as caught:
            infer_shapes_isolated(arch)
        assert caught.value.layer == "fc1"


def test_importing_the_packages_does_not_import_torch() -> None:
    """The server and TUI read catalogues, interfaces and exporters without loading torch;
    the modules that need it (building, tracing) are imported when first used."""
    import subprocess
    import sys

    code = ("import sys, forge_ops.arch, forge_ops.arch.importer, forge_ops.operations, "
            "forge_ops.exporters.python; print('torch' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    assert done.stdout.strip() == "False"
