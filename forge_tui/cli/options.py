"""Options shared by every client command: ``--server`` and ``--token``."""

from __future__ import annotations

import argparse

from forge_server.credentials import Credentials, resolve


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
        help="access token (default: $FORGE_TOKEN, then stored credentials from `forge login`)",
    )


def client_credentials(args: argparse.Namespace) -> Credentials:
    return resolve(getattr(args, "server", None), getattr(args, "token", None))
