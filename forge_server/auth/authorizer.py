"""``TokenAuthorizer``: the relay's Authorizer backed by the auth store.

Every check reads the store afresh (on the store's thread, off the event loop), so a token
revoked or a role changed with the CLI while the server runs takes effect at the next connection
or request. Tokens are never logged; a refusal is
logged with the token's public id at most.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from enum import StrEnum

from forge_server.auth._records import TokenStatus
from forge_server.auth._store import AuthStore
from forge_server.auth._tokens import parse_token
from forge_server.principal import (
    Forbidden,
    Role,
    Unauthenticated,
    UnknownProject,
    unknown_project_reason,
)

_REASONS = {
    TokenStatus.MALFORMED: "missing or malformed token: pass `Authorization: Bearer <token>` "
    "or ?token=<token> (create one with `forge token create NAME`)",
    TokenStatus.UNKNOWN: "unknown token: create one with `forge token create NAME`",
    TokenStatus.EXPIRED: "token expired: create a new one with `forge token create NAME`",
    TokenStatus.REVOKED: "token revoked: create a new one with `forge token create NAME`",
}


class ProjectCreators(StrEnum):
    """Who may create projects on a server with accounts (``forge serve --project-creators``)."""

    ADMINS = "admins"  # administrators and users made creators (`forge user add --creator`)
    EVERYONE = "everyone"  # any user with a token


class TokenAuthorizer:
    """Bearer tokens checked against ``auth_tokens``; roles from ``auth_roles``.

    Checking never writes: a project exists once it is recorded in ``auth_projects`` (created
    with ``POST /api/projects`` or ``POST /api/auth/projects``) or, when ``project_has_rooms``
    is set (the relay sets it, see ``setup_auth_routes``), once it has stored rooms. Asking for
    a project that does not exist raises :class:`UnknownProject` (404) for everyone,
    administrators included, so opening or reading a name never claims it. Users without a role
    on an existing project get None (403); roleless old projects stay with the admins.
    """

    def __init__(
        self,
        store: AuthStore,
        *,
        project_creators: ProjectCreators = ProjectCreators.ADMINS,
        logger: logging.Logger | None = None,
    ) -> None:
        self.store = store
        self.project_creators = ProjectCreators(project_creators)
        self.log = logger or logging.getLogger(__name__)
        self.refused = 0
        self.project_has_rooms: Callable[[str], bool] | None = None

    async def authenticate(self, token: str | None) -> str:
        check = await self.store.run(self.store.check_token, token)
        if check.status is TokenStatus.OK and check.user is not None:
            return check.user
        self.refused += 1
        parsed = parse_token(token) if token else None
        self.log.info(
            "refused token (%s%s)",
            check.status.value,
            f", id {parsed.token_id}" if parsed else "",
        )
        raise Unauthenticated(_REASONS[check.status])

    async def role(self, user: str, project: str) -> Role | None:
        role, recorded = await self.store.run(self._role_and_record, user, project)
        if recorded or (self.project_has_rooms is not None and self.project_has_rooms(project)):
            return role
        similar = await self.store.run(self.store.project_named_like, project)
        raise UnknownProject(unknown_project_reason(project, similar))

    async def may_create_projects(self, user: str) -> bool:
        if self.project_creators is ProjectCreators.EVERYONE:
            return True
        return await self.store.run(self.store.may_create_projects, user)

    def _role_and_record(self, user: str, project: str) -> tuple[Role | None, bool]:
        """The user's role, and whether the project is recorded in the auth tables."""
        return self.store.role(user, project), self.store.project_exists(project)


async def require_project_creator(authorizer: object, user: str, project: str) -> None:
    """Raise :class:`Forbidden` unless ``user`` may create projects on this server. Servers
    without accounts (any authorizer but :class:`TokenAuthorizer`) let their one user create."""
    if isinstance(authorizer, TokenAuthorizer) and not await authorizer.may_create_projects(user):
        raise Forbidden(
            f"user {user!r} may not create projects on this server (only administrators and "
            f"project creators may); ask an administrator to create {project!r} and grant you "
            f"a role (`forge project create {project}`, then `forge user grant {user} "
            f"{project} writer`), or to make you a creator (`forge user creator {user}`)"
        )
