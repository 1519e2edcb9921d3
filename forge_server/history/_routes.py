"""HTTP API of version history, under ``/api/projects/{project}/``.

GET  log?branch=B&limit=N           newest commits reachable from a branch head
GET  commits/{ref}[?content=1]      one commit, its semantic changes (and plain content)
GET  diff?a=REF&b=REF               semantic changes between two commits
GET  branches | tags                listings
POST branches {name, from?}         start a branch room from a commit
POST merge {branch, into?}          CRDT merge, recorded with two parents
POST tags {name, commit?}           name a commit
POST revert {commit, branch?}       write an old commit's content as a new commit
POST commit {branch?, message?}     commit now (normally automatic)
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

from aiohttp import web

from forge_server.http_api import RouteAccess, json_errors, required_text
from forge_server.relay.app import CONFIG, ROOMS

from ._engine import MAIN, History, HistoryConfig
from ._errors import HistoryError
from ._store import Commit, HistoryStore

HISTORY = web.AppKey("forge_history", History)
_MAX_LIMIT = 1000


def history_setup(config: HistoryConfig | None = None) -> Callable[[web.Application], None]:
    """An ``AppSetup`` for ``create_app(setups=[...])`` that installs version history."""

    def setup(app: web.Application) -> None:
        store = HistoryStore(app[CONFIG].db_path)
        app[HISTORY] = History(app[ROOMS], store, config)

        async def lifecycle(app: web.Application) -> AsyncIterator[None]:
            await app[HISTORY].start()
            try:
                yield
            finally:
                await app[HISTORY].stop()
                store.close()

        app.cleanup_ctx.append(lifecycle)
        base = "/api/projects/{project}"
        app.router.add_get(f"{base}/log", json_errors(_log))
        app.router.add_get(f"{base}/commits/{{ref:.+}}", json_errors(_show))
        app.router.add_get(f"{base}/diff", json_errors(_diff))
        app.router.add_get(f"{base}/branches", json_errors(_branches))
        app.router.add_post(f"{base}/branches", json_errors(_create_branch))
        app.router.add_get(f"{base}/tags", json_errors(_tags))
        app.router.add_post(f"{base}/tags", json_errors(_create_tag))
        app.router.add_post(f"{base}/merge", json_errors(_merge))
        app.router.add_post(f"{base}/revert", json_errors(_revert))
        app.router.add_post(f"{base}/commit", json_errors(_commit))

    return setup


_ACCESS = RouteAccess(HISTORY)
_reader = _ACCESS.reader
_writer = _ACCESS.writer


def _optional(body: dict[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is not None and not isinstance(value, str):
        raise HistoryError(f"{key!r} must be a string")
    return value or None


async def _commit_json(history: History, commit: Commit) -> dict[str, Any]:
    data = commit.to_json()
    data["tags"] = [t.name for t in await history.tags(commit.project, commit.id)]
    return data


async def _log(request: web.Request) -> web.Response:
    history, project, _ = await _reader(request)
    branch = request.query.get("branch", MAIN)
    try:
        limit = int(request.query.get("limit", "20"))
    except ValueError:
        raise HistoryError("limit must be an integer") from None
    if not 1 <= limit <= _MAX_LIMIT:
        raise HistoryError(f"limit must be between 1 and {_MAX_LIMIT}")
    commits = await history.log_page(project, branch, limit)
    return web.json_response(
        {"branch": branch, "commits": [await _commit_json(history, c) for c in commits]}
    )


async def _show(request: web.Request) -> web.Response:
    history, project, _ = await _reader(request)
    commit, changes = await history.show(project, request.match_info["ref"])
    body: dict[str, Any] = {
        "commit": await _commit_json(history, commit),
        "changes": [c.to_json() | {"detail": c.detail} for c in changes],
    }
    if request.query.get("content") in ("1", "true", "yes"):
        body["content"] = await history.store.run(history.store.content, commit.id)
    return web.json_response(body)


async def _diff(request: web.Request) -> web.Response:
    history, project, _ = await _reader(request)
    a, b = request.query.get("a"), request.query.get("b")
    if not a or not b:
        raise HistoryError("give both commits: ?a=REF&b=REF")
    first, second, changes = await history.diff(project, a, b)
    return web.json_response(
        {
            "a": await _commit_json(history, first),
            "b": await _commit_json(history, second),
            "changes": [c.to_json() | {"detail": c.detail} for c in changes],
        }
    )


async def _branches(request: web.Request) -> web.Response:
    history, project, _ = await _reader(request)
    branches = await history.branches(project)
    return web.json_response({"branches": [b.to_json() for b in branches]})


async def _tags(request: web.Request) -> web.Response:
    history, project, _ = await _reader(request)
    return web.json_response({"tags": [t.to_json() for t in await history.tags(project)]})


async def _create_branch(request: web.Request) -> web.Response:
    history, project, principal, body = await _writer(request)
    name, from_ref = required_text(body, "name"), _optional(body, "from")
    branch = await history.create_branch(project, name, from_ref, by=principal.user)
    return web.json_response({"branch": branch.to_json()}, status=201)


async def _create_tag(request: web.Request) -> web.Response:
    history, project, principal, body = await _writer(request)
    name, ref = required_text(body, "name"), _optional(body, "commit")
    tag = await history.tag(project, name, ref, by=principal.user)
    return web.json_response({"tag": tag.to_json()}, status=201)


async def _merge(request: web.Request) -> web.Response:
    history, project, principal, body = await _writer(request)
    source, into = required_text(body, "branch"), required_text(body, "into", MAIN)
    commit = await history.merge(project, source, into, by=principal.user)
    return web.json_response({"commit": await _commit_json(history, commit)})


async def _revert(request: web.Request) -> web.Response:
    history, project, principal, body = await _writer(request)
    ref, branch = required_text(body, "commit"), required_text(body, "branch", MAIN)
    commit = await history.revert(project, ref, branch, by=principal.user)
    return web.json_response({"commit": await _commit_json(history, commit)})


async def _commit(request: web.Request) -> web.Response:
    history, project, principal, body = await _writer(request)
    branch, message = required_text(body, "branch", MAIN), _optional(body, "message")
    commit = await history.commit(project, branch, message=message, author=principal.user)
    return web.json_response({"commit": await _commit_json(history, commit) if commit else None})
