"""Client credentials: which server to talk to and with which token.

Resolution order for every client command: explicit flag, then the ``FORGE_SERVER`` /
``FORGE_TOKEN`` environment variables, then the stored credentials file (mode 0600).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_SERVER = "http://127.0.0.1:8700"


def config_dir() -> Path:
    """Folder for client state; ``FORGE_CONFIG_DIR`` overrides it (tests use this)."""
    override = os.environ.get("FORGE_CONFIG_DIR")
    if override:
        return Path(override)
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "forge"


def credentials_path() -> Path:
    return config_dir() / "credentials.json"


@dataclass(frozen=True)
class Credentials:
    server: str
    token: str | None

    def __repr__(self) -> str:  # never show the token in logs or tracebacks
        return f"Credentials(server={self.server!r}, token={'***' if self.token else None})"


def write_private_json(path: Path, data: object) -> None:
    """Write JSON readable only by its owner (0600), created that way so it is never exposed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def load_stored(path: Path | None = None) -> Credentials | None:
    path = path or credentials_path()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise ValueError(f"cannot read credentials file {path}: {exc}; fix or delete it") from exc
    if not isinstance(data, dict) or not isinstance(data.get("server"), str):
        raise ValueError(f"credentials file {path} has no 'server'; run `forge login URL TOKEN`")
    token = data.get("token")
    return Credentials(server=data["server"], token=token if isinstance(token, str) else None)


def store(creds: Credentials, path: Path | None = None) -> Path:
    path = path or credentials_path()
    write_private_json(path, {"server": creds.server, "token": creds.token})
    return path


def resolve(server: str | None = None, token: str | None = None) -> Credentials:
    """Flag, then environment, then stored credentials, then the loopback default."""
    stored = load_stored()
    resolved_server = (
        server
        or os.environ.get("FORGE_SERVER")
        or (stored.server if stored else None)
        or DEFAULT_SERVER
    )
    resolved_token = token or os.environ.get("FORGE_TOKEN") or (stored.token if stored else None)
    if not resolved_server.startswith(("http://", "https://")):
        raise ValueError(f"server URL {resolved_server!r} must start with http:// or https://, "
                         "e.g. http://127.0.0.1:8700")
    return Credentials(server=resolved_server.rstrip("/"), token=resolved_token)
