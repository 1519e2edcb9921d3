"""Built-in architectures for the example project, as plain data.

- :func:`vgg`: the paper's CIFAR-10 VGG (conv/batch-norm/ReLU stacks, then View, Dropout and a
  512-wide bias-free Linear, as in DeepForge's Figure 4), ending in LogSoftmax so it pairs with
  ``NLLLoss`` (the paper's ClassNLLCriterion).
- :func:`small_cnn`: two conv layers and two linear layers; quick to train on CPU.
- :func:`resnet`: a CIFAR ResNet with residual ``add`` nodes and 1x1 projection shortcuts.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from forge_ops.arch._model import INPUT, OUTPUT
from forge_ops.schema import new_id as _new_id


class ArchitectureBuilder:
    """Assembles architecture plain data; each method returns the new layer's id."""

    def __init__(self, name: str, input_shape: Sequence[int] | None = None) -> None:
        self.name = name
        self.input_shape = list(input_shape) if input_shape is not None else None
        self.layers: dict[str, dict[str, Any]] = {}
        self.edges: dict[str, dict[str, Any]] = {}

    def layer(self, type_: str, name: str, *inputs: str, **attributes: Any) -> str:
        """Add a layer fed by ``inputs`` (layer ids, in input position order)."""
        layer_id = _new_id()
        while layer_id in self.layers:
            layer_id = _new_id()
        self.layers[layer_id] = {"type": type_, "name": name, "attributes": attributes}
        for index, src in enumerate(inputs):
            edge_id = _new_id()
            while edge_id in self.edges:  # ids are short: an imported network has thousands
                edge_id = _new_id()
            self.edges[edge_id] = {"src": src, "dst": layer_id, "index": index}
        return layer_id

    def input(self, name: str = "x", index: int = 0) -> str:
        return self.layer(INPUT, name, index=index) if index else self.layer(INPUT, name)

    def output(self, src: str, name: str = "output", index: int = 0) -> str:
        if index:
            return self.layer(OUTPUT, name, src, index=index)
        return self.layer(OUTPUT, name, src)

    def plain(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "input_shape": self.input_shape,
            "layers": self.layers,
            "edges": self.edges,
        }


