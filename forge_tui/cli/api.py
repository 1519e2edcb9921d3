"""The server's HTTP API for ``forge`` commands: credentials from the command line, refusals
as :class:`CliError` with the server's own reason."""

from __future__ import annotations

import argparse
from typing import Any

from forge_tui.api_client import ApiError, json_object, open_stream
from forge_tui.cli.errors import CliError
from forge_tui.cli.options import client_credentials


def api_call(
    args: argparse.Namespace,
    method: str,
    path: str,
    body: dict[str, Any] | None = None,
    *,
    query: dict[str, str] | None = None,
    timeout: float = 30.0,
) -> dict[str, Any]:
    """Call ``/api/{path}`` on the server; errors become a CliError with the server's reason."""
    with open_api(args, method, path, body, query=query, timeout=timeout) as answer:
        try:
            return json_object(answer.read(), answer.url)
        except ApiError as exc:
            raise CliError(exc.message) from None


def open_api(
    args: argparse.Namespace,
    method: str,
    path: str,
    body: dict[str, Any] | None = None,
    *,
    query: dict[str, str] | None = None,
    timeout: float = 30.0,
) -> Any:
    """The open HTTP response of ``/api/{path}`` (for downloads and JSON alike)."""
    creds = client_credentials(args)
    try:
        return open_stream(creds.server, creds.token, method, path, body, query=query,
                           timeout=timeout)
    except ApiError as exc:
        if exc.status == 401:  # the server's reason speaks HTTP; say how `forge` sends one
            raise CliError(f"{exc.message}; forge commands send --token TOKEN, else "
                           "$FORGE_TOKEN, else the token saved by `forge login URL TOKEN`"
                           ) from None
        raise CliError(exc.message) from None
