"""``forge artifacts`` and ``forge artifact show/export``: a project's named artifacts.

The names are what Output operations published; each points at an immutable stored version
(its content hash). ``show`` prints provenance (commit, execution, job), shape, dtype and
statistics; ``export`` downloads the artifact as a plain file (.npy, .npz, .pt or .json).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from forge_tui.api_client import quote
from forge_tui.cli.api import api_call, open_api
from forge_tui.cli.errors import CliError
from forge_tui.cli.options import add_client_options, non_empty


def register(subparsers: Any) -> None:
    listing = subparsers.add_parser(
        "artifacts", help="list a project's named artifacts",
        description="List the artifacts Output operations published in a branch: kind, "
        "shape, dtype, size, content hash and the execution that last published each.",
    )
    _common(listing, _list)
    listing.add_argument("--json", action="store_true", help="print JSON for scripts")

    artifact = subparsers.add_parser(
        "artifact", help="show or export one artifact",
        description="Show an artifact's provenance and statistics, or export it as a file.",
    )
    actions = artifact.add_subparsers(dest="action", metavar="ACTION", required=True)
    show = actions.add_parser(
        "show", help="provenance, shape, dtype and statistics",
        description="Show a named artifact: kind, shape, dtype and size, statistics of its "
        "tensors (a model's too), a JSON value whole, and every execution and job of the "
        "project that produced its content or got it from the cache.")
    _common(show, _show)
    show.add_argument("name", type=non_empty,
                      help="artifact name (see `forge artifacts PROJECT`)")
    show.add_argument("--json", action="store_true", help="print JSON for scripts")
    export = actions.add_parser(
        "export", help="download as .npy (tensors), .npz (datasets), .pt (models) or .json",
        description="Download a named artifact as a plain file: .npy for a tensor, .npz for a "
        "dataset, .pt (a state dict) for a model, .json for a JSON value. PATH is a file, or "
        "a folder to write it in under its own name.")
    _common(export, _export)
    export.add_argument("name", type=non_empty, help="artifact name")
    export.add_argument("path", type=Path, help="file to write, or a folder to write it in")
    export.add_argument("--force", action="store_true", help="overwrite an existing file")


def _common(parser: argparse.ArgumentParser, handler: Any) -> None:
    parser.add_argument("project", type=non_empty, help="project name")
    parser.add_argument("--branch", "-b", default="main", help="branch (main)")
    add_client_options(parser)
    parser.set_defaults(handler=handler)


def _size(nbytes: int) -> str:
    size = float(nbytes)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{nbytes} B"


def _shape(shape: Any) -> str:
    return "×".join(str(d) for d in shape) if shape else "-"


def _list(args: argparse.Namespace) -> int:
    result = api_call(args, "GET", f"projects/{quote(args.project)}/artifacts",
                      query={"branch": args.branch})
    artifacts = result["artifacts"]
    if args.json:
        print(json.dumps(artifacts, indent=2))
        return 0
    if not artifacts:
        print(f"branch {args.branch} of {args.project} has no artifacts yet: run a pipeline "
              "with an Output operation")
        return 0
    print(_LISTING.format("NAME", "KIND", "SHAPE", "DTYPE", "SIZE", "HASH", "EXECUTION"))
    for name, artifact in artifacts.items():
        print(_LISTING.format(name, artifact["kind"], _shape(artifact.get("shape")),
                              artifact.get("dtype") or "-", _size(artifact["bytes"]),
                              artifact["hash"][:12], artifact.get("produced_by") or "-"))
    return 0


_LISTING = "{:<20} {:<8} {:<16} {:<10} {:>10}  {:<12}  {}"


def _show(args: argparse.Namespace) -> int:
    path = f"projects/{quote(args.project)}/artifacts/{quote(args.name)}"
    result = api_call(args, "GET", path, query={"branch": args.branch}, timeout=180)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    summary = result.get("summary", {})
    print(f"artifact  {result['name']}")
    print(f"hash      {result['hash']}")
    print(f"kind      {result['kind']}")
    print(f"shape     {_shape(result.get('shape'))}")
    print(f"dtype     {result.get('dtype') or '-'}")
    print(f"size      {_size(result['bytes'])}")
    if summary.get("parameters") is not None:
        print(f"params    {summary['parameters']}")
    if summary.get("metadata"):
        meta = summary["metadata"]
        print(f"model     {meta.get('class')} ({meta.get('framework')} "
              f"{meta.get('framework_version')})")
    if summary.get("stats"):
        print("stats     " + _stats(summary["stats"]))
    for name, member in (summary.get("members") or {}).items():
        stats = _stats(member["stats"]) if member.get("stats") else ""
        print(f"  {name:<28} {_shape(member['shape']):<16} {member['dtype']:<16} {stats}")
    if "value" in summary:
        print("value     " + json.dumps(summary["value"], indent=2).replace("\n", "\n          "))
    print("produced by")
    names: dict[str, dict[str, str]] = {}
    for source in summary.get("provenance") or []:
        execution, job = str(source.get("execution")), str(source.get("job"))
        if execution not in names:
            names[execution] = _job_names(args, execution)
        cached = "  (from the cache)" if source.get("how") == "cached" else ""
        print(f"  commit {str(source.get('commit'))[:10]}  execution {execution}"
              f"  job {names[execution].get(job, job)}  {str(source.get('created'))[:19]}"
              f"{cached}")
    return 0


def _job_names(args: argparse.Namespace, execution: str) -> dict[str, str]:
    """``{job id: name}`` of an execution; empty when it cannot be read (ids are shown then)."""
    try:
        record = api_call(args, "GET", f"executions/{quote(execution)}")
    except CliError:
        return {}
    return {job: str(info.get("name", job)) for job, info in (record.get("jobs") or {}).items()}


def _stats(stats: dict[str, Any]) -> str:
    return "  ".join(
        f"{key} {value:.4g}" if isinstance(value, int | float) else f"{key} -"
        for key, value in stats.items()
    )


def _export(args: argparse.Namespace) -> int:
    import os
    import re
    import shutil
    import tempfile

    path = f"projects/{quote(args.project)}/artifacts/{quote(args.name)}/export"
    with open_api(args, "GET", path, query={"branch": args.branch}, timeout=600) as response:
        disposition = response.headers.get("Content-Disposition", "")
        match = re.search(r'filename="([^"/\\]+)"', disposition)
        if match is None:  # Forge always names the file
            raise CliError(f"{response.url} sent no artifact file, not a Forge server's "
                           "answer: check --server")
        target: Path = args.path / match.group(1) if args.path.is_dir() else args.path
        if target.is_symlink() or (target.exists() and not target.is_file()):
            raise CliError(f"{target} is not a regular file; export to a file path or a folder")
        if target.exists() and not args.force:
            raise CliError(f"{target} exists; pass --force to overwrite it")
        # A new file of a random name, created exclusively (O_EXCL: never through a link that
        # someone planted beside the target), then renamed over the target, which replaces a
        # link there rather than writing through it.
        try:
            fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.",
                                        suffix=".part")
        except OSError as exc:
            raise CliError(f"cannot write {target}: {exc}") from exc
        partial = Path(name)
        try:
            with os.fdopen(fd, "wb") as file:
                shutil.copyfileobj(response, file)
            umask = os.umask(0)
            os.umask(umask)
            partial.chmod(0o666 & ~umask)  # as an ordinary new file (mkstemp makes it 0600)
            partial.replace(target)
        except OSError as exc:
            partial.unlink(missing_ok=True)
            raise CliError(f"cannot write {target}: {exc}") from exc
    print(f"wrote {target} ({_size(target.stat().st_size)})")
    return 0
