"""``forge login URL TOKEN`` / ``forge logout``: the client credentials every command uses."""

from __future__ import annotations

import argparse
import sys

from forge_tui.cli.errors import CliError

STDIN = "-"


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    login = subparsers.add_parser(
        "login", help="store the server URL and token that client commands use by default"
    )
    login.add_argument("url", help="the server, e.g. http://127.0.0.1:8700")
    login.add_argument(
        "token", help="an access token from `forge token create`; '-' reads it from stdin"
    )
    login.add_argument(
        "--no-verify",
        action="store_true",
        help="store without asking the server whether the token works",
    )
    login.set_defaults(handler=_login)

    logout = subparsers.add_parser("logout", help="forget the stored token")
    logout.set_defaults(handler=_logout)


def _login(args: argparse.Namespace) -> int:
    from forge_server.credentials import Credentials, store

    url = args.url.rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise CliError(f"server URL {args.url!r} must start with http:// or https://")
    token = sys.stdin.readline().strip() if args.token == STDIN else args.token.strip()
    if not token:
        raise CliError("empty token: pass the token printed by `forge token create NAME`")
    user = None if args.no_verify else _verify(url, token)
    path = store(Credentials(server=url, token=token))
    who = f" as {user}" if user else ""
    print(f"logged in to {url}{who}; credentials stored in {path} (mode 0600)")
    return 0


def _verify(url: str, token: str) -> str:
    """Ask the server who the token belongs to; refuse to store a token it rejects."""
    import json
    import urllib.error
    import urllib.request

    request = urllib.request.Request(  # noqa: S310 (the scheme was checked: http/https)
        f"{url}/api/auth/whoami", headers={"Authorization": f"Bearer {token}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return str(json.load(response)["user"])
    except urllib.error.HTTPError as exc:
        if exc.code == 401:
            raise CliError(
                f"{url} refused the token: {_reason(exc)}; check it or create a new one"
            ) from None
        if exc.code == 404:
            raise CliError(
                f"{url} has no accounts (started with --no-auth?) or is not a Forge server; "
                "use --no-verify to store the credentials anyway"
            ) from None
        raise CliError(f"{url} answered {exc.code} {_reason(exc)}") from None
    except (urllib.error.URLError, OSError, ValueError, KeyError) as exc:
        raise CliError(
            f"cannot check the token with {url} ({exc}); is `forge serve` running there? "
            "Use --no-verify to store it anyway"
        ) from None


def _reason(exc: Exception) -> str:
    import json

    try:
        return str(json.loads(exc.read())["error"])  # type: ignore[attr-defined]
    except (ValueError, KeyError, TypeError, AttributeError, OSError):
        return str(exc)


def _logout(args: argparse.Namespace) -> int:
    from forge_server.credentials import Credentials, credentials_path, load_stored, store

    try:
        current = load_stored()
    except ValueError as exc:
        raise CliError(str(exc)) from None
    if current is None or current.token is None:
        print("not logged in")
        return 0
    path = store(Credentials(server=current.server, token=None), credentials_path())
    print(f"forgot the token for {current.server} ({path})")
    return 0
