"""The Forge server assembled: the relay with accounts, history, project creation and the
coordinator; :func:`serve` runs it (``forge serve`` parses its arguments and calls it)."""

from __future__ import annotations

import asyncio
import os
import stat
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

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
from forge_server.sweeps import sweeps_setup

if TYPE_CHECKING:
    from forge_ops.execution import Confinement, SandboxPolicy

__all__ = [
    "ServeError",
    "job_sandbox",
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
    sandbox: SandboxPolicy | None = None,
    artifacts_options: Sequence[str] = (),
    forward_env: Sequence[str] = (),
) -> list[AppSetup]:
    """``setup(app)`` hooks of the server modules, in the order they must be installed (the
    coordinator tags every run in the history). ``sandbox``: how jobs are confined (see
    :func:`job_sandbox`); ``artifacts_options`` are ``NAME=VALUE`` storage options
    (ValueError names a malformed one)."""
    from forge_ops.execution import parse_option

    execution = CoordinatorConfig(
        artifacts=artifacts_location(data_dir, artifacts),
        executor=ExecutorKind(executor),
        ray_address=ray_address,
        sandbox=sandbox,
        store_options=dict(parse_option(option) for option in artifacts_options),
        forward_env=tuple(forward_env),
    )
    return [setup_auth_routes, history_setup(), projects_setup, coordinator_setup(execution),
            sweeps_setup()]


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
    unconfined_jobs: bool = False,
    artifacts_options: Sequence[str] = (),
    forward_env: Sequence[str] = (),
    announce: Announce = print,
) -> None:
    """Run the server until SIGINT/SIGTERM (its own event loop), everything flushed at the end.

    ``relay_settings`` are ``NAME=VALUE`` overrides of :class:`RelayConfig`; without ``auth``
    everyone owns every project. ``project_creators`` says who may create projects;
    ``owner_credentials`` where the first start writes the administrator's token (default: the
    client credentials of the account running the server, never the data directory). Jobs run
    in a sandbox where this machine has one; with ``auth``, a server that has none refuses to
    start unless ``unconfined_jobs`` allows it. Raises :class:`ServeError` when it cannot start.
    """
    data_dir = data_dir.expanduser().resolve()
    credentials = (owner_credentials or default_owner_credentials_path()).expanduser()
    sandbox, method, reason = job_sandbox(data_dir, required=auth and not unconfined_jobs,
                                          secrets=[credentials] if auth else [])
    try:
        private_data_dir(data_dir, announce, _jobs_group(method))
        _announce_sandbox(method, reason, artifacts_location(data_dir, artifacts), data_dir,
                          announce)
    except OSError as exc:
        raise ServeError(f"cannot prepare data directory {data_dir}: {exc}") from exc
    try:
        config = RelayConfig.from_settings(data_dir, list(relay_settings))
    except ValueError as exc:
        raise ServeError(str(exc)) from exc
    authorizer = server_authorizer(data_dir, project_creators) if auth else None
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

    try:
        setups = server_setups(
            data_dir, executor=executor, ray_address=ray_address, artifacts=artifacts,
            sandbox=sandbox, artifacts_options=artifacts_options, forward_env=forward_env,
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


def private_data_dir(data_dir: Path, announce: Announce = print,
                     jobs_group: int | None = None) -> None:
    """Create ``data_dir`` readable by the server's user only (0700), tightening an existing
    one, and make every file the server creates from now on private (umask 077: the database,
    its WAL, artifacts written there, the owner's credentials). Token hashes and every
    project's documents live there; other accounts on a shared box must not read them.
    ``jobs_group``: jobs run as a user of that group, who may pass through (0710) to the
    artifact store (see ``share_store_with_jobs``)."""
    os.umask(0o077)
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    allowed = 0o700 if jobs_group is None else 0o710
    mode = stat.S_IMODE(data_dir.stat().st_mode)
    if mode & ~allowed & 0o777:
        data_dir.chmod(mode & allowed)
        announce(f"Made data directory {data_dir} private to its owner "
                 f"(mode {mode:04o} -> {mode & allowed:04o}): it holds token hashes and documents")


def artifacts_location(data_dir: Path, artifacts: str | None) -> str:
    return str(artifacts or data_dir / "artifacts")


def job_sandbox(
    data_dir: Path, *, required: bool, secrets: Sequence[Path] = ()
) -> tuple[SandboxPolicy, Confinement, str]:
    """How jobs are confined: they never see ``data_dir`` (but the artifact store, wherever it
    is) nor the files in ``secrets``, and keep their HOME in ``data_dir/job-home``. Returns the
    policy, this machine's way of confining jobs, and why not a better one. Raises ServeError
    where confinement is ``required`` and this machine has none."""
    from forge_ops.execution import Confinement, SandboxPolicy, confinement, unconfined_refusal

    hidden = (str(data_dir), *(str(path) for path in secrets))
    policy = SandboxPolicy(hidden=hidden, home=str(data_dir / "job-home"), required=required)
    method, reason = confinement(required)
    if method is Confinement.NONE and required:
        raise ServeError(unconfined_refusal(reason))
    return policy, method, reason


def _jobs_group(method: Confinement) -> int | None:
    from forge_ops.execution import Confinement, jobs_user

    user = jobs_user() if method is Confinement.USER else None
    return user.pw_gid if user is not None else None


def _announce_sandbox(method: Confinement, reason: str, store: str, data_dir: Path,
                      announce: Announce) -> None:
    from forge_ops.execution import Confinement, share_store_with_jobs

    if method is Confinement.BUBBLEWRAP:
        announce("Jobs run in a bubblewrap sandbox: they cannot see the data directory")
    elif method is Confinement.USER:
        shared = share_store_with_jobs(store, data_dir)
        announce(f"Jobs run as an unprivileged user: {shared or reason}")
    else:
        announce(f"WARNING: jobs run unconfined, as this server's user ({reason}); install "
                 "bubblewrap to confine them")


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
