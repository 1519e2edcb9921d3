"""Options shared by every client command: ``--server`` and ``--token``."""

from __future__ import annotations

import argparse
import sys

from forge_server.credentials import Credentials, resolve

EXPOSED_OPTION_WARNING = (
    "forge: warning: --token shows the secret to every user of this machine (in the process "
    "list); set FORGE_TOKEN or run `forge login` instead"
)


def add_client_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--server",
        metavar="URL",
        help="Forge server URL (default: $FORGE_SERVER, then stored credentials, "
        "then http://127.0.0.1:8700)",
    )
    parser.add_argument(
        "--token",
        metavar="TOKEN",
        help="access token (default: $FORGE_TOKEN, then stored credentials from `forge login`); "
        "prefer those two: an option is visible to every user of the machine in its process list",
    )


def client_credentials(args: argparse.Namespace) -> Credentials:
    """--server and --token, else the environment, else ``forge login``'s; a CliError for a
    malformed server URL."""
    from forge_tui.cli.errors import CliError

    if getattr(args, "token", None):
        print(EXPOSED_OPTION_WARNING, file=sys.stderr)
    try:
        return resolve(getattr(args, "server", None), getattr(args, "token", None))
    except ValueError as exc:
        raise CliError(str(exc)) from None


def non_empty(text: str) -> str:
    """An argparse type for names and ids: an empty one is an error at once, not a 404."""
    if not text.strip():
        raise argparse.ArgumentTypeError("must not be empty")
    return text
