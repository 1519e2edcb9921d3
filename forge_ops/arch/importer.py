"""Import a PyTorch module into an editable architecture with ``torch.fx``.

The module is traced symbolically: ``torch.nn`` submodules become layers whose attributes are
read back from the module objects (and checked by rebuilding each layer and comparing it with
the original); parameters and buffers used directly become Parameter/Buffer nodes; functional
calls (``F.relu``, ``torch.flatten``, ``+``, ``x.shape``, slicing, ...) become functional
nodes. Container modules such as ``nn.Sequential`` and the user's own submodules are traced
through, so their contents become editable layers. Every import is then checked against the
original on a sample input (:mod:`._check`).

Importing a file runs the user's code. :func:`import_from_file` therefore loads and traces it in
a child process (``python -m forge_ops.arch.importer FILE:NAME``) that prints the architecture
as JSON; the server and TUI never import user files.

This module is the entry point (in process and as a child process); the work is done by
:mod:`._load` (what FILE:NAME makes), :mod:`._trace` (the graph walk), :mod:`._recover` (layer
attributes) and :mod:`._check`, which import torch and are loaded on first use.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from forge_ops.arch._inputs import InputSpec, parse_input
from forge_ops.arch._load import load_file
from forge_ops.arch._model import INPUT, ArchitectureError
from forge_ops.arch._user_code import ArchitectureImportError
from forge_ops.input_shape import InputShapeError, parse_input_shape

if TYPE_CHECKING:
    from torch import nn

    from forge_ops.arch._library import InitRecorder

__all__ = [
    "ArchitectureImportError",
    "import_file",
    "import_from_file",
    "import_module",
    "load_class",
    "parse_shape",
]

InputLike = InputSpec | str | Sequence[int]


def _specs(
    input_shape: Sequence[int] | None, inputs: Sequence[InputLike] | None
) -> list[InputSpec] | None:
    """The sample inputs given: ``--input`` specs, else the legacy ``--input-shape``."""
    if inputs:
        found = []
        for item in inputs:
            if isinstance(item, InputSpec):
                found.append(item)
            elif isinstance(item, str):
                found.append(parse_input(item))
            else:
                found.append(InputSpec(list(item)))
        return found
    return [InputSpec(list(input_shape))] if input_shape is not None else None


def import_module(
    module: nn.Module,
    name: str | None = None,
    input_shape: Sequence[int] | None = None,
    leaves: Sequence[str] = (),
    custom_layers: dict[str, str] | None = None,
    *,
    inputs: Sequence[InputLike] | None = None,
    notes: list[str] | None = None,
    recorder: InitRecorder | None = None,
    user_roots: Sequence[str] = (),
) -> dict[str, Any]:
    """Trace a module into architecture plain data (runs the module's Python code), then
    check it against the module on a sample input (``inputs``, else one guessed).

    Submodules whose class is named in ``leaves`` (a class name, or an import path for a
    class of an installed package) are kept whole: the user's classes as custom layers (their
    source goes into ``custom_layers``, a dict this fills), installed ones by import path.
    ``notes`` receives what the import wants the user to know (what was checked).
    """
    from forge_ops.arch._check import check_import  # imports torch: only when importing
    from forge_ops.arch._library import check_leaf_names
    from forge_ops.arch._trace import trace_module

    specs = _specs(input_shape, inputs)
    check_leaf_names(leaves)
    shape = specs[0].shape if specs else None
    traced = trace_module(
        module,
        name,
        shape,
        leaves,
        samples=specs,
        recorder=recorder,
        user_roots=user_roots,
    )
    _describe_inputs(traced.arch, specs)
    message = check_import(module, traced, specs)
    if notes is not None:
        notes.extend([*traced.notes, message])
    if custom_layers is not None:
        custom_layers.update(traced.custom_layers)
    return traced.arch


def _describe_inputs(arch: dict[str, Any], specs: list[InputSpec] | None) -> None:
    """Store the inputs on the Input nodes (dtype and range when they are not plain floats)."""
    if not specs:
        return
    nodes = sorted(
        (layer for layer in arch["layers"].values() if layer["type"] == INPUT),
        key=lambda layer: int(layer["attributes"].get("index", 0)),
    )
    if len(nodes) != len(specs):
        raise ArchitectureImportError(
            f"forward takes {len(nodes)} input(s) but {len(specs)} --input were given"
        )
    for position, (node, spec) in enumerate(zip(nodes, specs, strict=True)):
        attributes = spec.attributes()
        if position == 0 and attributes == {"shape": spec.shape}:
            continue  # the architecture's input_shape says it already
        node["attributes"].update(attributes)


def load_class(path: str, class_name: str) -> type:
    """Import a Python file and return one of its classes (runs the file's code)."""
    cls = getattr(load_file(path), class_name, None)
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
    inputs: Sequence[InputLike] | None = None,
    notes: list[str] | None = None,
) -> dict[str, Any]:
    """Load ``path``, create what ``class_name`` names (a class, a factory, ``make(2)``) and
    import it in this process. Arguments as for :func:`import_module`."""
    from forge_ops.arch._load import load_target

    loaded = load_target(path, class_name)
    return import_module(
        loaded.module,
        loaded.name,
        input_shape,
        leaves,
        custom_layers,
        inputs=inputs,
        notes=notes,
        recorder=loaded.recorder,
        user_roots=loaded.user_roots,
    )


