"""Open sockets follow their credentials: a token revoked or expired, or a role removed or
changed while a WebSocket is open, takes effect on that socket within a second, not only at the
next connection. Each open (token, project) pair is checked again every
:data:`REAUTHORIZE_INTERVAL_S` (one check per pair, however many sockets share it)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

from forge_server.principal import Authorizer, Forbidden, Unauthenticated, authorize
from forge_server.relay.connection import CloseCode, Connection

__all__ = ["REAUTHORIZE_INTERVAL_S", "reauthorize", "reauthorize_forever"]

REAUTHORIZE_INTERVAL_S = 0.5

log = logging.getLogger("forge_server.relay")


async def reauthorize(authorizer: Authorizer, connections: Iterable[Connection]) -> None:
    """Check every open connection's credentials again; close those refused now (4401 for the
    token, 4403 for the role: permanent, so clients do not retry) and give the others their
    current role (a writer made reader can no longer edit)."""
    groups: dict[tuple[str | None, str], list[Connection]] = {}
    for conn in connections:
        if not conn.closed and conn.room is not None:
            project = conn.room.name.split("/", 1)[0]
            groups.setdefault((conn.token, project), []).append(conn)
    for (token, project), conns in groups.items():
        try:
            principal = await authorize(authorizer, token, project)
        except Unauthenticated as exc:
            await _close(conns, CloseCode.UNAUTHENTICATED, exc.reason)
        except Forbidden as exc:
            await _close(conns, CloseCode.FORBIDDEN, exc.reason)
        else:
            for conn in conns:
                conn.principal = principal


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
