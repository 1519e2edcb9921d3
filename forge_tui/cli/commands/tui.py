"""``forge tui``: open the terminal client (also what plain ``forge`` does)."""

from __future__ import annotations

import argparse
import os

from forge_tui.cli.options import add_client_options, client_credentials


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "tui", help="open the terminal client", description="Open the Forge terminal client."
    )
    add_client_options(parser)
    parser.add_argument("--project", metavar="NAME", help="open this project directly")
    parser.add_argument("--branch", default="main", help="branch to open (default: main)")
    parser.add_argument(
        "--pipeline",
        metavar="NAME",
        help="with --project: open this pipeline's diagram as soon as the project has synced",
    )
    parser.add_argument(
        "--name",
        metavar="NAME",
        help="a display name others see beside your account (default: $FORGE_USER); on a "
        "server without accounts (--no-auth) it is your name (default there: your login name)",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from forge_tui.app import ForgeApp, ServerBackend
    from forge_tui.cli.errors import CliError

    creds = client_credentials(args)
    name = args.name or os.environ.get("FORGE_USER") or None
    if args.pipeline and not args.project:
        raise CliError("--pipeline needs --project: name the project that holds the pipeline")
    app = ForgeApp(
        ServerBackend(creds.server, creds.token, name),
        args.project,
        args.branch,
        start_pipeline=args.pipeline,
    )
    result = app.run()
    return int(result or 0)