def import_from_file(
    path: str,
    class_name: str,
    input_shape: Sequence[int] | None = None,
    *,
    leaves: Sequence[str] = (),
    custom_layers: dict[str, str] | None = None,
    inputs: Sequence[str] | None = None,
    notes: list[str] | None = None,
    timeout: float = 120.0,
) -> dict[str, Any]:
    """Import ``path:class_name`` in a child process (user code never runs in this one).

    Arguments as for :func:`import_file`; ``inputs`` are ``--input`` texts.
    """
    command = [sys.executable, "-m", "forge_ops.arch.importer", f"{path}:{class_name}"]
    if input_shape is not None:
        command += ["--input-shape", ",".join(str(d) for d in input_shape)]
    for item in inputs or ():
        command += ["--input", item]
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
    if notes is not None:
        notes.extend(answer.get("notes") or [])
    return arch


def parse_shape(text: str) -> list[int]:
    """``"1,3,32,32"`` -> ``[1, 3, 32, 32]`` (the rule of :mod:`forge_ops.input_shape`)."""
    try:
        return parse_input_shape(text)
    except InputShapeError as exc:
        raise ArchitectureImportError(str(exc)) from None


def _main(argv: Sequence[str] | None = None, out: Callable[[str], Any] = print) -> int:
    parser = argparse.ArgumentParser(prog="python -m forge_ops.arch.importer")
    parser.add_argument("target", help="path/to/file.py:NAME")
    parser.add_argument("--input-shape", default=None)
    parser.add_argument("--input", action="append", default=[])
    parser.add_argument("--leaf", action="append", default=[])
    args = parser.parse_args(argv)
    path, _, name = str(args.target).rpartition(":")
    try:
        if not path or not name:
            raise ArchitectureImportError(
                f"give the module as path/to/file.py:NAME (got {args.target!r})"
            )
        shape = parse_shape(args.input_shape) if args.input_shape else None
        layers: dict[str, str] = {}
        notes: list[str] = []
        arch = import_file(
            path, name, shape, leaves=args.leaf, custom_layers=layers, inputs=args.input,
            notes=notes,
        )
    except ArchitectureError as exc:
        out(json.dumps({"error": str(exc)}))
        return 1
    out(json.dumps({"architecture": arch, "custom_layers": layers, "notes": notes}))
    return 0


if __name__ == "__main__":
    sys.exit(_main())
