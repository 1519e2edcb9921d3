"""Creating projects over HTTP, optionally filled from an example project.

``POST /api/projects`` ``{"name": P, "example"?: "cifar10", "exist_ok"?: bool}`` creates project
P when the caller may create projects (``forge serve --project-creators``): the caller becomes
its owner (recorded in the auth tables when the server has accounts), and
its ``main`` branch document starts as a fresh project or as the example, committed once so the
history starts with it. Answers 201 ``{name, role, created: true, example, branch, pipelines}``;
with ``exist_ok`` an existing project the caller may open answers 200 with ``created: false``
instead of 409. Errors are ``{"error": reason}`` (400 bad input, 401, 403 not a creator,
409 exists).
Listing stays ``GET /api/projects`` (in :mod:`forge_server.relay.app`).

Install with ``projects_setup`` (after ``history_setup()`` so the first commit is recorded).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from aiohttp import web

from forge_ops.examples import EXAMPLES, example_document
from forge_ops.schema import ProjectDoc
from forge_server.auth import (
    InvalidName,
    ProjectExists,
    require_project_creator,
    validate_project_name,
)
from forge_server.auth.routes import AUTH_STORE
from forge_server.history import HISTORY
from forge_server.principal import AuthError, Role
from forge_server.relay.app import AUTHORIZER, ROOMS, STATS, authorize_request, request_token
from forge_server.relay.rooms import project_room
from forge_server.relay.store import StoreError

__all__ = ["ProjectRequestError", "projects_setup"]

log = logging.getLogger(__name__)

MAIN = "main"


class ProjectRequestError(Exception):
    """A create request that cannot be served; ``status`` is the HTTP status to answer."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def projects_setup(app: web.Application) -> None:
    """``setup(app)`` hook for ``create_app``: adds ``POST /api/projects``."""
    app.router.add_post("/api/projects", _create)


async def _create(request: web.Request) -> web.Response:
    try:
        return await _create_project(request)
    except AuthError as exc:
        request.app[STATS].auth_failures += 1
        return web.json_response({"error": exc.reason}, status=exc.status)
    except ProjectRequestError as exc:
        return web.json_response({"error": exc.reason}, status=exc.status)


async def _create_project(request: web.Request) -> web.Response:
    app = request.app
    user = await app[AUTHORIZER].authenticate(request_token(request))
    name, example, exist_ok = await _read_body(request)
    rooms = app[ROOMS]
    same = sorted(p for p in rooms.projects() if p.lower() == name.lower() and p != name)
    if same:
        raise ProjectRequestError(
            409,
            f"project {same[0]!r} already exists (names that differ only in case are one "
            f"project); open it with `forge tui --project {same[0]}` or choose another name",
        )
    if rooms.project_rooms(name):
        if not exist_ok:
            raise ProjectRequestError(
                409,
                f"project {name!r} already exists; open it with `forge tui --project {name}` "
                "or choose another name",
            )
        principal = await authorize_request(request, name)
        return web.json_response(
            await _description(app, name, principal.role, created=False, example=None)
        )
    store = app.get(AUTH_STORE)
    if store is None or not await store.run(store.project_exists, name):
        # Filling a project an administrator recorded (POST /api/auth/projects) is for its
        # writers; only a new name needs the right to create projects.
        await require_project_creator(app[AUTHORIZER], user, name)
    await _claim(app, name, user)
    project = example_document(example, name) if example else ProjectDoc.create(name)
    try:
        await rooms.create(project_room(name, MAIN), project.doc.get_update())
    except StoreError:  # someone opened the room between the check and now
        raise ProjectRequestError(
            409, f"project {name!r} was created by someone else meanwhile; open it instead"
        ) from None
    await _first_commit(app, name, user, example)
    principal = await authorize_request(request, name)
    log.info("project %r created by %r (example: %s)", name, user, example or "none")
    body = await _description(app, name, principal.role, created=True, example=example)
    return web.json_response(body, status=201)


async def _read_body(request: web.Request) -> tuple[str, str | None, bool]:
    usage = 'send a JSON body like {"name": "my-project", "example": "cifar10"}'
    try:
        data = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ProjectRequestError(400, usage) from None
    if not isinstance(data, dict) or not isinstance(data.get("name"), str):
        raise ProjectRequestError(400, usage)
    name = data["name"]
    try:
        validate_project_name(name)
    except InvalidName as exc:
        raise ProjectRequestError(400, str(exc)) from None
    example = data.get("example")
    if example is not None and (not isinstance(example, str) or example not in EXAMPLES):
        known = ", ".join(sorted(EXAMPLES))
        raise ProjectRequestError(400, f"no example project {example!r}; examples: {known}")
    exist_ok = data.get("exist_ok", False)
    if not isinstance(exist_ok, bool):
        raise ProjectRequestError(400, "'exist_ok' must be true or false")
    return name, example, exist_ok


async def _claim(app: web.Application, name: str, user: str) -> None:
    """Record the project and its owner in the auth tables (servers with accounts only)."""
    store = app.get(AUTH_STORE)
    if store is None:
        return

    def claim() -> None:
        if store.project_exists(name):
            # Created through the membership API but never filled: its writers may fill it.
            role = store.role(user, name)
            if role is None or not role.can_write:
                raise ProjectRequestError(
                    409, f"project {name!r} already exists; ask one of its owners for a role"
                )
            return
        try:
            store.create_project(name, user)
        except ProjectExists as exc:
            raise ProjectRequestError(409, str(exc)) from None

    await store.run(claim)


async def _first_commit(app: web.Application, name: str, user: str, example: str | None) -> None:
    history = app.get(HISTORY)
    if history is None:
        return
    message = f"Created project {name}" + (f" from example {example}" if example else "")
    await history.commit(name, MAIN, message=message, author=user, force=True)


async def _description(
    app: web.Application, name: str, role: Role | None, *, created: bool, example: str | None
) -> dict[str, Any]:
    pipelines: list[str] = []
    room_name = project_room(name, MAIN)
    if room_name in app[ROOMS].project_rooms(name):  # never create an empty main by reading
        async with app[ROOMS].hold(room_name) as room:
            plain = ProjectDoc(room.doc).to_plain()
        pipelines = sorted(p["name"] for p in plain["pipelines"].values())
    return {
        "name": name,
        "role": str(role) if role is not None else None,
        "created": created,
        "example": example,
        "branch": MAIN,
        "pipelines": pipelines,
    }
