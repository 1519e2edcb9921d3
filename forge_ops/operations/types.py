"""Names that operation code uses in annotations: port types and reference types.

The interface parser reads annotations as text (``ast``), so these names matter by spelling;
at run time they are plain aliases so annotated code also runs and type-checks unchanged.

Value conventions between operations (what the executor stores and passes along):

- ``Tensor``: a ``torch.Tensor``.
- ``Dataset``: a dict ``{"x": Tensor, "y": Tensor}`` -- images ``x`` as N×C×H×W (uint8 straight
  from a source, float32 once normalized) and integer class labels ``y`` (int64, shape N).
- ``Model``: a ``torch.nn.Module`` (CPU-resident between jobs).
- ``Metrics``: a flat dict of str to float.
- ``Any``: anything the executor can store; connects to every port type.

Reference types (keyword-only parameters whose value the user picks from the project):
``Architecture`` (an architecture id → built ``nn.Module``), ``Criterion`` (a ``torch.nn`` loss
class name → an instance), ``Layer`` (a custom layer id or ``torch.nn`` class name → the class),
``Artifact`` (a project artifact name → its stored value).
"""

from __future__ import annotations

from typing import Any, TypeAlias

__all__ = [
    "ANY",
    "PORT_TYPES",
    "REFERENCE_TYPES",
    "TORCH_LOSSES",
    "Any",
    "Architecture",
    "Artifact",
    "Criterion",
    "Dataset",
    "Layer",
    "Metrics",
    "Model",
    "Tensor",
]

Tensor: TypeAlias = Any
Dataset: TypeAlias = dict[str, Any]
Model: TypeAlias = Any
Metrics: TypeAlias = dict[str, float]

Architecture: TypeAlias = Any
Criterion: TypeAlias = Any
Layer: TypeAlias = Any
Artifact: TypeAlias = Any

ANY = "Any"
#: Port types with a documented value convention; other annotation names are allowed and are
#: matched by exact spelling.
PORT_TYPES = frozenset({"Tensor", "Dataset", "Model", "Metrics", ANY})
#: Annotations that turn a keyword-only parameter into a reference instead of an attribute.
REFERENCE_TYPES = frozenset({"Architecture", "Criterion", "Layer", "Artifact"})
#: The loss classes of ``torch.nn`` a ``Criterion`` reference may name (kept as text so that
#: validation needs no torch import; a test keeps it in step with the installed torch).
TORCH_LOSSES = frozenset({
    "BCELoss", "BCEWithLogitsLoss", "CTCLoss", "CosineEmbeddingLoss", "CrossEntropyLoss",
    "GaussianNLLLoss", "HingeEmbeddingLoss", "HuberLoss", "KLDivLoss", "L1Loss",
    "LinearCrossEntropyLoss", "MSELoss", "MarginRankingLoss", "MultiLabelMarginLoss",
    "MultiLabelSoftMarginLoss", "MultiMarginLoss", "NLLLoss", "NLLLoss2d", "PoissonNLLLoss",
    "SmoothL1Loss", "SoftMarginLoss", "TripletMarginLoss", "TripletMarginWithDistanceLoss",
})
