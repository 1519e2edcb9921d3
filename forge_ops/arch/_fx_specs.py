"""Which torch functions and tensor methods become which functional op when importing.

Imports torch; loaded only when a module is being imported (by :mod:`._trace`).
"""

from __future__ import annotations

import operator
from typing import Any

import torch
import torch.nn.functional as F
from torch import fx

from forge_ops.arch._ops_table import BOTH_FORMS, signatures

# (op name, parameter names in call order, parameters to drop). A parameter whose value is a
# graph node (or a list of them) becomes an input; the others become attributes.
CallSpec = tuple[str, tuple[str, ...], frozenset[str]]
_NO_DROP: frozenset[str] = frozenset()
_INPLACE = frozenset({"inplace"})


def function_specs() -> dict[Any, CallSpec]:
    """Torch functions and Python operators, by the object fx records as a call's target."""
    unary = ("input",)
    specs: dict[Any, CallSpec] = {
        F.relu: ("relu", ("input", "inplace"), _INPLACE),
        torch.relu: ("relu", unary, _NO_DROP),
        F.relu6: ("relu6", ("input", "inplace"), _INPLACE),
        F.gelu: ("gelu", ("input", "approximate"), _NO_DROP),
        F.silu: ("silu", ("input", "inplace"), _INPLACE),
        F.elu: ("elu", ("input", "alpha", "inplace"), _INPLACE),
        F.leaky_relu: ("leaky_relu", ("input", "negative_slope", "inplace"), _INPLACE),
        torch.sigmoid: ("sigmoid", unary, _NO_DROP),
        F.sigmoid: ("sigmoid", unary, _NO_DROP),
        torch.tanh: ("tanh", unary, _NO_DROP),
        F.tanh: ("tanh", unary, _NO_DROP),
        F.softmax: ("softmax", ("input", "dim"), _NO_DROP),
        torch.softmax: ("softmax", ("input", "dim"), _NO_DROP),
        F.log_softmax: ("log_softmax", ("input", "dim"), _NO_DROP),
        torch.log_softmax: ("log_softmax", ("input", "dim"), _NO_DROP),
        F.max_pool2d: ("max_pool2d", ("input", "kernel_size", "stride", "padding"), _NO_DROP),
        F.avg_pool2d: ("avg_pool2d", ("input", "kernel_size", "stride", "padding"), _NO_DROP),
        F.adaptive_avg_pool2d: ("adaptive_avg_pool2d", ("input", "output_size"), _NO_DROP),
        F.dropout: (
            "dropout",
            ("input", "p", "training", "inplace"),
            frozenset({"training", "inplace"}),
        ),
        torch.flatten: ("flatten", ("input", "start_dim", "end_dim"), _NO_DROP),
        torch.reshape: ("reshape", ("input", "shape"), _NO_DROP),
        torch.permute: ("permute", ("input", "dims"), _NO_DROP),
        torch.transpose: ("transpose", ("input", "dim0", "dim1"), _NO_DROP),
        torch.unsqueeze: ("unsqueeze", ("input", "dim"), _NO_DROP),
        torch.squeeze: ("squeeze", ("input", "dim"), _NO_DROP),
        torch.mean: ("mean", ("input", "dim", "keepdim"), _NO_DROP),
        torch.cat: ("cat", ("tensors", "dim"), _NO_DROP),
        torch.concat: ("cat", ("tensors", "dim"), _NO_DROP),
        torch.stack: ("stack", ("tensors", "dim"), _NO_DROP),
        torch.chunk: ("chunk", ("input", "chunks", "dim"), _NO_DROP),
        torch.matmul: ("matmul", ("input", "other"), _NO_DROP),
        operator.matmul: ("matmul", ("input", "other"), _NO_DROP),
        operator.getitem: ("getitem", ("input", "index"), _NO_DROP),
    }
    for name, targets in {
        "add": (operator.add, torch.add),
        "mul": (operator.mul, torch.mul),
        "sub": (operator.sub, torch.sub),
        "div": (operator.truediv, torch.div),
    }.items():
        for target in targets:
            specs[target] = (name, ("input", "other"), _NO_DROP)
    for name, target in {
        "floordiv": operator.floordiv, "mod": operator.mod, "pow": operator.pow,
        "eq": operator.eq, "ne": operator.ne, "lt": operator.lt, "le": operator.le,
        "gt": operator.gt, "ge": operator.ge, "and_": operator.and_, "or_": operator.or_,
    }.items():
        specs[target] = (name, ("input", "other"), _NO_DROP)
    specs[operator.neg] = ("neg", ("input",), _NO_DROP)
    specs[operator.invert] = ("invert", ("input",), _NO_DROP)
    for name, (path, params) in signatures().items():
        names = tuple(("*" if p.variadic else "") + p.name for p in params)
        namespace, _, attribute = path.partition(".")
        if namespace == "":  # a tensor method: reached as torch.name too for some
            found = getattr(torch, attribute, None) if name in BOTH_FORMS else None
        else:
            found = getattr(F if namespace == "F" else torch, attribute, None)
        if found is not None:
            specs.setdefault(found, (name, names, _NO_DROP))
    return specs


