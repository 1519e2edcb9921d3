"""The Forge server assembled: the relay with accounts, history, project creation and the
coordinator; :func:`serve` runs it (``forge serve`` parses its arguments and calls it)."""

from __future__ import annotations

import asyncio
import os
import stat
from collections.abc import Callable, Sequence
from pathlib import Path

from forge_server.auth import AuthStore, TokenAuthorizer, ensure_initial_owner
from forge_server.auth.routes import setup_auth_routes
from forge_server.coordinator import CoordinatorConfig, ExecutorKind, coordinator_setup
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


def server_authorizer(data_dir: Path) -> TokenAuthorizer:
    """Tokens and roles from the data dir's auth tables."""
    return TokenAuthorizer(AuthStore.open(data_dir))


def server_setups(
    data_dir: Path,
    *,
    executor: str = "ray",
    ray_address: str | None = None,
    artifacts: str | None = None,
    artifacts_options: Sequence[str] = (),
    forward_env: Sequence[str] = (),
) -> list[AppSetup]:
    """``setup(app)`` hooks of the server modules, in the order they must be installed (the
    coordinator tags every run in the history). ``artifacts_options`` are ``NAME=VALUE``
    storage options (ValueError names a malformed one)."""
    from forge_ops.execution import parse_option

    execution = CoordinatorConfig(
        artifacts=str(artifacts or data_dir / "artifacts"),
        executor=ExecutorKind(executor),
        ray_address=ray_address,
        store_options=dict(parse_option(option) for option in artifacts_options),
        forward_env=tuple(forward_env),
    )
    return [setup_auth_routes, history_setup(), projects_setup, coordinator_setup(execution)]


def serve(
    data_dir: Path,
    *,
    host: str = "127.0.0.1",
    port: int = 8700,
    relay_settings: Sequence[str] = (),
    auth: bool = True,
    executor: str = "ray",
    ray_address: str | None = None,
    artifacts: str | None = None,
    artifacts_options: Sequence[str] = (),
    forward_env: Sequence[str] = (),
    announce: Announce = print,
) -> None:
    """Run the server until SIGINT/SIGTERM (its own event loop), everything flushed at the end.

    ``relay_settings`` are ``NAME=VALUE`` overrides of :class:`RelayConfig`; without ``auth``
    everyone owns every project. Raises :class:`ServeError` when it cannot start.
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
    authorizer = server_authorizer(data_dir) if auth else None

    def ready(server: RelayServer) -> None:
        _announce_auth(authorizer, data_dir, server.url, announce)
        announce(f"Forge server listening on {server.url} (data: {data_dir})")

    try:
        setups = server_setups(
            data_dir, executor=executor, ray_address=ray_address, artifacts=artifacts,
            artifacts_options=artifacts_options, forward_env=forward_env,
        )
    except ValueError as exc:
        raise ServeError(str(exc)) from exc
    _check_store(str(artifacts or data_dir / "artifacts"), artifacts_options, forward_env)
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


def _check_store(location: str, options: Sequence[str], forward_env: Sequence[str]) -> None:
    """Refuse to start, in one line, when the artifact store does not answer (write, read and
    delete a probe object): every run would fail."""
    from forge_ops.execution import StoreAccess, StoreUnreachable, parse_option, probe_store

    access = StoreAccess(location, dict(parse_option(o) for o in options), tuple(forward_env))
    if access.protocol is not None:
        access.apply()
    try:
        probe_store(location)
    except StoreUnreachable as exc:
        raise ServeError(f"{exc}; or give another --artifacts") from exc


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
    authorizer: Authorizer | None, data_dir: Path, url: str, announce: Announce
) -> None:
    """On first start, create the administrator and say where its token is (never print it)."""
    if not isinstance(authorizer, TokenAuthorizer):
        announce("WARNING: --no-auth: anyone who can reach this port owns every project")
        return
    path = ensure_initial_owner(authorizer.store, data_dir, url)
    if path is not None:
        announce(
            f"Created administrator 'owner'; its token is in {path} (mode 0600). "
            "Log in with `forge login URL TOKEN`; add people with `forge user add`."
        )
