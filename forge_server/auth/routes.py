"""HTTP API for project membership, authorized like every other API call.

Routes (JSON; errors are ``{"error": reason}`` with status 400/401/403/404/409):

- ``GET /api/auth/whoami``: the caller's name and whether they administer the server.
- ``GET /api/auth/projects``: projects the caller has a role on.
- ``POST /api/auth/projects`` ``{"name": P}``: create project P; the caller becomes its owner.
- ``GET /api/auth/projects/{project}/members``: everyone's role (any role may read).
- ``PUT /api/auth/projects/{project}/members/{user}`` ``{"role": R}``: owners only.
- ``DELETE /api/auth/projects/{project}/members/{user}``: owners only.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable

from aiohttp import web

from forge_server.auth._errors import AuthStoreError, ProjectExists, UnknownUser
from forge_server.auth._records import RoleGrant
from forge_server.auth._store import AuthStore
from forge_server.auth.authorizer import TokenAuthorizer, require_project_creator
from forge_server.principal import AuthError, Forbidden, Principal, Role
from forge_server.relay.app import AUTHORIZER, ROOMS, STATS, authorize_request, request_token

AUTH_STORE = web.AppKey("forge_auth_store", AuthStore)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _error(status: int, reason: str) -> web.Response:
    return web.json_response({"error": reason}, status=status)


def _guard(handler: Handler) -> Handler:
    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except AuthError as exc:
            request.app[STATS].auth_failures += 1
            return _error(exc.status, exc.reason)
        except UnknownUser as exc:
            return _error(404, str(exc))
        except ProjectExists as exc:
            return _error(409, str(exc))
        except AuthStoreError as exc:
            return _error(400, str(exc))

    return wrapped


async def _body(request: web.Request, key: str) -> str:
    try:
        data = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise AuthStoreError(f'send a JSON body like {{"{key}": "..."}}') from None
    value = data.get(key) if isinstance(data, dict) else None
    if not isinstance(value, str):
        raise AuthStoreError(f'send a JSON body like {{"{key}": "..."}}')
    return value


async def _project_principal(request: web.Request) -> Principal:
    return await authorize_request(request, request.match_info["project"])


async def _user(request: web.Request) -> str:
    return await request.app[AUTHORIZER].authenticate(request_token(request))


async def whoami(request: web.Request) -> web.Response:
    user = await _user(request)
    store = request.app[AUTH_STORE]
    return web.json_response({"user": user, "admin": await store.run(store.is_admin, user)})


async def list_projects(request: web.Request) -> web.Response:
    user = await _user(request)
    store = request.app[AUTH_STORE]
    grants = await store.run(store.projects_of, user)
    return web.json_response({"projects": [{"name": g.project, "role": g.role} for g in grants]})


async def create_project(request: web.Request) -> web.Response:
    user = await _user(request)
    name = await _body(request, "name")
    await require_project_creator(request.app[AUTHORIZER], user, name)
    store = request.app[AUTH_STORE]
    grant = await store.run(store.create_project, name, user)
    return web.json_response({"name": grant.project, "role": grant.role}, status=201)


async def list_members(request: web.Request) -> web.Response:
    principal = await _project_principal(request)
    store = request.app[AUTH_STORE]
    grants = await store.run(store.members, request.match_info["project"])
    return web.json_response(
        {
            "project": request.match_info["project"],
            "you": {"user": principal.user, "role": principal.role},
            "members": [{"user": g.user, "role": g.role} for g in grants],
        }
    )


async def _require_owner(request: web.Request) -> Principal:
    principal = await _project_principal(request)
    if principal.role is not Role.OWNER:
        raise Forbidden(
            f"only owners of {request.match_info['project']!r} can change its members; "
            f"you are {principal.role}"
        )
    return principal


async def set_member(request: web.Request) -> web.Response:
    await _require_owner(request)
    role = await _body(request, "role")
    store = request.app[AUTH_STORE]
    project, user = request.match_info["project"], request.match_info["user"]

    def change() -> RoleGrant:
        if role != Role.OWNER and store.owners(project) == [user]:
            raise AuthStoreError(f"{user!r} is the last owner of {project!r}; grant another first")
        return store.grant(user, project, role)

    grant = await store.run(change)
    return web.json_response({"user": grant.user, "role": grant.role})


async def remove_member(request: web.Request) -> web.Response:
    await _require_owner(request)
    store = request.app[AUTH_STORE]
    project, user = request.match_info["project"], request.match_info["user"]

    def remove() -> bool:
        if store.owners(project) == [user]:
            raise AuthStoreError(f"{user!r} is the last owner of {project!r}; grant another first")
        return store.revoke_role(user, project)

    if not await store.run(remove):
        return _error(404, f"{user!r} has no role on {project!r}")
    return web.json_response({"user": user, "role": None})


def setup_auth_routes(app: web.Application) -> None:
    """``setup(app)`` hook for ``create_app``: when the relay's authorizer is a
    :class:`TokenAuthorizer`, add the membership API and tell the authorizer which projects
    already have rooms (a project exists once recorded or once it has rooms; nothing else
    creates one).
    With any other authorizer (``--no-auth``) there are no accounts, and nothing is added."""
    authorizer = app[AUTHORIZER]
    if not isinstance(authorizer, TokenAuthorizer):
        return
    rooms = app[ROOMS]
    authorizer.project_has_rooms = lambda project: bool(rooms.project_rooms(project))
    app[AUTH_STORE] = authorizer.store
    app.router.add_get("/api/auth/whoami", _guard(whoami))
    app.router.add_get("/api/auth/projects", _guard(list_projects))
    app.router.add_post("/api/auth/projects", _guard(create_project))
    members = "/api/auth/projects/{project}/members"
    app.router.add_get(members, _guard(list_members))
    app.router.add_put(members + "/{user}", _guard(set_member))
    app.router.add_delete(members + "/{user}", _guard(remove_member))
