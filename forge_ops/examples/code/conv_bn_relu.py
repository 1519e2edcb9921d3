"""ConvBNReLU: a custom layer, convolution then batch normalisation then ReLU.

Its constructor arguments are the layer's attributes in the architecture editor; the code runs
only inside jobs.
"""

import torch
from torch import nn


class ConvBNReLU(nn.Module):
    """3x3 convolution (padding keeps the size), batch norm and ReLU in one box."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size,
                              padding=kernel_size // 2, bias=False)
        self.norm = nn.BatchNorm2d(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.conv(x)).relu()
