"""The ``auth_*`` tables in the server's SQLite file, behind a small synchronous API.

The store opens its own connection (WAL, so the ``forge user``/``forge token`` commands can change
it while ``forge serve`` runs, and every check sees the latest state: a revoked token stops
working on its next use). All queries are indexed point lookups, cheap enough to run on the
event loop.
"""

from __future__ import annotations

import hmac
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from types import TracebackType
from typing import Any, ParamSpec, TypeVar

from forge_ops.sqlite_db import open_database
from forge_server.auth._errors import (
    AuthStoreError,
    ProjectExists,
    UnknownToken,
    UnknownUser,
    UserExists,
)
from forge_server.auth._names import validate_project_name, validate_user_name
from forge_server.auth._records import (
    RoleGrant,
    TokenCheck,
    TokenInfo,
    TokenStatus,
    UserInfo,
)
from forge_server.auth._tokens import hash_secret, new_token, parse_token
from forge_server.principal import Role
from forge_server.store_thread import StoreThread

AUTH_DB_FILE = "forge.db"
P = ParamSpec("P")
T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS auth_users (
    name    TEXT PRIMARY KEY,
    admin   INTEGER NOT NULL DEFAULT 0,
    created REAL NOT NULL,
    creator INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS auth_tokens (
    id      TEXT PRIMARY KEY,
    user    TEXT NOT NULL REFERENCES auth_users(name) ON DELETE CASCADE,
    hash    BLOB NOT NULL,
    label   TEXT NOT NULL DEFAULT '',
    created REAL NOT NULL,
    expires REAL,
    revoked REAL
);
CREATE INDEX IF NOT EXISTS auth_tokens_user ON auth_tokens(user);
CREATE TABLE IF NOT EXISTS auth_projects (
    name    TEXT PRIMARY KEY,
    creator TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS auth_roles (
    user    TEXT NOT NULL REFERENCES auth_users(name) ON DELETE CASCADE,
    project TEXT NOT NULL,
    role    TEXT NOT NULL CHECK (role IN ('owner', 'writer', 'reader')),
    granted REAL NOT NULL,
    PRIMARY KEY (user, project)
);
CREATE INDEX IF NOT EXISTS auth_roles_project ON auth_roles(project);
"""

# Compared against when a token id is unknown, so both paths do the same work.
_DUMMY_HASH = hash_secret("x" * 43)


class AuthStore:
    """Users, tokens and roles in ``<data-dir>/forge.db`` (tables prefixed ``auth_``).

    The methods block and may be called from any thread (the connection is used under a lock);
    code on the relay's event loop calls them through :meth:`run`, on the store's own thread.
    """

    def __init__(self, path: Path | str, *, clock: Callable[[], float] = time.time) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._clock = clock
        self._lock = threading.Lock()
        self._db = open_database(self.path, foreign_keys=True)
        with self._lock:
            self._db.executescript(_SCHEMA)  # idempotent; executescript commits by itself
            _add_missing_columns(self._db)
        self._thread = StoreThread("forge-auth")

    @classmethod
    def open(cls, data_dir: Path | str, *, clock: Callable[[], float] = time.time) -> AuthStore:
        return cls(Path(data_dir) / AUTH_DB_FILE, clock=clock)

    async def run(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """``fn(*args, **kwargs)`` (this store's work) on the store's thread, off the loop."""
        return await self._thread.run(fn, *args, **kwargs)

    def close(self) -> None:
        self._thread.close()
        with self._lock:
            self._db.close()

    def __enter__(self) -> AuthStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One IMMEDIATE transaction: other writers (CLI vs server) wait instead of failing."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _read(self, sql: str, params: tuple[object, ...] = ()) -> list[Any]:
        with self._lock:
            return self._db.execute(sql, params).fetchall()

    # ---- users -------------------------------------------------------------------------------

    def add_user(self, name: str, *, admin: bool = False, creator: bool = False) -> UserInfo:
        """A new user; ``creator``: may create projects where only administrators may."""
        validate_user_name(name)
        now = self._clock()
        with self._write() as db:
            try:
                db.execute(
                    "INSERT INTO auth_users (name, admin, created, creator) VALUES (?, ?, ?, ?)",
                    (name, int(admin), now, int(creator)),
                )
            except sqlite3.IntegrityError:
                raise UserExists(f"user {name!r} already exists; pick another name") from None
        return UserInfo(name=name, admin=admin, created=now, creator=creator)

    def set_creator(self, name: str, creator: bool) -> None:
        """Allow (or stop allowing) a user to create projects."""
        with self._write() as db:
            changed = db.execute(
                "UPDATE auth_users SET creator = ? WHERE name = ?", (int(creator), name)
            ).rowcount
            if not changed:
                raise UnknownUser(_unknown_user(name))

    def may_create_projects(self, name: str) -> bool:
        """Whether the user is an administrator or was made a project creator."""
        rows = self._read("SELECT admin, creator FROM auth_users WHERE name = ?", (name,))
        return bool(rows and (rows[0][0] or rows[0][1]))

    def remove_user(self, name: str) -> None:
        """Delete a user with all their tokens and roles."""
        with self._write() as db:
            if db.execute("DELETE FROM auth_users WHERE name = ?", (name,)).rowcount == 0:
                raise UnknownUser(_unknown_user(name))

    def has_users(self) -> bool:
        return bool(self._read("SELECT 1 FROM auth_users LIMIT 1"))

    def user_exists(self, name: str) -> bool:
        return bool(self._read("SELECT 1 FROM auth_users WHERE name = ?", (name,)))

    def is_admin(self, name: str) -> bool:
        rows = self._read("SELECT admin FROM auth_users WHERE name = ?", (name,))
        return bool(rows and rows[0][0])

    def list_users(self) -> list[UserInfo]:
        now = self._clock()
        users = self._read(
            "SELECT name, admin, created, creator FROM auth_users ORDER BY name"
        )
        grants: dict[str, list[RoleGrant]] = {}
        for user, project, role in self._read(
            "SELECT user, project, role FROM auth_roles ORDER BY project"
        ):
            grants.setdefault(user, []).append(RoleGrant(user, project, Role(role)))
        active: dict[str, int] = {
            user: int(count)
            for user, count in self._read(
                "SELECT user, COUNT(*) FROM auth_tokens WHERE revoked IS NULL "
                "AND (expires IS NULL OR expires > ?) GROUP BY user",
                (now,),
            )
        }
        return [
            UserInfo(
                name=name,
                admin=bool(admin),
                created=float(created),
                creator=bool(creator),
                roles=tuple(grants.get(name, ())),
                active_tokens=active.get(name, 0),
            )
            for name, admin, created, creator in users
        ]

    # ---- roles -------------------------------------------------------------------------------

    def grant(self, user: str, project: str, role: Role | str) -> RoleGrant:
        """Give a user a role on a project (replacing any role they had there)."""
        validate_project_name(project)
        role = _parse_role(role)
        with self._write() as db:
            _require_user(db, user)
            db.execute(
                "INSERT OR IGNORE INTO auth_projects (name, creator, created) VALUES (?, ?, ?)",
                (project, user, self._clock()),
            )
            db.execute(
                "INSERT INTO auth_roles (user, project, role, granted) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (user, project) DO UPDATE SET role = excluded.role, "
                "granted = excluded.granted",
                (user, project, role.value, self._clock()),
            )
        return RoleGrant(user, project, role)

    def revoke_role(self, user: str, project: str) -> bool:
        """Remove a user's role on a project; False when they had none."""
        with self._write() as db:
            _require_user(db, user)
            cur = db.execute(
                "DELETE FROM auth_roles WHERE user = ? AND project = ?", (user, project)
            )
            return cur.rowcount > 0

    def role(self, user: str, project: str) -> Role | None:
        """The user's role on the project; administrators own every project."""
        rows = self._read(
            "SELECT u.admin, r.role FROM auth_users u LEFT JOIN auth_roles r "
            "ON r.user = u.name AND r.project = ? WHERE u.name = ?",
            (project, user),
        )
        if not rows:
            return None
        admin, role = rows[0]
        if admin:
            return Role.OWNER
        return Role(role) if role is not None else None

    def members(self, project: str) -> list[RoleGrant]:
        return [
            RoleGrant(user, project, Role(role))
            for user, role in self._read(
                "SELECT user, role FROM auth_roles WHERE project = ? ORDER BY user", (project,)
            )
        ]

    def owners(self, project: str) -> list[str]:
        return [g.user for g in self.members(project) if g.role is Role.OWNER]

    # ---- projects ----------------------------------------------------------------------------

    def project_exists(self, project: str) -> bool:
        return bool(self._read("SELECT 1 FROM auth_projects WHERE name = ?", (project,)))

    def project_named_like(self, project: str) -> str | None:
        """A recorded project whose name differs from ``project`` only in case, if any."""
        rows = self._read(
            "SELECT name FROM auth_projects WHERE lower(name) = lower(?) AND name != ?",
            (project, project),
        )
        return rows[0][0] if rows else None

    def projects_of(self, user: str) -> list[RoleGrant]:
        """Projects a user can open: their grants, or every known project for an admin."""
        if self.is_admin(user):
            return [
                RoleGrant(user, name, Role.OWNER)
                for (name,) in self._read("SELECT name FROM auth_projects ORDER BY name")
            ]
        return [
            RoleGrant(user, project, Role(role))
            for project, role in self._read(
                "SELECT project, role FROM auth_roles WHERE user = ? ORDER BY project", (user,)
            )
        ]

    def create_project(self, project: str, creator: str) -> RoleGrant:
        """Record a new project; its creator becomes its owner."""
        validate_project_name(project)
        with self._write() as db:
            _require_user(db, creator)
            same = db.execute(
                "SELECT name FROM auth_projects WHERE lower(name) = lower(?) AND name != ?",
                (project, project),
            ).fetchone()
            if same is not None:
                raise ProjectExists(
                    f"project {same[0]!r} already exists (names that differ only in case are "
                    "one project); ask one of its owners for a role or choose another name"
                )
            try:
                db.execute(
                    "INSERT INTO auth_projects (name, creator, created) VALUES (?, ?, ?)",
                    (project, creator, self._clock()),
                )
            except sqlite3.IntegrityError:
                raise ProjectExists(
                    f"project {project!r} already exists; ask one of its owners for a role"
                ) from None
            db.execute(
                "INSERT OR REPLACE INTO auth_roles (user, project, role, granted) "
                "VALUES (?, ?, 'owner', ?)",
                (creator, project, self._clock()),
            )
        return RoleGrant(creator, project, Role.OWNER)

    # ---- tokens ------------------------------------------------------------------------------

    def create_token(
        self, user: str, *, expires_in: timedelta | None = None, label: str = ""
    ) -> tuple[str, TokenInfo]:
        """A new token for ``user``; the token string is returned here and never again."""
        if expires_in is not None and expires_in.total_seconds() <= 0:
            raise AuthStoreError("a token's lifetime must be positive, e.g. --expires 30d")
        token, token_id, digest = new_token()
        now = self._clock()
        expires = now + expires_in.total_seconds() if expires_in is not None else None
        with self._write() as db:
            _require_user(db, user)
            db.execute(
                "INSERT INTO auth_tokens (id, user, hash, label, created, expires) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (token_id, user, digest, label, now, expires),
            )
        return token, TokenInfo(token_id, user, label, now, expires, None)

    def list_tokens(self, user: str | None = None) -> list[TokenInfo]:
        sql = "SELECT id, user, label, created, expires, revoked FROM auth_tokens"
        params: tuple[object, ...] = ()
        if user is not None:
            sql += " WHERE user = ?"
            params = (user,)
        return [
            TokenInfo(
                tid,
                owner,
                label,
                float(created),
                None if expires is None else float(expires),
                None if revoked is None else float(revoked),
            )
            for tid, owner, label, created, expires, revoked in self._read(
                sql + " ORDER BY created", params
            )
        ]

    def revoke_token(self, token_id: str) -> TokenInfo:
        """Revoke one token by its id (``forge_<id>_...``); revoking twice is harmless."""
        parsed = parse_token(token_id)
        if parsed is not None:  # accept a whole token too, but look it up by id only
            token_id = parsed.token_id
        with self._write() as db:
            db.execute(
                "UPDATE auth_tokens SET revoked = ? WHERE id = ? AND revoked IS NULL",
                (self._clock(), token_id),
            )
            row = db.execute(
                "SELECT id, user, label, created, expires, revoked FROM auth_tokens WHERE id = ?",
                (token_id,),
            ).fetchone()
        if row is None:
            raise UnknownToken(f"no token with id {token_id!r}; `forge token list` shows the ids")
        tid, owner, label, created, expires, revoked = row
        return TokenInfo(tid, owner, label, created, expires, revoked)

    def revoke_user_tokens(self, user: str) -> int:
        """Revoke every active token of a user; returns how many."""
        with self._write() as db:
            _require_user(db, user)
            cur = db.execute(
                "UPDATE auth_tokens SET revoked = ? WHERE user = ? AND revoked IS NULL",
                (self._clock(), user),
            )
            return cur.rowcount

    def check_token(self, token: str | None) -> TokenCheck:
        """Who a token belongs to, or why it is refused. The secret is compared in constant
        time; the status only distinguishes expired/revoked once the secret has matched."""
        parsed = parse_token(token) if token else None
        if parsed is None:
            return TokenCheck(TokenStatus.MALFORMED)
        rows = self._read(
            "SELECT user, hash, expires, revoked FROM auth_tokens WHERE id = ?",
            (parsed.token_id,),
        )
        digest = hash_secret(parsed.secret)
        if not rows:
            hmac.compare_digest(digest, _DUMMY_HASH)
            return TokenCheck(TokenStatus.UNKNOWN)
        user, stored, expires, revoked = rows[0]
        if not hmac.compare_digest(digest, bytes(stored)):
            return TokenCheck(TokenStatus.UNKNOWN)
        if revoked is not None:
            return TokenCheck(TokenStatus.REVOKED, user)
        if expires is not None and float(expires) <= self._clock():
            return TokenCheck(TokenStatus.EXPIRED, user)
        return TokenCheck(TokenStatus.OK, user)


def _parse_role(role: Role | str) -> Role:
    try:
        return Role(role)
    except ValueError:
        raise AuthStoreError(f"invalid role {role!r}: use one of owner, writer, reader") from None


def _unknown_user(name: str) -> str:
    return f"no user named {name!r}; `forge user list` shows the users, `forge user add` adds one"


def _require_user(db: sqlite3.Connection, name: str) -> None:
    if db.execute("SELECT 1 FROM auth_users WHERE name = ?", (name,)).fetchone() is None:
        raise UnknownUser(_unknown_user(name))


def _add_missing_columns(db: sqlite3.Connection) -> None:
    """Databases made before a column existed get it, with its default."""
    columns = {row[1] for row in db.execute("PRAGMA table_info(auth_users)")}
    if "creator" not in columns:
        db.execute("ALTER TABLE auth_users ADD COLUMN creator INTEGER NOT NULL DEFAULT 0")
        db.commit()
