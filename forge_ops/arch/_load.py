"""Loading what ``forge import FILE:NAME`` names: a class, a factory, or a module instance.

``NAME`` may be a class (created without arguments), a function or any callable returning an
``nn.Module`` (``resnet18``), a call with literal arguments (``make_model(depth=2)``), or a
module object defined in the file. ``FILE`` may also be an installed module's dotted name
(``torchvision.models:resnet18``). Runs the user's code: only in ``forge import``'s child
process and in tests.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from forge_ops.arch._library import InitRecorder
from forge_ops.arch._user_code import ArchitectureImportError, user_frame
from forge_ops.arch.naming import identifier


@dataclass
class Loaded:
    """The module to import, what it was made from, and its constructor arguments."""

    module: Any
    name: str
    user_roots: list[str] = field(default_factory=list)
    recorder: InitRecorder = field(default_factory=InitRecorder)


def load_file(path: str) -> ModuleType:
    """Run a Python file as a module (its folder goes on sys.path for its own imports)."""
    if not os.path.isfile(path):
        raise ArchitectureImportError(f"no such file: {path}")
    module_name = "forge_import_" + identifier(os.path.splitext(os.path.basename(path))[0])
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ArchitectureImportError(f"{path} is not a Python file")
    loaded = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = loaded
    sys.path.insert(0, os.path.dirname(os.path.abspath(path)))
    try:
        spec.loader.exec_module(loaded)
    except Exception as exc:
        raise ArchitectureImportError(
            f"{path} failed to run: {type(exc).__name__}: {exc} (at {user_frame(exc)})"
        ) from exc
    return loaded


def _source(path: str) -> tuple[ModuleType, list[str]]:
    if path.endswith(".py") or os.sep in path or os.path.isfile(path):
        return load_file(path), [os.path.dirname(os.path.abspath(path))]
    try:
        return importlib.import_module(path), []
    except ImportError as exc:
        raise ArchitectureImportError(
            f"{path} is neither a file nor an importable module ({exc})"
        ) from exc


def _call_parts(name: str) -> tuple[str, list[Any], dict[str, Any]]:
    """``make(2, width=4)`` -> ("make", [2], {"width": 4}); a bare name has no arguments."""
    if "(" not in name:
        return name, [], {}
    try:
        call = ast.parse(name, mode="eval").body
        if not isinstance(call, ast.Call) or not isinstance(call.func, ast.Name):
            raise ValueError
        args = [ast.literal_eval(a) for a in call.args]
        kwargs = {str(k.arg): ast.literal_eval(k.value) for k in call.keywords if k.arg}
    except (SyntaxError, ValueError):
        raise ArchitectureImportError(
            f"{name!r}: give NAME or NAME(arguments) with literal arguments, e.g. "
            "make_model(depth=2)"
        ) from None
    return call.func.id, args, kwargs


def load_target(path: str, target: str) -> Loaded:
    """Create the module ``path:target`` names, recording constructor arguments."""
    from torch import nn

    source, roots = _source(path)
    name, args, kwargs = _call_parts(target)
    found = getattr(source, name, None)
    if found is None:
        raise ArchitectureImportError(f"{path} defines no class or function {name!r}")
    loaded = Loaded(None, name, roots)
    if isinstance(found, nn.Module):
        if args or kwargs:
            raise ArchitectureImportError(f"{name} is a module object; it takes no arguments")
        loaded.module = found
        return loaded
    if not callable(found):
        raise ArchitectureImportError(f"{path}:{name} is not a class, a function or a module")
    loaded.module = _create(found, name, args, kwargs, loaded.recorder)
    if not isinstance(loaded.module, nn.Module):
        raise ArchitectureImportError(
            f"{name}() returned a {type(loaded.module).__name__}, not an nn.Module"
        )
    return loaded


def _create(
    factory: Callable[..., Any],
    name: str,
    args: list[Any],
    kwargs: dict[str, Any],
    recorder: InitRecorder,
) -> Any:
    try:
        with recorder.recording():
            return factory(*args, **kwargs)
    except TypeError as exc:
        if user_frame(exc) and not str(exc).startswith(f"{name}.__init__()"):
            raise ArchitectureImportError(
                f"{name}() failed: {exc} (at {user_frame(exc)})"
            ) from exc
        what = "class" if isinstance(factory, type) else "function"
        raise ArchitectureImportError(
            f"{name}() could not be created without arguments ({exc}); add defaults to the "
            f"{what}, or give them: FILE:{name}(width=64)"
        ) from exc
    except Exception as exc:
        raise ArchitectureImportError(
            f"{name}() failed: {type(exc).__name__}: {exc} (at {user_frame(exc)})"
        ) from exc
