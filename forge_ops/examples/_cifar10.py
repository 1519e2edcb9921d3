"""The example project "cifar10": the paper's section 4, plus an offline twin and extras.

- ``train-cifar10`` (the paper's Figure 3): DownloadCIFAR10 → NormalizeData → Train(net = VGG16,
  criterion = CrossEntropyLoss, learning_rate = 0.001, 50 iterations) → Test, with the trained
  model and the per-class accuracies published by two Output operations.
- ``train-synthetic``: the same graph on SyntheticImages (no internet needed). VGG16 is slow on
  a CPU, so the twin trains SlimVGG11 (VGG11's layers at a quarter of the width, a
  sixteenth of VGG16's computation) for 150 iterations of 16 images: well above 90% on every
  class in well under a minute on two cores.
- ``train-custom``: shows a custom operation (RandomFlips) and an architecture built from a
  custom layer (ConvBNReLU); small enough to finish in seconds.

The project also holds the other built-in architectures (SmallCNN, ResNet). Operations are the
built-in library's code, so the Train operation plots its training error with the Graph API
(``Graph("Training Error").line("error").add(iteration, loss)``), as the paper's listing does
with ``DeepForge.Graph``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any

from forge_ops.arch import ArchitectureBuilder, resnet, small_cnn, vgg, write_architecture
from forge_ops.operations import builtin_code
from forge_ops.schema import ProjectDoc

PIPELINE_CIFAR10 = "train-cifar10"
PIPELINE_SYNTHETIC = "train-synthetic"
PIPELINE_CUSTOM = "train-custom"

#: Artifact names the Output operations of each pipeline publish: (model, accuracies).
ARTIFACTS = {
    PIPELINE_CIFAR10: ("cifar10-model", "cifar10-accuracies"),
    PIPELINE_SYNTHETIC: ("synthetic-model", "synthetic-accuracies"),
    PIPELINE_CUSTOM: ("custom-model", "custom-accuracies"),
}

#: The paper's Train attributes (section 4: learning rate 0.001, at most 50 iterations).
PAPER_TRAIN: dict[str, Any] = {"learning_rate": 0.001, "max_iterations": 50}
#: The twin's data: small enough for a CPU, large enough to learn the patterns (50 test
#: images per class, so each class's accuracy means something).
SYNTHETIC_DATA: dict[str, Any] = {"train_size": 2000, "test_size": 500, "seed": 0}
#: The twin's network: VGG11's layer sequence at a quarter of the width, so a CPU trains it
#: for enough iterations to learn every class in well under a minute.
SYNTHETIC_NET = "SlimVGG11"
#: The twin's Train attributes: the paper's learning rate, three times its iterations (of
#: the smaller network) on batches of 16.
SYNTHETIC_TRAIN: dict[str, Any] = {**PAPER_TRAIN, "max_iterations": 150, "batch_size": 16}
#: The custom pipeline's data: a smaller set, as its network is small and quick.
CUSTOM_DATA: dict[str, Any] = {"train_size": 1000, "test_size": 200, "seed": 0}
#: The custom pipeline's Train attributes: a small network, so a few seconds suffice.
CUSTOM_TRAIN: dict[str, Any] = {"learning_rate": 0.003, "max_iterations": 60, "batch_size": 32}
SYNTHETIC_CLASSES = [f"pattern {index}" for index in range(10)]

CUSTOM_OPERATION = "RandomFlips"
CUSTOM_LAYER = "ConvBNReLU"
CUSTOM_ARCHITECTURE = "FlipCNN"
CRITERION = "CrossEntropyLoss"

_CODE_FILES = {CUSTOM_OPERATION: "random_flips.py", CUSTOM_LAYER: "conv_bn_relu.py"}


def example_code(name: str) -> str:
    """The code text of the example's custom operation or custom layer."""
    return (
        resources.files(__package__)
        .joinpath("code", _CODE_FILES[name])
        .read_text(encoding="utf-8")
    )


@dataclass(frozen=True)
class Cifar10Ids:
    """Ids of what :func:`build_cifar10` wrote, so callers and tests can find them."""

    operations: Mapping[str, str]
    architectures: Mapping[str, str]
    layer: str
    pipelines: Mapping[str, str]


