"""Example projects users can start from (``forge project create NAME --example cifar10``).

An example is a builder that writes operations, layers, architectures and pipelines into a
:class:`~forge_ops.schema.ProjectDoc`; :func:`example_document` makes a fresh document from one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from forge_ops.schema import ProjectDoc

from ._cifar10 import ARTIFACTS as ARTIFACTS
from ._cifar10 import CRITERION as CRITERION
from ._cifar10 import CUSTOM_ARCHITECTURE as CUSTOM_ARCHITECTURE
from ._cifar10 import CUSTOM_LAYER as CUSTOM_LAYER
from ._cifar10 import CUSTOM_OPERATION as CUSTOM_OPERATION
from ._cifar10 import PAPER_TRAIN as PAPER_TRAIN
from ._cifar10 import PIPELINE_CIFAR10 as PIPELINE_CIFAR10
from ._cifar10 import PIPELINE_CUSTOM as PIPELINE_CUSTOM
from ._cifar10 import PIPELINE_SYNTHETIC as PIPELINE_SYNTHETIC
from ._cifar10 import SYNTHETIC_NET as SYNTHETIC_NET
from ._cifar10 import SYNTHETIC_TRAIN as SYNTHETIC_TRAIN
from ._cifar10 import Cifar10Ids as Cifar10Ids
from ._cifar10 import build_cifar10 as build_cifar10
from ._cifar10 import example_code as example_code
from ._cifar10 import flip_cnn as flip_cnn
from ._differences import setting_differences as setting_differences

__all__ = [
    "ARTIFACTS",
    "CRITERION",
    "CUSTOM_ARCHITECTURE",
    "CUSTOM_LAYER",
    "CUSTOM_OPERATION",
    "EXAMPLES",
    "PAPER_TRAIN",
    "PIPELINE_CIFAR10",
    "PIPELINE_CUSTOM",
    "PIPELINE_SYNTHETIC",
    "SYNTHETIC_NET",
    "SYNTHETIC_TRAIN",
    "Cifar10Ids",
    "Example",
    "UnknownExample",
    "build_cifar10",
    "example_code",
    "example_document",
    "flip_cnn",
    "setting_differences",
]


class UnknownExample(ValueError):
    """No example project has the requested name."""


@dataclass(frozen=True)
class Example:
    name: str
    description: str
    build: Callable[[ProjectDoc], object]


EXAMPLES: dict[str, Example] = {
    "cifar10": Example(
        "cifar10",
        "the paper's CIFAR-10 pipeline (VGG), its offline twin on synthetic images, "
        "and a custom operation and layer",
        build_cifar10,
    ),
}


def example_document(example: str, project_name: str) -> ProjectDoc:
    """A new project document called ``project_name`` holding the example ``example``."""
    found = EXAMPLES.get(example)
    if found is None:
        raise UnknownExample(
            f"no example project {example!r}; examples: {', '.join(sorted(EXAMPLES))}"
        )
    project = ProjectDoc.create(project_name)
    found.build(project)
    return project
