"""Who is asking, and with which role on the project: the seam between the relay and auth.

The relay calls an :class:`Authorizer` before every WebSocket upgrade and every HTTP API call;
the token store (``forge_server.auth``) provides the real one, :class:`AllowAll` serves
single-user embedded use and tests that are not about auth.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol


class Role(StrEnum):
    OWNER = "owner"
    WRITER = "writer"
    READER = "reader"

    @property
    def can_write(self) -> bool:
        return self is not Role.READER


@dataclass(frozen=True)
class Principal:
    user: str
    role: Role | None  # None: authenticated, but no role on this project


class AuthError(Exception):
    """Refusal to report to the client; ``status`` is the HTTP status (401, 403 or 404)."""

    status = 401

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason

    @staticmethod
    def with_status(status: int, reason: str) -> AuthError:
        """The refusal of that HTTP status (401, 403 or 404)."""
        kind = {401: Unauthenticated, 403: Forbidden, 404: UnknownProject}.get(status, Forbidden)
        return kind(reason)


class Unauthenticated(AuthError):
    status = 401


class Forbidden(AuthError):
    status = 403


class UnknownProject(AuthError):
    """No such project. Asking never creates one: only an explicit create does."""

    status = 404


def unknown_project_reason(project: str, similar: str | None = None) -> str:
    if similar is not None:
        return (f"no project {project!r}; did you mean {similar!r}? (names that differ only "
                "in case are one project)")
    return (f"no project {project!r}; create it with `forge project create {project}` (or "
            "ask an administrator to), or list yours with `forge project list`")


class Authorizer(Protocol):
    async def authenticate(self, token: str | None) -> str:
        """Return the user name for a token, or raise :class:`Unauthenticated`."""
        ...

    async def role(self, user: str, project: str) -> Role | None:
        """The user's role on a project, or None; may raise :class:`UnknownProject`."""
        ...


class AllowAll:
    """Everyone is the owner of everything (embedded single-user mode, tests)."""

    def __init__(self, user: str = "local") -> None:
        self.user = user

    async def authenticate(self, token: str | None) -> str:
        return self.user

    async def role(self, user: str, project: str) -> Role | None:
        return Role.OWNER


async def authorize(authorizer: Authorizer, token: str | None, project: str) -> Principal:
    """Authenticate, then require a role on the project (raises 401 / 403 / 404 errors)."""
    user = await authorizer.authenticate(token)
    role = await authorizer.role(user, project)
    if role is None:
        raise Forbidden(f"user {user!r} has no role on project {project!r}; an owner of it "
                        f"can grant one (`forge user grant {user} {project} reader`, or "
                        "writer, on the server)")
    return Principal(user=user, role=role)
