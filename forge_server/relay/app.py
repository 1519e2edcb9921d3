"""The relay's aiohttp application: rooms over y-websocket, health, and the hooks others use.

``create_app(config, authorizer=..., setups=[...])`` builds the app. Shared state lives behind
typed keys (:data:`CONFIG`, :data:`STORE`, :data:`ROOMS`, :data:`AUTHORIZER`, :data:`STATS`,
:data:`LIMITER`); other modules add routes by passing ``setup(app)`` callables (or by adding
routes to the returned app before it starts) and authorize their HTTP calls with
:func:`authorize_request`.

Routes: ``GET /sync/{project}/{branch}`` and ``GET /sync/{project}/executions/{id}`` (WebSocket),
``GET /health``, ``GET /api/projects``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterable

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from forge_server.principal import (
    AllowAll,
    AuthError,
    Authorizer,
    Principal,
    Unauthenticated,
    authorize,
)
from forge_server.relay.config import RelayConfig
from forge_server.relay.connection import CloseCode, Connection, ConnectionLimiter, RelayRefusal
from forge_server.relay.offenders import OffenderTracker, offender_key
from forge_server.relay.reauthorization import reauthorize_forever
from forge_server.relay.rooms import RoomManager, validate_room_name
from forge_server.relay.stats import RelayStats
from forge_server.relay.store import Store, StoreError

__all__ = [
    "AUTHORIZER",
    "CONFIG",
    "CONNECTIONS",
    "LIMITER",
    "OFFENDERS",
    "ROOMS",
    "STATS",
    "STORE",
    "AppSetup",
    "RedactingAccessLogger",
    "authorize_request",
    "create_app",
    "request_token",
]

log = logging.getLogger("forge_server.relay")

CONFIG = web.AppKey("forge_config", RelayConfig)
STORE = web.AppKey("forge_store", Store)
ROOMS = web.AppKey("forge_rooms", RoomManager)
AUTHORIZER = web.AppKey("forge_authorizer", Authorizer)
STATS = web.AppKey("forge_stats", RelayStats)
LIMITER = web.AppKey("forge_limiter", ConnectionLimiter)
CONNECTIONS: web.AppKey[set[Connection]] = web.AppKey("forge_connections")
OFFENDERS = web.AppKey("forge_offenders", OffenderTracker)

AppSetup = Callable[[web.Application], None]
"""A module's hook: adds its routes / startup tasks to the relay app."""


def create_app(
    config: RelayConfig,
    *,
    authorizer: Authorizer | None = None,
    setups: Iterable[AppSetup] = (),
) -> web.Application:
    """Build the relay app; the store is opened now and closed when the app cleans up."""
    app = web.Application(client_max_size=config.max_frame_bytes)
    stats = RelayStats()
    store = Store(config.db_path, writer_thread=config.store_writer_thread)
    app[CONFIG] = config
    app[STATS] = stats
    app[STORE] = store
    app[ROOMS] = RoomManager(store, config, stats)
    app[AUTHORIZER] = authorizer if authorizer is not None else AllowAll()
    app[LIMITER] = ConnectionLimiter(config)
    app[CONNECTIONS] = set()
    app[OFFENDERS] = OffenderTracker(
        config.malformed_strikes_before_refusal, config.malformed_strike_half_life_s
    )
    app.router.add_get("/health", _health)
    app.router.add_get("/api/projects", _projects)
    app.router.add_get("/sync/{project}/executions/{execution_id}", _sync)
    app.router.add_get("/sync/{project}/{branch}", _sync)
    app.cleanup_ctx.append(_background)
    app.on_shutdown.append(_close_connections)
    for setup in setups:
        setup(app)
    return app


def request_token(request: web.Request) -> str | None:
    """The bearer token of a request: ``Authorization: Bearer …`` or the ``token`` parameter."""
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return request.query.get("token") or None


