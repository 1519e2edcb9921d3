"""What the auth store answers with: token checks, role grants, users and tokens as listed."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum

from forge_server.principal import Role


class TokenStatus(StrEnum):
    OK = "ok"
    MALFORMED = "malformed"
    UNKNOWN = "unknown"
    EXPIRED = "expired"
    REVOKED = "revoked"


@dataclass(frozen=True)
class TokenCheck:
    status: TokenStatus
    user: str | None = None


@dataclass(frozen=True)
class RoleGrant:
    user: str
    project: str
    role: Role


@dataclass(frozen=True)
class UserInfo:
    name: str
    admin: bool
    created: float
    roles: tuple[RoleGrant, ...] = field(default=())
    active_tokens: int = 0
    creator: bool = False  # may create projects under `--project-creators admins`


@dataclass(frozen=True)
class TokenInfo:
    token_id: str
    user: str
    label: str
    created: float
    expires: float | None
    revoked: float | None

    def state(self, now: float) -> str:
        if self.revoked is not None:
            return "revoked"
        if self.expires is not None and self.expires <= now:
            return "expired"
        return "active"


def format_timestamp(ts: float | None) -> str:
    """A stored time as shown to people (UTC, ``2026-01-31T12:00:00Z``); "-" for none."""
    if ts is None:
        return "-"
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
