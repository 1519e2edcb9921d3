"""First start of ``forge serve``: create an administrator and hand its token over privately."""

from __future__ import annotations

from pathlib import Path

from forge_server.auth._store import AuthStore
from forge_server.credentials import Credentials, store

OWNER_CREDENTIALS_FILE = "owner-credentials.json"
INITIAL_OWNER = "owner"


def ensure_initial_owner(
    auth: AuthStore, data_dir: Path | str, server_url: str, *, name: str = INITIAL_OWNER
) -> Path | None:
    """When the store has no users yet, create administrator ``name`` (owner of every project)
    and write its token to ``<data-dir>/owner-credentials.json`` (mode 0600, the same format
    as the client credentials written by ``forge login``). Returns that path, or None when users
    already existed. The token itself is never printed or logged."""
    if auth.has_users():
        return None
    auth.add_user(name, admin=True)
    token, _ = auth.create_token(name, label="created on first start")
    path = Path(data_dir) / OWNER_CREDENTIALS_FILE
    store(Credentials(server=server_url, token=token), path)
    return path
