"""Open sockets follow their credentials: a token revoked or expired, or a role removed or
changed while a WebSocket is open, takes effect on that socket within a second, not only at the
next connection. Each open (token, project) pair is checked again every
:data:`REAUTHORIZE_INTERVAL_S` (one check per pair, however many sockets share it)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

from forge_server.principal import Authorizer, Principal, Role, Unauthenticated, UnknownProject
from forge_server.relay.connection import CloseCode, Connection

__all__ = ["REAUTHORIZE_INTERVAL_S", "reauthorize", "reauthorize_forever"]

REAUTHORIZE_INTERVAL_S = 0.5

log = logging.getLogger("forge_server.relay")


async def reauthorize(authorizer: Authorizer, connections: Iterable[Connection]) -> None:
    """Check every open connection's credentials again; close those refused now (4401 for the
    token, 4403 for the role: permanent, so clients do not retry) and give the others their
    current role (a writer made reader can no longer edit). Each token is checked once and
    each (user, project) role once, however many sockets share them."""
    groups: dict[tuple[str | None, str], list[Connection]] = {}
    for conn in connections:
        if not conn.closed and conn.room is not None:
            project = conn.room.name.split("/", 1)[0]
            groups.setdefault((conn.token, project), []).append(conn)
    users: dict[str | None, str | Unauthenticated] = {}
    for token in {token for token, _ in groups}:
        try:
            users[token] = await authorizer.authenticate(token)
        except Unauthenticated as exc:
            users[token] = exc
    roles: dict[tuple[str, str], Role | None] = {}
    for (token, project), conns in groups.items():
        user = users[token]
        if isinstance(user, Unauthenticated):
            await _close(conns, CloseCode.UNAUTHENTICATED, user.reason)
            continue
        if (user, project) not in roles:
            try:
                roles[user, project] = await authorizer.role(user, project)
            except UnknownProject:
                roles[user, project] = None
        role = roles[user, project]
        if role is None:
            await _close(conns, CloseCode.FORBIDDEN,
                         f"user {user!r} no longer has a role on project {project!r}")
            continue
        for conn in conns:
            if conn.principal.role is not role:
                conn.principal = Principal(user=user, role=role)


async def reauthorize_forever(authorizer: Authorizer, connections: set[Connection],
                              interval_s: float = REAUTHORIZE_INTERVAL_S) -> None:
    while True:
        await asyncio.sleep(interval_s)
        try:
            await reauthorize(authorizer, list(connections))
        except Exception:
            log.exception("checking open connections' credentials failed")


async def _close(conns: list[Connection], code: CloseCode, reason: str) -> None:
    for conn in conns:
        log.info("closing %r: %s", conn, reason)
    await asyncio.gather(*(conn.close(code, reason) for conn in conns), return_exceptions=True)