async def authorize_request(request: web.Request, project: str) -> Principal:
    """Authorize an HTTP call on a project; raises 401/403 responses with a JSON reason."""
    try:
        return await authorize(request.app[AUTHORIZER], request_token(request), project)
    except AuthError as exc:
        request.app[STATS].auth_failures += 1
        raise _auth_response(exc) from None


_AUTH_RESPONSES: dict[int, type[web.HTTPException]] = {
    401: web.HTTPUnauthorized, 403: web.HTTPForbidden, 404: web.HTTPNotFound,
}


def _auth_response(exc: AuthError) -> web.HTTPException:
    cls = _AUTH_RESPONSES.get(exc.status, web.HTTPForbidden)
    return cls(text=json.dumps({"error": exc.reason}), content_type="application/json")


_REFUSAL_CLOSE_CODES = {
    401: CloseCode.UNAUTHENTICATED, 403: CloseCode.FORBIDDEN, 404: CloseCode.NOT_FOUND,
}


async def _refuse(request: web.Request, status: int, reason: str) -> web.StreamResponse:
    """A refusal that retrying cannot change (no or bad token, no role, no such room). A
    WebSocket client gets the socket closed at once with 4401/4403/4404 and the reason:
    y-websocket clients treat 4400-4499 as final and stop, where an HTTP error before the
    upgrade would look like a network failure that they retry forever. A plain request gets
    the status with ``{"error": reason}``."""
    ws = web.WebSocketResponse(compress=False)
    if not ws.can_prepare(request).ok:
        raise _auth_response(AuthError.with_status(status, reason))
    await ws.prepare(request)
    code = _REFUSAL_CLOSE_CODES.get(status, CloseCode.FORBIDDEN)
    await ws.close(code=code, message=_close_reason(reason))
    return ws


def _close_reason(reason: str) -> bytes:
    """A close frame's reason holds at most 123 bytes of UTF-8."""
    encoded = reason.encode()
    if len(encoded) <= 123:
        return encoded
    return encoded[:120].decode(errors="ignore").encode() + "…".encode()


async def _health(request: web.Request) -> web.Response:
    app = request.app
    return web.json_response(
        {
            "status": "ok",
            "rooms": len(app[ROOMS].rooms),
            "connections": len(app[CONNECTIONS]),
            "counters": app[STATS].as_dict(),
        }
    )


async def _projects(request: web.Request) -> web.Response:
    """Projects the caller has a role on: ``{"projects": [{"name", "role", "rooms"}]}``."""
    authorizer = request.app[AUTHORIZER]
    try:
        user = await authorizer.authenticate(request_token(request))
    except Unauthenticated as exc:
        request.app[STATS].auth_failures += 1
        raise _auth_response(exc) from None
    rooms = request.app[ROOMS]
    listing = []
    for project in rooms.projects():
        role = await authorizer.role(user, project)
        if role is not None:
            listing.append(
                {"name": project, "role": str(role), "rooms": rooms.project_rooms(project)}
            )
    return web.json_response({"projects": listing})


