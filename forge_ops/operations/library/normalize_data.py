"""NormalizeData: scale images to zero mean and unit variance per channel.

The statistics come from the training set only and are applied to both sets, so the test set
tells nothing to training.
"""

from typing import NamedTuple

import torch

from forge_ops.runtime import Dataset


class Datasets(NamedTuple):
    train: Dataset
    test: Dataset


def _as_float(images: torch.Tensor) -> torch.Tensor:
    if images.dtype == torch.uint8:
        return images.float() / 255
    return images.float()


def normalize_data(train: Dataset, test: Dataset, /, *, epsilon: float = 1e-6) -> Datasets:
    """Normalize ``x`` of both datasets with the training set's per-channel mean and std."""
    x = _as_float(train["x"])
    if x.ndim != 4:
        raise ValueError(f"expected images shaped N×C×H×W, got {tuple(x.shape)}")
    dims = (0, 2, 3)
    mean = x.mean(dim=dims, keepdim=True)
    std = x.std(dim=dims, keepdim=True) + epsilon
    print("channel mean", [round(v, 4) for v in mean.flatten().tolist()],
          "std", [round(v, 4) for v in std.flatten().tolist()])
    return Datasets(
        {**train, "x": (x - mean) / std},
        {**test, "x": (_as_float(test["x"]) - mean) / std},
    )
