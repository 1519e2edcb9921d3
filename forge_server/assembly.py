"""The Forge server assembled: the relay with accounts, history, project creation and the
coordinator; :func:`serve` runs it (``forge serve`` parses its arguments and calls it)."""

from __future__ import annotations

import asyncio
import os
import stat
from collections.abc import Callable, Sequence
from pathlib import Path

from forge_server.auth import (
    AuthStore,
    ProjectCreators,
    TokenAuthorizer,
    default_owner_credentials_path,
    ensure_initial_owner,
    move_old_owner_credentials,
)
from forge_server.auth.routes import setup_auth_routes
from forge_server.coordinator import CoordinatorConfig, ExecutorKind, coordinator_setup
from forge_server.credentials import credentials_path as default_credentials_file
from forge_server.history import history_setup
from forge_server.principal import Authorizer
from forge_server.projects import projects_setup
from forge_server.relay.app import AppSetup
from forge_server.relay.config import RelayConfig
from forge_server.relay.server import RelayServer, run_relay

__all__ = [
    "ServeError",
    "private_data_dir",
    "serve",
    "server_authorizer",
    "server_setups",
]

Announce = Callable[[str], None]
"""Where the server's messages to the person who started it go (``print``)."""


class ServeError(Exception):
    """The server cannot start; the message says why and what to do."""


def server_authorizer(
    data_dir: Path, project_creators: str = ProjectCreators.ADMINS
) -> TokenAuthorizer:
    """Tokens and roles from the data dir's auth tables."""
    return TokenAuthorizer(
        AuthStore.open(data_dir), project_creators=ProjectCreators(project_creators)
    )


def server_setups(
    data_dir: Path,
    *,
    executor: str = "ray",
    ray_address: str | None = None,
    artifacts: str | None = None,
) -> list[AppSetup]:
    """``setup(app)`` hooks of the server modules, in the order they must be installed (the
    coordinator tags every run in the history)."""
    execution = CoordinatorConfig(
        artifacts=str(artifacts or data_dir / "artifacts"),
        executor=ExecutorKind(executor),
        ray_address=ray_address,
    )
    return [setup_auth_routes, history_setup(), projects_setup, coordinator_setup(execution)]


def serve(
    data_dir: Path,
    *,
    host: str = "127.0.0.1",
    port: int = 8700,
    relay_settings: Sequence[str] = (),
    auth: bool = True,
    project_creators: str = ProjectCreators.ADMINS,
    owner_credentials: Path | None = None,
    executor: str = "ray",
    ray_address: str | None = None,
    artifacts: str | None = None,
    announce: Announce = print,
) -> None:
    """Run the server until SIGINT/SIGTERM (its own event loop), everything flushed at the end.

    ``relay_settings`` are ``NAME=VALUE`` overrides of :class:`RelayConfig`; without ``auth``
    everyone owns every project. ``project_creators`` says who may create projects;
    ``owner_credentials`` where the first start writes the administrator's token (default: the
    client credentials of the account running the server, never the data directory). Raises
    :class:`ServeError` when it cannot start.
    """
    data_dir = data_dir.expanduser().resolve()
    try:
        private_data_dir(data_dir, announce)
    except OSError as exc:
        raise ServeError(f"cannot create data directory {data_dir}: {exc}") from exc
    try:
        config = RelayConfig.from_settings(data_dir, list(relay_settings))
    except ValueError as exc:
        raise ServeError(str(exc)) from exc
    authorizer = server_authorizer(data_dir, project_creators) if auth else None
    credentials = (owner_credentials or default_owner_credentials_path()).expanduser()
    if authorizer is not None:
        if data_dir in credentials.resolve().parents:
            raise ServeError(
                f"--owner-credentials {credentials} is inside the data directory, where jobs "
                "run; choose a path outside it (the default is your client credentials file)"
            )
        move_old_owner_credentials(data_dir, credentials, announce)

    def ready(server: RelayServer) -> None:
        _announce_auth(authorizer, credentials, server.url, announce)
        announce(f"Forge server listening on {server.url} (data: {data_dir})")

    setups = server_setups(
        data_dir, executor=executor, ray_address=ray_address, artifacts=artifacts
    )
    try:
        asyncio.run(
            run_relay(
                config, host=host, port=port, authorizer=authorizer, setups=setups, on_ready=ready
            )
        )
    except OSError as exc:
        raise ServeError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}; "
            "choose another --port or stop the process using it"
        ) from exc
    finally:
        if authorizer is not None:
            authorizer.store.close()


def private_data_dir(data_dir: Path, announce: Announce = print) -> None:
    """Create ``data_dir`` readable by the server's user only (0700), tightening an existing
    one, and make every file the server creates from now on private (umask 077: the database,
    its WAL, artifacts written there, the owner's credentials). Token hashes and every
    project's documents live there; other accounts on a shared box must not read them."""
    os.umask(0o077)
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    mode = stat.S_IMODE(data_dir.stat().st_mode)
    if mode & 0o077:
        data_dir.chmod(mode & 0o700)
        announce(f"Made data directory {data_dir} private to its owner "
                 f"(mode {mode:04o} -> {mode & 0o700:04o}): it holds token hashes and documents")


def _announce_auth(
    authorizer: Authorizer | None, credentials: Path, url: str, announce: Announce
) -> None:
    """On first start, create the administrator and say where its token is (never print it)."""
    if not isinstance(authorizer, TokenAuthorizer):
        announce("WARNING: --no-auth: anyone who can reach this port owns every project")
        return
    path = ensure_initial_owner(authorizer.store, credentials, url)
    if path is not None:
        announce(
            f"Created administrator 'owner'; its token is in {path} (mode 0600, outside the "
            "data directory; the server keeps no copy). "
            + ("This account's `forge` commands now act as 'owner'. "
               if path == default_credentials_file() else
               f"Log in elsewhere with `forge login {url} - < FILE-WITH-TOKEN`. ")
            + "Add people with `forge user add`; create projects with `forge project create`."
        )