async def _sync(request: web.Request) -> web.StreamResponse:
    """One client in one room over the y-websocket protocol."""
    app = request.app
    info = request.match_info
    if "execution_id" in info:
        name = f"{info['project']}/executions/{info['execution_id']}"
    else:
        name = f"{info['project']}/{info['branch']}"
    try:
        validate_room_name(name)
    except ValueError as exc:
        raise web.HTTPBadRequest(text=str(exc)) from None
    peer = request.remote or "unknown"
    # A client that keeps sending malformed frames is refused before any other work.
    key = offender_key(peer, request_token(request))
    retry_after = app[OFFENDERS].retry_after(key)
    if retry_after is not None:
        app[STATS].offenders_refused += 1
        raise web.HTTPTooManyRequests(
            text="too many malformed frames from this client recently; retry later",
            headers={"Retry-After": str(math.ceil(retry_after))},
        )
    # Authorization happens before anything of the room is touched. Only this step is limited
    # per address (after it, limits are the user's).
    try:
        with app[LIMITER].authenticating(peer):
            principal = await authorize(app[AUTHORIZER], request_token(request), info["project"])
    except RelayRefusal as exc:
        app[STATS].connection_limit += 1
        raise web.HTTPTooManyRequests(text=exc.reason, headers={"Retry-After": "1"}) from None
    except AuthError as exc:
        app[STATS].auth_failures += 1
        return await _refuse(request, exc.status, exc.reason)
    if not app[ROOMS].exists(name):
        # Reads never create state: only the server makes execution rooms, and a new branch
        # room is opened by someone who can write into it (or made with the history API).
        if "execution_id" in info:
            return await _refuse(request, 404, f"no execution {info['execution_id']!r} in "
                                 f"project {info['project']!r}")
        if principal.role is None or not principal.role.can_write:
            return await _refuse(request, 404, f"no branch {info['branch']!r} in project "
                                 f"{info['project']!r}; readers can open existing branches only")
    config = app[CONFIG]
    # No permessage-deflate: y-websocket messages are small, and broadcasts write one
    # pre-encoded frame to every peer (forge_server.relay.protocol.websocket_frame).
    ws = web.WebSocketResponse(
        heartbeat=config.heartbeat_s,
        max_msg_size=config.max_frame_bytes,
        autoping=True,
        compress=False,
    )
    if not ws.can_prepare(request).ok:
        raise web.HTTPBadRequest(text="this is a y-websocket endpoint: connect with a WebSocket")
    await ws.prepare(request)
    conn = Connection(
        ws,
        principal,
        peer=peer,
        config=config,
        stats=app[STATS],
        log=log,
        transport=request.transport,
        offenders=app[OFFENDERS],
        offender_key=key,
        token=request_token(request),
        anonymous=isinstance(app[AUTHORIZER], AllowAll),
    )
    app[STATS].connections_opened += 1
    app[CONNECTIONS].add(conn)
    try:
        with app[LIMITER].admit(principal.user):
            try:
                room = await app[ROOMS].get(name)
            except (ValueError, StoreError, sqlite3.Error) as exc:
                log.exception("could not load room %s", name)
                raise RelayRefusal(
                    CloseCode.INTERNAL_ERROR, "the relay could not load this room"
                ) from exc
            await conn.serve(room)
    except RelayRefusal as exc:
        if exc.code == CloseCode.TOO_MANY_CONNECTIONS:
            app[STATS].connection_limit += 1
        log.warning("refused %r: %s", conn, exc.reason)
        await conn.close(exc.code, exc.reason)
    finally:
        app[CONNECTIONS].discard(conn)
    return ws


async def _close_connections(app: web.Application) -> None:
    open_connections = app[CONNECTIONS]
    conns = list(open_connections)
    if conns:
        log.info("closing %d connections for shutdown", len(conns))
        await asyncio.gather(
            *(c.close(CloseCode.GOING_AWAY, "server shutting down") for c in conns),
            return_exceptions=True,
        )


async def _background(app: web.Application) -> AsyncIterator[None]:
    rooms = app[ROOMS]
    interval = app[CONFIG].sweep_interval_s

    async def sweep_forever() -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await rooms.sweep()
            except Exception:
                log.exception("room sweep failed")

    loop = asyncio.get_running_loop()
    tasks = [loop.create_task(sweep_forever()),
             loop.create_task(reauthorize_forever(app[AUTHORIZER], app[CONNECTIONS]))]
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await rooms.close()  # flush and compact everything
        app[STORE].close()


class RedactingAccessLogger(AbstractAccessLogger):
    """Access log without query strings, so a ``?token=`` never reaches a log. The path is
    logged as sent (still percent-encoded), so an encoded newline cannot forge a log line."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        self.logger.info(
            '%s "%s %s" %s %.3fs',
            request.remote,
            request.method,
            request.raw_path.partition("?")[0],
            response.status,
            time,
        )
