"""``TokenAuthorizer``: the relay's Authorizer backed by the auth store.

Every check reads the store afresh (on the store's thread, off the event loop), so a token
revoked or a role changed with the CLI while the server runs takes effect at the next connection
or request. Tokens are never logged; a refusal is
logged with the token's public id at most.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from forge_server.auth._errors import InvalidName, ProjectExists, UnknownUser
from forge_server.auth._names import validate_project_name
from forge_server.auth._store import AuthStore, TokenStatus
from forge_server.auth._tokens import parse_token
from forge_server.principal import Role, Unauthenticated

_REASONS = {
    TokenStatus.MALFORMED: "missing or malformed token: pass `Authorization: Bearer <token>` "
    "or ?token=<token> (create one with `forge token create NAME`)",
    TokenStatus.UNKNOWN: "unknown token: create one with `forge token create NAME`",
    TokenStatus.EXPIRED: "token expired: create a new one with `forge token create NAME`",
    TokenStatus.REVOKED: "token revoked: create a new one with `forge token create NAME`",
}


class TokenAuthorizer:
    """Bearer tokens checked against ``auth_tokens``; roles from ``auth_roles``.

    With ``claim_new_projects`` (the default), an authenticated user who opens a project that
    does not exist yet creates it and becomes its owner: opening a new room is how clients create
    projects. A project exists once someone holds a role on it or, when ``project_has_rooms`` is
    set (the relay sets it, see ``setup_auth_routes``), once it has stored rooms; users without a
    role on an existing project are refused, and roleless old projects stay with the admins.
    """

    def __init__(
        self,
        store: AuthStore,
        *,
        claim_new_projects: bool = True,
        logger: logging.Logger | None = None,
    ) -> None:
        self.store = store
        self.claim_new_projects = claim_new_projects
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
        role, exists = await self.store.run(self._role_and_existence, user, project)
        if role is not None or not self.claim_new_projects:
            return role
        if exists or (self.project_has_rooms is not None and self.project_has_rooms(project)):
            return None
        try:
            validate_project_name(project)
            await self.store.run(self.store.create_project, project, user)
        except ProjectExists:  # created concurrently by someone else
            return await self.store.run(self.store.role, user, project)
        except (InvalidName, UnknownUser):
            return None
        self.log.info("project %r created by %r (owner)", project, user)
        return Role.OWNER

    def _role_and_existence(self, user: str, project: str) -> tuple[Role | None, bool]:
        """The user's role, and (when they have none) whether the project exists."""
        role = self.store.role(user, project)
        return role, role is None and self.store.project_exists(project)