def _method_specs() -> dict[str, CallSpec]:
    """Generated ops reached as tensor methods (``x.expand(...)``, ``x.roll(...)``)."""
    found: dict[str, CallSpec] = {}
    for name, (target, params) in signatures().items():
        names = tuple(("*" if p.variadic else "") + p.name for p in params)
        if target.startswith(".") or name in BOTH_FORMS:
            found[target.rpartition(".")[2]] = (name, names, _NO_DROP)
    return found


# Tensor methods by name (fx records ``x.view(...)`` as a call_method node).
METHOD_SPECS: dict[str, CallSpec] = {
    "relu": ("relu", ("input",), _NO_DROP),
    "sigmoid": ("sigmoid", ("input",), _NO_DROP),
    "tanh": ("tanh", ("input",), _NO_DROP),
    "softmax": ("softmax", ("input", "dim"), _NO_DROP),
    "log_softmax": ("log_softmax", ("input", "dim"), _NO_DROP),
    "flatten": ("flatten", ("input", "start_dim", "end_dim"), _NO_DROP),
    "view": ("reshape", ("input", "*shape"), _NO_DROP),
    "reshape": ("reshape", ("input", "*shape"), _NO_DROP),
    "permute": ("permute", ("input", "*dims"), _NO_DROP),
    "transpose": ("transpose", ("input", "dim0", "dim1"), _NO_DROP),
    "unsqueeze": ("unsqueeze", ("input", "dim"), _NO_DROP),
    "squeeze": ("squeeze", ("input", "dim"), _NO_DROP),
    "mean": ("mean", ("input", "dim", "keepdim"), _NO_DROP),
    "chunk": ("chunk", ("input", "chunks", "dim"), _NO_DROP),
    "add": ("add", ("input", "other"), _NO_DROP),
    "mul": ("mul", ("input", "other"), _NO_DROP),
    "sub": ("sub", ("input", "other"), _NO_DROP),
    "div": ("div", ("input", "other"), _NO_DROP),
    "matmul": ("matmul", ("input", "other"), _NO_DROP),
    "gelu": ("gelu", ("input", "approximate"), _NO_DROP),
    "floor_divide": ("floordiv", ("input", "other"), _NO_DROP),
    "pow": ("pow", ("input", "other"), _NO_DROP),
    "eq": ("eq", ("input", "other"), _NO_DROP),
    "__getitem__": ("getitem", ("input", "index"), _NO_DROP),
    **_method_specs(),
}
# Methods that return their input's value for the purpose of a graph.
IDENTITY_METHODS = {"contiguous", "clone", "detach"}
# Calls that only check (torch._assert): dropped from the graph with what they alone used.
CHECK_FUNCTIONS = frozenset(
    f
    for f in (
        torch._assert,
        getattr(torch, "_assert_async", None),
        getattr(torch, "_check", None),
        getattr(getattr(fx, "_symbolic_trace", None), "_assert_is_none", None),
    )
    if f is not None
)
