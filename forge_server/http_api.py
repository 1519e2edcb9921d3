"""What the HTTP API's route modules (history, coordinator) share: an error type that answers
as JSON, the wrapper turning it into that answer, who may read or write a project
(:class:`RouteAccess`), and the reading of a request's JSON body and its text fields."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

from aiohttp import web

from forge_server.principal import Principal
from forge_server.relay.app import authorize_request

__all__ = [
    "BodyTooLarge",
    "Handler",
    "ProjectOf",
    "RequestError",
    "RouteAccess",
    "json_body",
    "json_errors",
    "optional_text",
    "project_in_path",
    "require_writer",
    "required_text",
]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
ProjectOf = Callable[[web.Request], Awaitable[str]]
"""Which project a request is about (it may need to look it up)."""
ServiceT = TypeVar("ServiceT")


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


async def project_in_path(request: web.Request) -> str:
    """The ``{project}`` of the route's path."""
    return request.match_info["project"]


class RouteAccess(Generic[ServiceT]):
    """The request helpers of one route module: the project a request is about, who asks with
    which role on it (401/403 as JSON otherwise), and the module's service from the app."""

    def __init__(
        self,
        service: web.AppKey[ServiceT],
        *,
        project: ProjectOf = project_in_path,
        writer_hint: str = "",
    ) -> None:
        self._service = service
        self._project = project
        self._writer_hint = writer_hint

    async def reader(self, request: web.Request) -> tuple[ServiceT, str, Principal]:
        """(service, project, principal) for a request that needs any role on the project."""
        project = await self._project(request)
        principal = await authorize_request(request, project)
        return request.app[self._service], project, principal

    async def writer(
        self, request: web.Request
    ) -> tuple[ServiceT, str, Principal, dict[str, Any]]:
        """(service, project, principal, JSON body) for a request that changes the project:
        403 (ending with ``writer_hint``) unless the principal may write."""
        service, project, principal = await self.reader(request)
        require_writer(principal, project, self._writer_hint)
        return service, project, principal, await json_body(request)


def required_text(body: dict[str, Any], key: str, default: str | None = None) -> str:
    """``body[key]`` (or ``default``), which must be a non-empty string."""
    value = body.get(key, default)
    if not isinstance(value, str) or not value:
        raise RequestError(f"{key!r} is required and must be a non-empty string")
    return value


def optional_text(body: dict[str, Any], key: str, default: str | None = None) -> str | None:
    """``body[key]`` (or ``default``): absent (None) or a non-empty string."""
    value = body.get(key, default)
    if value is not None and (not isinstance(value, str) or not value):
        raise RequestError(f"{key!r} must be a non-empty string")
    return value
