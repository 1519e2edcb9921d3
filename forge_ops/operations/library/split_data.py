"""SplitData: split one dataset into training and test sets at random (from a seed)."""

from typing import NamedTuple

import torch

from forge_ops.runtime import Dataset


class Datasets(NamedTuple):
    train: Dataset
    test: Dataset


def split_data(data: Dataset, /, *, test_fraction: float = 0.2, seed: int = 0) -> Datasets:
    """Put ``test_fraction`` of the samples (chosen with ``seed``) in ``test``, the rest in
    ``train``; every tensor of the dataset is split alike."""
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be between 0 and 1, got {test_fraction}")
    count = len(data["y"])
    order = torch.randperm(count, generator=torch.Generator().manual_seed(seed))
    cut = count - round(count * test_fraction)
    if cut in (0, count):
        raise ValueError(f"{count} samples are too few to split with test_fraction "
                         f"{test_fraction}")
    train_index, test_index = order[:cut], order[cut:]
    return Datasets(
        {key: value[train_index] for key, value in data.items()},
        {key: value[test_index] for key, value in data.items()},
    )
