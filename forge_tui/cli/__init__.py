"""The ``forge`` command line.

Each module in ``forge_tui.cli.commands`` defines ``register(subparsers)``; the modules import
only argparse-level code at the top and their heavy packages inside the handlers, so
``forge --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from collections.abc import Sequence

from forge_tui.cli import commands
from forge_tui.cli.errors import CliError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="forge",
        description="Forge: a collaborative, reproducible deep-learning workbench "
        "for the terminal.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    parser.set_defaults(subparsers=subparsers)
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{commands.__name__}.{info.name}")
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None and "tui" in args.subparsers.choices:
        args = parser.parse_args(["tui"])  # plain `forge` opens the TUI
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    try:
        result = handler(args)
    except CliError as exc:
        print(f"forge: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `forge … | head`: the reader has all it wanted
        _quiet_broken_stdout()
        return 141
    return int(result or 0)


def _quiet_broken_stdout() -> None:
    """Point stdout at /dev/null so that Python's flush at exit does not fail again."""
    import contextlib
    import io
    import os

    with contextlib.suppress(OSError, ValueError, io.UnsupportedOperation), \
            open(os.devnull, "w") as null:
        os.dup2(null.fileno(), sys.stdout.fileno())
