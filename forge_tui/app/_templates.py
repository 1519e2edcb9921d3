"""The code a new operation or custom layer starts from (the sidebar's "n")."""

from __future__ import annotations

OPERATION_TEMPLATE = '''from forge_ops.runtime import Tensor


def {function}(data: Tensor, *, scale: float = 1.0) -> Tensor:
    """Describe what {name} does; positional parameters are inputs, keyword-only ones attributes."""
    return data * scale
'''

LAYER_TEMPLATE = """import torch
from torch import nn


class {name}(nn.Module):
    def __init__(self, features: int = 16):
        super().__init__()
        self.linear = nn.LazyLinear(features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.linear(x))
"""


def function_name(name: str) -> str:
    """A Python function name for an operation called ``name``."""
    out = "".join(ch.lower() if ch.isalnum() else "_" for ch in name).strip("_") or "operation"
    return out if not out[0].isdigit() else f"op_{out}"


def new_operation_code(name: str) -> str:
    """A working operation called ``name``: one input, one attribute, one output."""
    return OPERATION_TEMPLATE.format(function=function_name(name), name=name)


def new_layer_code(name: str) -> str:
    """A working ``nn.Module`` class called ``name`` (a Python class name)."""
    return LAYER_TEMPLATE.format(name=name)