VGG_CONFIGS: dict[int, list[int | str]] = {
    11: [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    16: [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
}


def vgg(
    depth: int = 16, num_classes: int = 10, width: float = 1.0, name: str | None = None
) -> dict[str, Any]:
    """CIFAR-sized VGG (input 3x32x32) with batch norm; depth 11 or 16.

    ``width`` scales every layer's channels and the 512 hidden features (0.25: a quarter as
    wide, about a sixteenth of the computation), keeping the layer sequence the same.
    """
    if depth not in VGG_CONFIGS:
        raise ValueError(f"VGG depth must be one of {sorted(VGG_CONFIGS)}, got {depth}")
    if not 0 < width <= 4:
        raise ValueError(f"VGG width must be above 0 and at most 4, got {width}")

    def scaled(channels: int) -> int:
        return max(1, round(channels * width))

    b = ArchitectureBuilder(name or f"VGG{depth}", [1, 3, 32, 32])
    x = b.input("x")
    channels, stage, conv = 3, 1, 1
    for item in VGG_CONFIGS[depth]:
        if item == "M":
            x = b.layer("MaxPool2d", f"pool{stage}", x, kernel_size=2, stride=2)
            stage, conv = stage + 1, 1
            continue
        assert isinstance(item, int)
        tag = f"{stage}_{conv}"
        out = scaled(item)
        x = b.layer(
            "Conv2d",
            f"conv{tag}",
            x,
            in_channels=channels,
            out_channels=out,
            kernel_size=3,
            padding=1,
        )
        x = b.layer("BatchNorm2d", f"bn{tag}", x, num_features=out)
        x = b.layer("ReLU", f"relu{tag}", x)
        channels, conv = out, conv + 1
    hidden = scaled(512)
    x = b.layer("Flatten", "view", x)
    x = b.layer("Dropout", "dropout1", x, p=0.5)
    x = b.layer("Linear", "fc1", x, in_features=channels, out_features=hidden, bias=False)
    x = b.layer("BatchNorm1d", "bn_fc1", x, num_features=hidden)
    x = b.layer("ReLU", "relu_fc1", x)
    x = b.layer("Dropout", "dropout2", x, p=0.5)
    x = b.layer("Linear", "fc2", x, in_features=hidden, out_features=num_classes)
    x = b.layer("LogSoftmax", "log_softmax", x, dim=1)
    b.output(x)
    return b.plain()


def small_cnn(num_classes: int = 10, input_shape: Sequence[int] = (1, 3, 32, 32)) -> dict[str, Any]:
    """Two conv+pool stages and two linear layers; uses functional relu and flatten nodes."""
    _, channels, height, width = input_shape
    b = ArchitectureBuilder("SmallCNN", input_shape)
    x = b.input("x")
    x = b.layer(
        "Conv2d", "conv1", x, in_channels=channels, out_channels=16, kernel_size=3, padding=1
    )
    x = b.layer("relu", "relu1", x)
    x = b.layer("MaxPool2d", "pool1", x, kernel_size=2)
    x = b.layer("Conv2d", "conv2", x, in_channels=16, out_channels=32, kernel_size=3, padding=1)
    x = b.layer("relu", "relu2", x)
    x = b.layer("MaxPool2d", "pool2", x, kernel_size=2)
    x = b.layer("flatten", "flatten", x, start_dim=1)
    x = b.layer("Linear", "fc1", x, in_features=32 * (height // 4) * (width // 4), out_features=64)
    x = b.layer("relu", "relu3", x)
    x = b.layer("Linear", "fc2", x, in_features=64, out_features=num_classes)
    x = b.layer("log_softmax", "log_softmax", x, dim=1)
    b.output(x)
    return b.plain()


def resnet(
    widths: Sequence[int] = (16, 32, 64), blocks_per_stage: int = 1, num_classes: int = 10
) -> dict[str, Any]:
    """A CIFAR ResNet: basic residual blocks, stride-2 stages with 1x1 projection shortcuts."""
    b = ArchitectureBuilder("ResNet", [1, 3, 32, 32])
    x = b.input("x")
    x = b.layer(
        "Conv2d",
        "stem_conv",
        x,
        in_channels=3,
        out_channels=widths[0],
        kernel_size=3,
        padding=1,
        bias=False,
    )
    x = b.layer("BatchNorm2d", "stem_bn", x, num_features=widths[0])
    x = b.layer("relu", "stem_relu", x)
    channels = widths[0]
    for stage, width in enumerate(widths, start=1):
        for block in range(1, blocks_per_stage + 1):
            stride = 2 if stage > 1 and block == 1 else 1
            tag = f"s{stage}b{block}"
            y = b.layer(
                "Conv2d",
                f"{tag}_conv1",
                x,
                in_channels=channels,
                out_channels=width,
                kernel_size=3,
                stride=stride,
                padding=1,
                bias=False,
            )
            y = b.layer("BatchNorm2d", f"{tag}_bn1", y, num_features=width)
            y = b.layer("relu", f"{tag}_relu1", y)
            y = b.layer(
                "Conv2d",
                f"{tag}_conv2",
                y,
                in_channels=width,
                out_channels=width,
                kernel_size=3,
                padding=1,
                bias=False,
            )
            y = b.layer("BatchNorm2d", f"{tag}_bn2", y, num_features=width)
            shortcut = x
            if stride != 1 or channels != width:
                shortcut = b.layer(
                    "Conv2d",
                    f"{tag}_proj",
                    x,
                    in_channels=channels,
                    out_channels=width,
                    kernel_size=1,
                    stride=stride,
                    bias=False,
                )
                shortcut = b.layer("BatchNorm2d", f"{tag}_proj_bn", shortcut, num_features=width)
            y = b.layer("add", f"{tag}_add", y, shortcut)
            x = b.layer("relu", f"{tag}_relu2", y)
            channels = width
    x = b.layer("adaptive_avg_pool2d", "pool", x, output_size=1)
    x = b.layer("flatten", "flatten", x)
    x = b.layer("Linear", "fc", x, in_features=channels, out_features=num_classes)
    b.output(x)
    return b.plain()


BUILTIN_ARCHITECTURES = {"VGG": vgg, "SmallCNN": small_cnn, "ResNet": resnet}
