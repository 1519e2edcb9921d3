"""First start of ``forge serve``: create an administrator and hand its token over privately.

The token is written outside the data directory. Jobs run beside the data directory's
files (the artifact store is often inside it), so the data directory is the last place an
administrator's token should stay; the client configuration folder of the account that started
the server is where a token belongs anyway (``forge login`` writes there).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from forge_server.auth._store import AuthStore
from forge_server.credentials import (
    Credentials,
    config_dir,
    credentials_path,
    store,
    write_private_json,
)

OWNER_CREDENTIALS_FILE = "owner-credentials.json"
INITIAL_OWNER = "owner"


def default_owner_credentials_path() -> Path:
    """The client credentials file when there is none yet (so whoever started the server can
    use the CLI as the administrator at once), else a free ``owner-credentials[-N].json``
    beside it. Never a file that already exists."""
    if not credentials_path().exists():
        return credentials_path()
    candidate = config_dir() / OWNER_CREDENTIALS_FILE
    n = 1
    while candidate.exists():
        n += 1
        candidate = config_dir() / f"owner-credentials-{n}.json"
    return candidate


def ensure_initial_owner(
    auth: AuthStore, credentials: Path, server_url: str, *, name: str = INITIAL_OWNER
) -> Path | None:
    """When the store has no users yet, create administrator ``name`` (owner of every project)
    and write its token to ``credentials`` (mode 0600, the format ``forge login`` writes).
    Returns that path, or None when users already existed. The token is never printed or
    logged."""
    if auth.has_users():
        return None
    auth.add_user(name, admin=True)
    token, _ = auth.create_token(name, label="created on first start")
    store(Credentials(server=server_url, token=token), credentials)
    return credentials


def move_old_owner_credentials(
    data_dir: Path, destination: Path, announce: Callable[[str], None]
) -> None:
    """Servers before this one left the owner's token in ``<data-dir>/owner-credentials.json``:
    move it out (copied privately first, so nothing is lost) and say where it went."""
    old = data_dir / OWNER_CREDENTIALS_FILE
    if not old.is_file() or old.is_symlink():
        return
    if destination.exists():
        announce(f"WARNING: {old} holds an administrator token inside the data directory, "
                 f"where jobs run, and {destination} exists already: move the file out of the "
                 "data directory yourself, or delete it if you no longer need it")
        return
    write_private_json(destination, json.loads(old.read_text(encoding="utf-8")))
    old.unlink()
    announce(f"Moved the administrator token from {old} to {destination}: the data "
             "directory keeps no credentials")
