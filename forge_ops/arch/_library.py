"""Which classes an import keeps whole, and how: library layers, custom layers, stochastic depth.

``--leaf NAME`` names a class by its bare name (``Gate``) or its import path
(``torchvision.ops.StochasticDepth``). A class from an installed package is kept as a *library
layer*: the architecture refers to it by import path with its constructor arguments, and the
export imports it the same way. A class of the user's own code becomes a *custom layer* (its
source is copied into the project). Constructor arguments are recorded while the model is
built (:class:`InitRecorder`), so a class that stores a derived value (``self.shift = shift *
2``) still gets the arguments it was given.
"""

from __future__ import annotations

import importlib
import inspect
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from types import FrameType
from typing import Any

from forge_ops.arch._user_code import ArchitectureImportError

# Stochastic depth classes as timm and torchvision write them: (probability, mode, scaling).
DROP_PATH_CLASSES = {
    "DropPath": ("drop_prob", None, "scale_by_keep"),
    "StochasticDepth": ("p", "mode", None),
}


def class_path(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def is_library_class(cls: type, user_roots: Sequence[str] = ()) -> bool:
    """Whether a class comes from an importable package (torch, torchvision, timm, anything
    installed or on the path) rather than from the user's own files next to the model."""
    if cls.__module__.startswith(("forge_import_", "__main__")) or "<locals>" in cls.__qualname__:
        return False
    module = sys.modules.get(cls.__module__)
    file = getattr(module, "__file__", None)
    if not file:
        return False
    file = os.path.realpath(file)
    return not any(file.startswith(os.path.realpath(r) + os.sep) for r in user_roots)


class LeafRules:
    """The ``--leaf`` names: classes kept whole instead of being traced through."""

    def __init__(self, names: Sequence[str]) -> None:
        self.names = list(names)
        self.used: set[str] = set()

    def match(self, cls: type) -> str | None:
        """The ``--leaf`` name that selects ``cls``, if any."""
        for name in self.names:
            if "." in name:
                if class_path(cls) == name or _resolve(name) is cls:
                    return name
            elif cls.__name__ == name:
                return name
        return None

    def unused(self) -> list[str]:
        return [name for name in self.names if name not in self.used]


def _resolve(path: str) -> Any:
    module, _, name = path.rpartition(".")
    try:
        return getattr(importlib.import_module(module), name, None)
    except Exception:  # an unimportable path simply matches nothing
        return None


def check_leaf_names(names: Sequence[str]) -> None:
    """Dotted ``--leaf`` names must import; say so before any tracing."""
    for name in names:
        if "." in name and _resolve(name) is None:
            raise ArchitectureImportError(
                f"--leaf {name}: no such class (give an import path such as "
                "torchvision.ops.StochasticDepth, or a class name such as Block)"
            )


def is_drop_path(module: Any) -> bool:
    """timm's DropPath, torchvision's StochasticDepth, or a copy of one (identity in eval)."""
    fields = DROP_PATH_CLASSES.get(type(module).__name__)
    return (
        fields is not None
        and hasattr(module, fields[0])
        and not any(True for _ in module.parameters())
    )


def drop_path_attributes(module: Any) -> dict[str, Any]:
    probability, mode, scaling = DROP_PATH_CLASSES[type(module).__name__]
    found: dict[str, Any] = {"p": float(getattr(module, probability))}
    if mode is not None and getattr(module, mode, "row") != "row":
        found["mode"] = getattr(module, mode)
    if scaling is not None and getattr(module, scaling, True) is False:
        found["scale_by_keep"] = False
    return found


class InitRecorder:
    """Records each module's constructor arguments as they were given, while it is built."""

    def __init__(self) -> None:
        self.arguments: dict[int, dict[str, Any]] = {}
        self._keep: list[Any] = []  # the instances, so their ids stay theirs

    def of(self, module: Any) -> dict[str, Any] | None:
        return self.arguments.get(id(module))

    def _profile(self, frame: FrameType, event: str, arg: Any) -> None:
        if event != "call" or frame.f_code.co_name != "__init__":
            return
        names = frame.f_code.co_varnames[: frame.f_code.co_argcount]
        if not names:
            return
        instance = frame.f_locals.get(names[0])
        init = getattr(type(instance), "__init__", None)
        if getattr(init, "__code__", None) is not frame.f_code or id(instance) in self.arguments:
            return
        if not _is_module(instance):
            return
        info = inspect.getargvalues(frame)
        values = {name: info.locals[name] for name in info.args[1:] if name in info.locals}
        if info.varargs:
            values[info.varargs] = list(info.locals.get(info.varargs) or ())
        if info.keywords:
            values.update(info.locals.get(info.keywords) or {})
        self.arguments[id(instance)] = values
        self._keep.append(instance)

    @contextmanager
    def recording(self) -> Iterator[None]:
        previous = sys.getprofile()
        sys.setprofile(self._profile)
        try:
            yield
        finally:
            sys.setprofile(previous)


def _is_module(value: Any) -> bool:
    from torch import nn

    return isinstance(value, nn.Module)
