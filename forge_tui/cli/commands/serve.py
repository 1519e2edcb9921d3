"""``forge serve``: parse the options and run the server (assembled in
:mod:`forge_server.assembly`)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


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
    parser.add_argument(
        "--project-creators",
        choices=["admins", "everyone"],
        default="admins",
        help="who may create projects: administrators and users added with --creator "
        "(admins, the default), or every user with a token (everyone)",
    )
    parser.add_argument(
        "--owner-credentials",
        type=Path,
        metavar="FILE",
        help="where the first start writes the administrator's token (default: this "
        "account's client credentials, ~/.config/forge/credentials.json, when it has none "
        "yet); never inside the data directory",
    )
    add_execution_options(parser)
    parser.set_defaults(handler=_serve)


def add_execution_options(parser: argparse.ArgumentParser) -> None:
    """--executor, --ray-address, --artifacts, --unconfined-jobs: where the coordinator runs
    jobs and keeps data, and whether jobs may run unconfined."""
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
    parser.add_argument(
        "--unconfined-jobs",
        action="store_true",
        help="start even where jobs cannot be confined (no bubblewrap): they then run as the "
        "server's user and can read its data directory; jobs still run in the sandbox where "
        "there is one",
    )
    parser.add_argument(
        "--artifacts-option",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="an fsspec storage option of the artifact store, for the server and every "
        "worker (repeatable), e.g. endpoint_url=http://minio:9000",
    )
    parser.add_argument(
        "--forward-env",
        action="append",
        default=[],
        metavar="PATTERN",
        help="hand the server's environment variables matching PATTERN to Ray workers "
        "(repeatable), e.g. 'AWS_*' for the store's credentials",
    )


def _serve(args: argparse.Namespace) -> int:
    import functools
    import logging

    from forge_server.assembly import ServeError, serve
    from forge_tui.cli.errors import CliError

    logging.basicConfig(
        level=getattr(logging, args.log_level),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        serve(
            args.data_dir,
            host=args.host,
            port=args.port,
            relay_settings=args.relay_setting,
            auth=not args.no_auth,
            project_creators=args.project_creators,
            owner_credentials=args.owner_credentials,
            executor=args.executor,
            ray_address=args.ray_address,
            artifacts=args.artifacts,
            unconfined_jobs=args.unconfined_jobs,
            artifacts_options=args.artifacts_option,
            forward_env=args.forward_env,
            announce=functools.partial(print, flush=True),
        )
    except ServeError as exc:
        raise CliError(str(exc)) from exc
    return 0
