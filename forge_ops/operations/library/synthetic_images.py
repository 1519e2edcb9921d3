"""SyntheticImages: a CIFAR-shaped dataset generated from a seed, for offline use and tests.

Images are 3×32×32 uint8 in 10 balanced classes. Each class is a striped pattern with its own
orientation, stripe frequency and colour; every sample gets a random phase, brightness and
Gaussian noise. A small CNN learns it well above chance in a few hundred iterations. The same
seed gives the same bytes on every CPU.
"""

import math
from typing import NamedTuple

import torch

from forge_ops.runtime import Dataset

CLASSES = 10
SIZE = 32


class Datasets(NamedTuple):
    train: Dataset
    test: Dataset


def _samples(count: int, colours: torch.Tensor, noise: float,
             generator: torch.Generator) -> Dataset:
    labels = (torch.arange(count) % CLASSES)[torch.randperm(count, generator=generator)]
    angle = labels.float() * math.pi / CLASSES
    frequency = 2.0 + (labels % 3).float()
    phase = torch.rand(count, generator=generator) * 2 * math.pi
    coords = torch.arange(SIZE, dtype=torch.float32) / SIZE
    yy, xx = torch.meshgrid(coords, coords, indexing="ij")
    along = (xx[None] * torch.cos(angle)[:, None, None]
             + yy[None] * torch.sin(angle)[:, None, None])
    stripes = 0.5 + 0.5 * torch.sin(2 * math.pi * frequency[:, None, None] * along
                                     + phase[:, None, None])
    brightness = 0.7 + 0.3 * torch.rand(count, 1, 1, 1, generator=generator)
    images = brightness * (0.15 + 0.7 * stripes[:, None] * colours[labels][:, :, None, None])
    images = images + noise * torch.randn(images.shape, generator=generator)
    pixels = (images.clamp(0, 1) * 255).round().to(torch.uint8)
    return {"x": pixels, "y": labels.to(torch.int64)}


def synthetic_images(*, train_size: int = 5000, test_size: int = 1000, seed: int = 0,
                     noise: float = 0.3) -> Datasets:
    """Generate ``train_size`` training and ``test_size`` test images from ``seed``."""
    if train_size < CLASSES or test_size < CLASSES:
        raise ValueError(f"train_size and test_size must be at least {CLASSES} (one per class)")
    if noise < 0:
        raise ValueError("noise must be ≥ 0")
    generator = torch.Generator().manual_seed(seed)
    colours = 0.3 + 0.7 * torch.rand(CLASSES, 3, generator=generator)
    train = _samples(train_size, colours, noise, generator)
    test = _samples(test_size, colours, noise, generator)
    print(f"generated {train_size} training and {test_size} test images (seed {seed})")
    return Datasets(train, test)