def flip_cnn() -> dict[str, Any]:
    """A small CNN made of the custom ConvBNReLU layer (plain architecture data)."""
    b = ArchitectureBuilder(CUSTOM_ARCHITECTURE, [1, 3, 32, 32])
    x = b.input("x")
    x = b.layer(CUSTOM_LAYER, "block1", x, in_channels=3, out_channels=16)
    x = b.layer("MaxPool2d", "pool1", x, kernel_size=2)
    x = b.layer(CUSTOM_LAYER, "block2", x, in_channels=16, out_channels=32)
    x = b.layer("MaxPool2d", "pool2", x, kernel_size=2)
    x = b.layer("flatten", "flatten", x, start_dim=1)
    x = b.layer("Linear", "fc", x, in_features=32 * 8 * 8, out_features=10)
    b.output(x)
    return b.plain()


def build_cifar10(project: ProjectDoc) -> Cifar10Ids:
    """Write the example's operations, layer, architectures and pipelines into ``project``."""
    with project.doc.transaction():
        ops = {
            name: project.add_operation(name, builtin_code(name), builtin=True)
            for name in (
                "DownloadCIFAR10",
                "SyntheticImages",
                "NormalizeData",
                "Train",
                "Test",
                "Output",
            )
        }
        ops[CUSTOM_OPERATION] = project.add_operation(
            CUSTOM_OPERATION, example_code(CUSTOM_OPERATION)
        )
        layer = project.add_layer(CUSTOM_LAYER, example_code(CUSTOM_LAYER))
        archs = {
            arch["name"]: write_architecture(project, arch)
            for arch in (
                vgg(16),
                vgg(11),
                vgg(11, width=0.25, name=SYNTHETIC_NET),
                small_cnn(),
                resnet(),
                flip_cnn(),
            )
        }
        pipelines = {
            PIPELINE_CIFAR10: _paper_pipeline(
                project,
                ops,
                PIPELINE_CIFAR10,
                source="DownloadCIFAR10",
                source_attributes={},
                net=archs["VGG16"],
                train_attributes=PAPER_TRAIN,
            ),
            PIPELINE_SYNTHETIC: _paper_pipeline(
                project,
                ops,
                PIPELINE_SYNTHETIC,
                source="SyntheticImages",
                source_attributes=SYNTHETIC_DATA,
                net=archs[SYNTHETIC_NET],
                train_attributes=SYNTHETIC_TRAIN,
                test={"class_names": SYNTHETIC_CLASSES},
            ),
            PIPELINE_CUSTOM: _paper_pipeline(
                project,
                ops,
                PIPELINE_CUSTOM,
                source="SyntheticImages",
                source_attributes=CUSTOM_DATA,
                net=archs[CUSTOM_ARCHITECTURE],
                train_attributes=CUSTOM_TRAIN,
                test={"class_names": SYNTHETIC_CLASSES},
                augment=ops[CUSTOM_OPERATION],
            ),
        }
    return Cifar10Ids(ops, archs, layer, pipelines)


def _paper_pipeline(
    project: ProjectDoc,
    ops: Mapping[str, str],
    name: str,
    *,
    source: str,
    source_attributes: Mapping[str, Any],
    net: str,
    train_attributes: Mapping[str, Any],
    test: Mapping[str, Any] | None = None,
    augment: str | None = None,
) -> str:
    """Source → NormalizeData → [augment →] Train → Test, with Output(model), Output(accuracies)."""
    model_name, accuracies_name = ARTIFACTS[name]
    pid = project.add_pipeline(name)
    data = project.add_node(pid, ops[source], attributes=source_attributes)
    normalize = project.add_node(pid, ops["NormalizeData"])
    train = project.add_node(
        pid,
        ops["Train"],
        attributes=train_attributes,
        references={"net": net, "criterion": CRITERION},
    )
    tester = project.add_node(pid, ops["Test"], attributes=test)
    save_model = project.add_node(
        pid, ops["Output"], "Save model", attributes={"name": model_name}
    )
    save_accuracies = project.add_node(
        pid, ops["Output"], "Save accuracies", attributes={"name": accuracies_name}
    )
    project.connect(pid, data, "train", normalize, "train")
    project.connect(pid, data, "test", normalize, "test")
    if augment is None:
        project.connect(pid, normalize, "train", train, "data")
    else:
        flips = project.add_node(pid, augment)
        project.connect(pid, normalize, "train", flips, "data")
        project.connect(pid, flips, "out", train, "data")
    project.connect(pid, train, "out", tester, "model")
    project.connect(pid, normalize, "test", tester, "data")
    project.connect(pid, train, "out", save_model, "data")
    project.connect(pid, tester, "out", save_accuracies, "data")
    return pid
