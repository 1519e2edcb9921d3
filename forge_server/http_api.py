"""What the HTTP API's route modules (history, coordinator) share: an error type that answers
as JSON, the wrapper turning it into that answer, and the checks of a writing request."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from forge_server.principal import Principal

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class RequestError(Exception):
    """A request that cannot be done: answered ``{"error": message, **details}`` with
    ``status``; the message says what to do instead."""

    status = 400

    def __init__(self, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}

    def to_json(self) -> dict[str, Any]:
        return {"error": self.message, **self.details}


class BodyTooLarge(RequestError):
    status = 413


def json_errors(handler: Handler) -> Handler:
    """``handler`` with its RequestErrors answered as JSON."""

    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except RequestError as exc:
            return web.json_response(exc.to_json(), status=exc.status)

    return wrapped


def require_writer(principal: Principal, project: str, hint: str = "") -> None:
    """403 (as JSON) unless the principal may change ``project``; ``hint`` ends the reason."""
    if principal.role is None or not principal.role.can_write:
        raise web.HTTPForbidden(
            text=json.dumps({"error": f"user {principal.user!r} may only read {project!r}{hint}"}),
            content_type="application/json",
        )


async def json_body(request: web.Request) -> dict[str, Any]:
    """The request's JSON object body ({} when there is none), or a RequestError."""
    try:
        body = await request.json() if request.can_read_body else {}
    except web.HTTPRequestEntityTooLarge:
        raise BodyTooLarge(f"request body over {request.client_max_size // 2**20} MiB; "
                           "send less in one request") from None
    except (ValueError, RecursionError):  # RecursionError: nesting deeper than json decodes
        raise RequestError("request body must be a JSON object") from None
    if not isinstance(body, dict):
        raise RequestError("request body must be a JSON object")
    return body
