"""Users, access tokens and per-project roles, stored in the server's SQLite file.

``AuthStore`` keeps the ``auth_*`` tables; ``TokenAuthorizer`` is the relay's real
:class:`~forge_server.principal.Authorizer`; ``ensure_initial_owner`` runs on the first start of
``forge serve``; ``forge_server.auth.routes.setup_auth_routes`` adds the membership HTTP API
(a separate import, so the CLI's account commands do not load the relay).
"""

from forge_server.auth._bootstrap import OWNER_CREDENTIALS_FILE, ensure_initial_owner
from forge_server.auth._errors import (
    AuthStoreError,
    InvalidName,
    ProjectExists,
    UnknownToken,
    UnknownUser,
    UserExists,
)
from forge_server.auth._names import validate_project_name, validate_user_name
from forge_server.auth._store import (
    AUTH_DB_FILE,
    AuthStore,
    RoleGrant,
    TokenInfo,
    TokenStatus,
    UserInfo,
    format_timestamp,
)
from forge_server.auth._tokens import TOKEN_PREFIX, parse_duration
from forge_server.auth.authorizer import TokenAuthorizer

__all__ = [
    "AUTH_DB_FILE",
    "OWNER_CREDENTIALS_FILE",
    "TOKEN_PREFIX",
    "AuthStore",
    "AuthStoreError",
    "InvalidName",
    "ProjectExists",
    "RoleGrant",
    "TokenAuthorizer",
    "TokenInfo",
    "TokenStatus",
    "UnknownToken",
    "UnknownUser",
    "UserExists",
    "UserInfo",
    "ensure_initial_owner",
    "format_timestamp",
    "parse_duration",
    "validate_project_name",
    "validate_user_name",
]
