"""``forge export ...`` and ``forge import ...``: architectures and pipelines in and out.

- ``forge export PROJECT ARCHITECTURE [--format torch] > model.py``: plain PyTorch source.
- ``forge export PROJECT PIPELINE --format python DIR``: a standalone folder (any installed
  exporter's format works; ``forge export --list`` shows them, third-party ones included).
- ``forge import PROJECT file.py:NAME [--input long[1,64]:0..30000 ...]``: trace a PyTorch
  module (a class, or a factory such as ``resnet18``) into a new editable architecture, checked
  against the original on a sample input. The file is run in a child process, never in this one.

Both read or write the project document through the sync client (``--branch``, default main).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from forge_tui.cli.errors import CliError
from forge_tui.cli.options import add_client_options, client_credentials


def register(subparsers: Any) -> None:
    export = subparsers.add_parser(
        "export",
        help="export an architecture as PyTorch source, or a pipeline with an exporter",
        description="Export an architecture as plain PyTorch source (--format torch, printed) "
        "or a pipeline to a folder with an installed exporter (--format python DIR).",
    )
    export.add_argument("project", nargs="?", help="project name")
    export.add_argument("item", nargs="?", help="architecture or pipeline (name or id)")
    export.add_argument("destination", nargs="?", help="folder for a pipeline export")
    export.add_argument(
        "--format",
        "-f",
        dest="format",
        nargs="+",
        metavar=("FORMAT", "DIR"),
        help="torch for an architecture; an exporter's name (python, ...) for a pipeline, "
        "followed by the folder to write (default: torch for architectures, python for "
        "pipelines)",
    )
    export.add_argument("--list", action="store_true", help="list installed pipeline exporters")
    export.add_argument("--branch", "-b", default="main", help="branch to read (main)")
    add_client_options(export)
    export.set_defaults(handler=_export)

    imp = subparsers.add_parser(
        "import",
        help="import a PyTorch module (file.py:NAME) as an architecture",
        description="Trace a PyTorch nn.Module with torch.fx into an editable architecture and "
        "check it against the original on a sample input. NAME is a class constructible "
        "without arguments, a factory function (resnet18), a call with literal arguments "
        "('make(depth=2)') or a module object. The file runs in a child process.",
    )
    imp.add_argument("project", help="project name")
    imp.add_argument(
        "target",
        metavar="FILE.py:NAME",
        help="module to import: a class, a function returning a module, or a module object",
    )
    imp.add_argument(
        "--input",
        action="append",
        default=[],
        metavar="SPEC",
        help="a forward argument as DTYPE[SIZES]:LOW..HIGH, e.g. float[1,3,224,224] or "
        "long[1,64]:0..30000 (repeat for several inputs); stored on the architecture and used "
        "to check the import's outputs",
    )
    imp.add_argument(
        "--input-shape",
        metavar="1,3,32,32",
        help="a float input of this shape (the same as --input float[1,3,32,32])",
    )
    imp.add_argument("--name", help="architecture name (default: the class name)")
    imp.add_argument(
        "--leaf",
        action="append",
        default=[],
        metavar="CLASS",
        help="keep submodules of this class whole (repeatable): a class of an installed package "
        "by import path (torchvision.ops.StochasticDepth) becomes a library layer, one of your "
        "own files a custom layer; for blocks with control flow that cannot be traced",
    )
    imp.add_argument("--branch", "-b", default="main", help="branch to write to (main)")
    add_client_options(imp)
    imp.set_defaults(handler=_import)


# ----- document access -------------------------------------------------------------------


async def _read_project(args: argparse.Namespace) -> dict[str, Any]:
    from forge_ops.schema import ProjectDoc
    from forge_server.client import SyncError, open_document

    creds = client_credentials(args)
    try:
        async with open_document(creds.server, creds.token, f"{args.project}/{args.branch}") as c:
            project = ProjectDoc(c.doc)
            if not project.name:
                raise CliError(
                    f"project {args.project!r} (branch {args.branch}) does not exist on "
                    f"{creds.server}; check the name with the TUI or `forge log`"
                )
            plain: dict[str, Any] = dict(project.to_plain())
    except SyncError as exc:
        raise CliError(str(exc)) from exc
    return plain


def _find(items: dict[str, Any], key: str) -> tuple[str, dict[str, Any]] | None:
    if key in items:
        return key, items[key]
    matches = [(i, v) for i, v in items.items() if v.get("name") == key]
    if len(matches) > 1:
        raise CliError(
            f"several items are named {key!r}; give the id instead "
            f"({', '.join(i for i, _ in matches)})"
        )
    return matches[0] if matches else None


# ----- export ---------------------------------------------------------------------------


def _export(args: argparse.Namespace) -> int:
    if args.list:
        return _list_exporters()
    if not args.project or not args.item:
        raise CliError(
            "give a project and an architecture or pipeline: "
            "forge export PROJECT NAME [--format FORMAT] [DIR]  (or --list)"
        )
    fmt_and_dir = list(args.format or [])
    if len(fmt_and_dir) > 2 or (len(fmt_and_dir) == 2 and args.destination):
        raise CliError("give one format and at most one folder: --format python DIR")
    if len(fmt_and_dir) == 2:
        args.destination = fmt_and_dir[1]  # `--format python DIR`, as the docs write it
    project = asyncio.run(_read_project(args))
    architecture = _find(project.get("architectures", {}), args.item)
    pipeline = _find(project.get("pipelines", {}), args.item)
    fmt = fmt_and_dir[0] if fmt_and_dir else ("torch" if architecture is not None else "python")
    if fmt == "torch":
        if architecture is None:
            raise CliError(
                f"no architecture {args.item!r} in {args.project!r}; "
                "--format torch exports architectures"
            )
        return _export_architecture(project, architecture[1], args)
    if pipeline is None:
        raise CliError(
            f"no pipeline {args.item!r} in {args.project!r} "
            f"(format {fmt!r} exports pipelines; use --format torch for architectures)"
        )
    if not args.destination:
        raise CliError(
            f"give a folder to write to: forge export {args.project} {args.item} --format {fmt} DIR"
        )
    from forge_ops.exporters import ExportError, load_exporter

    try:
        paths = load_exporter(fmt).export(project, pipeline[0], Path(args.destination))
    except ExportError as exc:
        raise CliError(str(exc)) from exc
    print(f"wrote {len(paths)} files to {args.destination}", file=sys.stderr)
    return 0


def _export_architecture(
    project: dict[str, Any], arch: dict[str, Any], args: argparse.Namespace
) -> int:
    from forge_ops.arch import ArchitectureError, export_source

    custom = {str(layer["name"]): str(layer["code"]) for layer in project["layers"].values()}
    if args.destination:
        raise CliError(
            "--format torch prints the source; redirect it: "
            f"forge export {args.project} {args.item} > model.py"
        )
    try:
        sys.stdout.write(export_source(arch, custom))
    except ArchitectureError as exc:
        raise CliError(f"architecture {arch.get('name')!r} cannot be exported: {exc}") from exc
    return 0


def _list_exporters() -> int:
    from forge_ops.exporters import available_exporters

    print("torch        (architectures) plain PyTorch nn.Module source, printed")
    for info in available_exporters().values():
        print(
            f"{info.name:<12} (pipelines) {info.description}  [{info.distribution}: {info.target}]"
        )
    return 0


# ----- import ---------------------------------------------------------------------------


def _import(args: argparse.Namespace) -> int:
    from forge_ops.arch import ArchitectureError, import_from_file, parse_input
    from forge_ops.input_shape import InputShapeError, parse_input_shape

    path, _, target = str(args.target).rpartition(":")
    if not path or not target:
        raise CliError(f"give the module as path/to/file.py:NAME (got {args.target!r})")
    name = args.name or target.split("(", 1)[0]
    if args.input and args.input_shape:
        raise CliError("give either --input or --input-shape, not both")
    try:
        shape = parse_input_shape(args.input_shape) if args.input_shape else None
        for spec in args.input:
            parse_input(spec)  # a typo fails here, before anything runs
    except (InputShapeError, ArchitectureError) as exc:
        raise CliError(str(exc)) from None
    existing = asyncio.run(_read_project(args))  # fail fast, before running any user code
    if any(a.get("name") == name for a in existing.get("architectures", {}).values()):
        raise CliError(f"architecture {name!r} already exists; choose another with --name")
    custom: dict[str, str] = {}
    notes: list[str] = []
    try:
        # The user's file runs in a child process, never in this one.
        arch = import_from_file(
            path, target, shape, leaves=args.leaf, custom_layers=custom, inputs=args.input,
            notes=notes,
        )
    except ArchitectureError as exc:
        raise CliError(str(exc)) from exc
    arch["name"] = name
    arch_id = asyncio.run(_write_architecture(args, arch, name, custom))
    layers = len(arch["layers"])
    print(f"imported {target} as architecture {name!r} ({arch_id}, {layers} layers)")
    for note in notes:
        print(note)
    for layer in sorted(custom):
        print(f"custom layer {layer!r} added to the project's layers")
    return 0


async def _write_architecture(
    args: argparse.Namespace, arch: dict[str, Any], name: str, custom: dict[str, str]
) -> str:
    from forge_ops.arch import write_architecture
    from forge_ops.schema import ProjectDoc
    from forge_server.client import SyncError, open_document

    creds = client_credentials(args)
    try:
        async with open_document(creds.server, creds.token, f"{args.project}/{args.branch}") as c:
            project = ProjectDoc(c.doc)
            if not project.name:
                raise CliError(f"project {args.project!r} does not exist on {creds.server}")
            if project.find("architectures", name) is not None:
                raise CliError(f"architecture {name!r} already exists; choose another with --name")
            layers = project.to_plain()["layers"]
            for layer_name, code in custom.items():
                same = [layer for layer in layers.values() if layer["name"] == layer_name]
                if same and same[0]["code"] != code:
                    raise CliError(
                        f"the project already has a custom layer {layer_name!r} with other code; "
                        "rename one of them"
                    )
            with project.doc.transaction():
                for layer_name, code in custom.items():
                    if project.find("layers", layer_name) is None:
                        project.add_layer(layer_name, code)
                return write_architecture(project, arch, name)
    except SyncError as exc:
        raise CliError(str(exc)) from exc
