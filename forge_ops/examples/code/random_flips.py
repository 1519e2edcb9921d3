"""RandomFlips: augment a dataset with horizontally mirrored copies of some of its images.

An example of a custom operation: ports, attributes and their types come from the signature
below, so editing the signature changes the box in the pipeline editor.
"""

import torch

from forge_ops.runtime import Dataset


def random_flips(data: Dataset, /, *, fraction: float = 0.5, seed: int = 0) -> Dataset:
    """Return ``data`` plus mirrored copies of a random ``fraction`` of its images."""
    if not 0 <= fraction <= 1:
        raise ValueError(f"fraction must be between 0 and 1, got {fraction}")
    count = len(data["y"])
    generator = torch.Generator().manual_seed(seed)
    chosen = torch.randperm(count, generator=generator)[: round(count * fraction)]
    flipped = data["x"][chosen].flip(-1)
    print(f"added {len(chosen)} mirrored images to {count}")
    return {"x": torch.cat([data["x"], flipped]), "y": torch.cat([data["y"], data["y"][chosen]])}
