"""Import a PyTorch module into an editable architecture with ``torch.fx``.

The module is traced symbolically: ``torch.nn`` submodules become layers whose attributes are
read back from the module objects (and checked by rebuilding each layer and comparing it with
the original), and functional calls (``F.relu``, ``torch.flatten``, ``+``, ``torch.cat``, ...)
become functional nodes. Container modules such as ``nn.Sequential`` and the user's own
submodules are traced through, so their contents become editable layers.

Importing a file runs the user's code. :func:`import_from_file` therefore loads and traces it in
a child process (``python -m forge_ops.arch.importer FILE:CLASS``) that prints the architecture
as JSON; the server and TUI never import user files.

This module is the entry point (in process and as a child process); the work is done by
:mod:`._trace` (the graph walk), :mod:`._recover` (layer attributes) and :mod:`._fx_specs`
(which calls become which functional ops), which import torch and are loaded on first use.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from forge_ops.arch._model import ArchitectureError
from forge_ops.arch._user_code import ArchitectureImportError, user_frame
from forge_ops.arch.build import build_module
from forge_ops.arch.naming import identifier
from forge_ops.input_shape import InputShapeError, parse_input_shape

if TYPE_CHECKING:
    from torch import nn

__all__ = [
    "ArchitectureImportError",
    "check_parity",
    "import_file",
    "import_from_file",
    "import_module",
    "load_class",
    "parse_shape",
]


def import_module(
    module: nn.Module,
    name: str | None = None,
    input_shape: Sequence[int] | None = None,
    leaves: Sequence[str] = (),
    custom_layers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Trace a module into architecture plain data (runs the module's Python code).

    Submodules whose class is named in ``leaves`` are kept whole as custom layers (their
    source goes into ``custom_layers``, a dict this fills) instead of being traced through;
    that is the way to import a block with data-dependent control flow.
    """
    from forge_ops.arch._trace import trace_module  # imports torch (fx): only when importing

    return trace_module(module, name, input_shape, leaves, custom_layers)


def load_class(path: str, class_name: str) -> type:
    """Import a Python file and return one of its classes (runs the file's code)."""
    import importlib.util

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
    cls = getattr(loaded, class_name, None)
    if not isinstance(cls, type):
        raise ArchitectureImportError(f"{path} defines no class {class_name!r}")
    return cls


def import_file(
    path: str,
    class_name: str,
    input_shape: Sequence[int] | None = None,
    *,
    leaves: Sequence[str] = (),
    custom_layers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Load ``path``, instantiate ``class_name()`` and import it (in this process).

    With ``input_shape`` the result is checked: built with the original's weights it must
    give the original's outputs. ``leaves``/``custom_layers`` as for :func:`import_module`.
    """
    cls = load_class(path, class_name)
    try:
        module = cls()
    except TypeError as exc:
        raise ArchitectureImportError(
            f"{class_name}() could not be created without arguments ({exc}); add defaults to "
            "its constructor or a subclass that sets them"
        ) from exc
    layers: dict[str, str] = {}
    arch = import_module(module, class_name, input_shape, leaves, layers)
    if input_shape is not None:
        check_parity(module, arch, [list(input_shape)], layers)
    if custom_layers is not None:
        custom_layers.update(layers)
    return arch


def check_parity(
    original: nn.Module,
    arch: Mapping[str, Any],
    input_shapes: list[list[int]],
    custom_layers: Mapping[str, str] | None = None,
) -> None:
    """Build the architecture, load the original's weights, compare outputs on random input."""
    import torch

    rebuilt = build_module(arch, custom_layers)
    rebuilt.load_state_dict(original.state_dict())
    original_mode = original.training
    original.eval()
    rebuilt.eval()
    inputs = [torch.randn(*shape) for shape in input_shapes]
    with torch.no_grad():
        expected, got = original(*inputs), rebuilt(*inputs)
    original.train(original_mode)
    expected_list = list(expected) if isinstance(expected, tuple | list) else [expected]
    got_list = list(got) if isinstance(got, tuple | list) else [got]
    for index, (a, b) in enumerate(zip(expected_list, got_list, strict=True)):
        if not torch.allclose(a, b, atol=1e-5, rtol=1e-4):
            raise ArchitectureImportError(
                f"imported architecture's output {index} differs from the original's "
                f"(max difference {float((a - b).abs().max()):.3g})"
            )


def import_from_file(
    path: str,
    class_name: str,
    input_shape: Sequence[int] | None = None,
    *,
    leaves: Sequence[str] = (),
    custom_layers: dict[str, str] | None = None,
    timeout: float = 120.0,
) -> dict[str, Any]:
    """Import ``path:class_name`` in a child process (user code never runs in this one).

    Arguments as for :func:`import_file`; ``custom_layers`` receives the leaves' code.
    """
    command = [sys.executable, "-m", "forge_ops.arch.importer", f"{path}:{class_name}"]
    if input_shape is not None:
        command += ["--input-shape", ",".join(str(d) for d in input_shape)]
    for leaf in leaves:
        command += ["--leaf", leaf]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        raise ArchitectureImportError(
            f"importing {path}:{class_name} took longer than {timeout:.0f} s; stopped"
        ) from exc
    try:
        answer = json.loads(done.stdout.strip().splitlines()[-1]) if done.stdout.strip() else {}
    except json.JSONDecodeError:
        answer = {}
    if "error" in answer:
        raise ArchitectureImportError(answer["error"])
    if done.returncode != 0 or "architecture" not in answer:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise ArchitectureImportError(f"importing {path}:{class_name} failed: {tail}")
    arch: dict[str, Any] = answer["architecture"]
    if custom_layers is not None:
        custom_layers.update(answer.get("custom_layers") or {})
    return arch


def parse_shape(text: str) -> list[int]:
    """``"1,3,32,32"`` -> ``[1, 3, 32, 32]`` (the rule of :mod:`forge_ops.input_shape`)."""
    try:
        return parse_input_shape(text)
    except InputShapeError as exc:
        raise ArchitectureImportError(str(exc)) from None


def _main(argv: Sequence[str] | None = None, out: Callable[[str], Any] = print) -> int:
    parser = argparse.ArgumentParser(prog="python -m forge_ops.arch.importer")
    parser.add_argument("target", help="path/to/file.py:ClassName")
    parser.add_argument("--input-shape", default=None)
    parser.add_argument("--leaf", action="append", default=[])
    args = parser.parse_args(argv)
    path, _, class_name = str(args.target).rpartition(":")
    try:
        if not path or not class_name:
            raise ArchitectureImportError(
                f"give the module as path/to/file.py:ClassName (got {args.target!r})"
            )
        shape = parse_shape(args.input_shape) if args.input_shape else None
        layers: dict[str, str] = {}
        arch = import_file(path, class_name, shape, leaves=args.leaf, custom_layers=layers)
    except ArchitectureError as exc:
        out(json.dumps({"error": str(exc)}))
        return 1
    out(json.dumps({"architecture": arch, "custom_layers": layers}))
    return 0


if __name__ == "__main__":
    sys.exit(_main())
