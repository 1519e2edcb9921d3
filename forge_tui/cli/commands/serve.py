"""``forge serve``: run the relay (and the server modules that plug into it)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from forge_server.principal import Authorizer
    from forge_server.relay.app import AppSetup


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="run the Forge server (sync relay + HTTP API)",
        description="Run the Forge server: the y-websocket sync relay with its SQLite store "
        "and the HTTP API. Listens on loopback by default; expose it through SSH port "
        "forwarding or a TLS reverse proxy.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    parser.add_argument("--port", type=int, default=8700, help="port to listen on (8700)")
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=Path("forge-data"),
        help="folder for forge.db and server state (./forge-data)",
    )
    parser.add_argument(
        "--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"]
    )
    parser.add_argument(
        "--relay-setting",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override a relay limit or timer (repeatable), e.g. max_rooms_loaded=500; "
        "names and defaults: forge_server/relay/config.py",
    )
    parser.add_argument(
        "--no-auth",
        action="store_true",
        help="single-user mode: no tokens, everyone is owner of everything (loopback only!)",
    )
    add_execution_options(parser)
    parser.set_defaults(handler=_serve)


def add_execution_options(parser: argparse.ArgumentParser) -> None:
    """--executor, --ray-address, --artifacts: where the coordinator runs jobs and keeps data."""
    import os

    parser.add_argument(
        "--executor",
        choices=["ray", "local"],
        default="ray",
        help="default executor of runs: a Ray runtime (ray) or child processes (local)",
    )
    parser.add_argument(
        "--ray-address",
        default=os.environ.get("RAY_ADDRESS") or None,
        metavar="ADDR",
        help="Ray cluster to join (default: $RAY_ADDRESS, else a local runtime started on the "
        "first run)",
    )
    parser.add_argument(
        "--artifacts",
        metavar="URL",
        help="artifact store: a folder or fsspec URL such as s3://bucket/forge "
        "(default: DATA_DIR/artifacts)",
    )


def server_authorizer(data_dir: Path) -> Authorizer | None:
    """The Authorizer for `forge serve`: tokens and roles from the data dir's auth tables."""
    from forge_server.auth import AuthStore, TokenAuthorizer

    return TokenAuthorizer(AuthStore.open(data_dir))


def server_setups(data_dir: Path, args: argparse.Namespace | None = None) -> list[AppSetup]:
    """``setup(app)`` hooks of the server modules (history, coordinator, …) to install."""
    from forge_server.auth.routes import setup_auth_routes
    from forge_server.coordinator import CoordinatorConfig, ExecutorKind, coordinator_setup
    from forge_server.history import history_setup
    from forge_server.projects import projects_setup

    execution = CoordinatorConfig(
        artifacts=str(getattr(args, "artifacts", None) or data_dir / "artifacts"),
        executor=ExecutorKind(getattr(args, "executor", "ray")),
        ray_address=getattr(args, "ray_address", None),
    )
    return [setup_auth_routes, history_setup(), projects_setup, coordinator_setup(execution)]


def _serve(args: argparse.Namespace) -> int:
    import asyncio
    import logging

    from forge_server.relay.config import RelayConfig
    from forge_server.relay.server import RelayServer, run_relay
    from forge_tui.cli.errors import CliError

    logging.basicConfig(
        level=getattr(logging, args.log_level),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    data_dir: Path = args.data_dir.expanduser().resolve()
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CliError(f"cannot create data directory {data_dir}: {exc}") from exc
    try:
        config = RelayConfig.from_settings(data_dir, args.relay_setting)
    except ValueError as exc:
        raise CliError(str(exc)) from exc

    authorizer = None if args.no_auth else server_authorizer(data_dir)

    def ready(server: RelayServer) -> None:
        _announce_auth(authorizer, data_dir, server.url)
        print(f"Forge server listening on {server.url} (data: {data_dir})", flush=True)

    try:
        asyncio.run(
            run_relay(
                config,
                host=args.host,
                port=args.port,
                authorizer=authorizer,
                setups=server_setups(data_dir, args),
                on_ready=ready,
            )
        )
    except OSError as exc:
        raise CliError(
            f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}; "
            "choose another --port or stop the process using it"
        ) from exc
    return 0


def _announce_auth(authorizer: Authorizer | None, data_dir: Path, url: str) -> None:
    """On first start, create the administrator and say where its token is (never print it)."""
    from forge_server.auth import TokenAuthorizer, ensure_initial_owner

    if not isinstance(authorizer, TokenAuthorizer):
        print("WARNING: --no-auth: anyone who can reach this port owns every project", flush=True)
        return
    path = ensure_initial_owner(authorizer.store, data_dir, url)
    if path is not None:
        print(
            f"Created administrator 'owner'; its token is in {path} (mode 0600). "
            "Log in with `forge login URL TOKEN`; add people with `forge user add`.",
            flush=True,
        )
