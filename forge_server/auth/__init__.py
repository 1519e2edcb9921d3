"""Users, access tokens and per-project roles, stored in the server's SQLite file.

``AuthStore`` keeps the ``auth_*`` tables; ``TokenAuthorizer`` is the relay's real
:class:`~forge_server.principal.Authorizer`; ``ensure_initial_owner`` runs on the first start of
``forge serve``; ``forge_server.auth.routes.setup_auth_routes`` adds the membership HTTP API
(a separate import, so the CLI's account commands do not load the relay).
"""

from forge_server.auth._bootstrap import (
    OWNER_CREDENTIALS_FILE,
    default_owner_credentials_path,
    ensure_initial_owner,
    move_old_owner_credentials,
)
from forge_server.auth._errors import (
    AuthStoreError,
    InvalidName,
    ProjectExists,
    UnknownToken,
    UnknownUser,
    UserExists,
)
from forge_server.auth._names import validate_project_name, validate_user_name
from forge_server.auth._records import (
    RoleGrant,
    TokenInfo,
    TokenStatus,
    UserInfo,
    format_timestamp,
)
from forge_server.auth._store import AUTH_DB_FILE, AuthStore
from forge_server.auth._tokens import TOKEN_PREFIX, parse_duration
from forge_server.auth.authorizer import (
    ProjectCreators,
    TokenAuthorizer,
    require_project_creator,
)

__all__ = [
    "AUTH_DB_FILE",
    "OWNER_CREDENTIALS_FILE",
    "TOKEN_PREFIX",
    "AuthStore",
    "AuthStoreError",
    "InvalidName",
    "ProjectCreators",
    "ProjectExists",
    "RoleGrant",
    "TokenAuthorizer",
    "TokenInfo",
    "TokenStatus",
    "UnknownToken",
    "UnknownUser",
    "UserExists",
    "UserInfo",
    "default_owner_credentials_path",
    "ensure_initial_owner",
    "format_timestamp",
    "move_old_owner_credentials",
    "parse_duration",
    "require_project_creator",
    "validate_project_name",
    "validate_user_name",
]
