"""The server's HTTP API for ``forge`` commands: credentials from the command line, refusals
as :class:`CliError` with the server's own reason."""

from __future__ import annotations

import argparse
from typing import Any

from forge_server.credentials import Credentials
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
        return json_object(answer.read())


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
    creds = _credentials(args)
    try:
        return open_stream(creds.server, creds.token, method, path, body, query=query,
                           timeout=timeout)
    except ApiError as exc:
        raise CliError(exc.message) from None


def _credentials(args: argparse.Namespace) -> Credentials:
    try:
        return client_credentials(args)
    except ValueError as exc:  # e.g. a malformed --server URL
        raise CliError(str(exc)) from exc
