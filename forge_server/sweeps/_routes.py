"""HTTP API of sweeps (JSON; errors are ``{"error": reason, …}``).

Under ``/api/projects/{project}/``:

GET  sweeps?branch=B                      the branch's sweeps: definition, problems, runs
PUT  sweeps/{sweep} {pipeline, parameters, objective, budget?, sampler?, pruner?, branch?}
                                          define (or replace) sweep ``{sweep}`` (a name)
POST sweeps/{sweep}/runs {branch?, executor?}   start a run: commit and tag, then trials; 201
GET  sweeps/{sweep}/runs/{run}?branch=B   a run's record: status, trials, best ("latest" ok)
POST sweeps/{sweep}/runs/{run}/cancel     stop asking for trials, cancel the running ones
POST sweeps/{sweep}/runs/{run}/resume     go on with a cancelled or interrupted run
POST sweeps/{sweep}/runs/{run}/apply {trial?, branch?}   write the best (or that) trial's
                                          settings into the pipeline, as a committed edit

``{sweep}`` is a sweep's name or id. A sweep with problems answers 400 with ``problems``.
Defining, starting, cancelling, resuming and applying need a writer or owner role; reading
needs any role.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

from aiohttp import web

from forge_server.http_api import RequestError, RouteAccess, json_errors, optional_text
from forge_server.relay.app import CONFIG

from ._service import Sweeps
from ._studies import Studies

SWEEPS = web.AppKey("forge_sweeps", Sweeps)
_ACCESS = RouteAccess(SWEEPS, writer_hint="; running and changing sweeps needs the writer or "
                                          "owner role")


def sweeps_setup() -> Callable[[web.Application], None]:
    """An ``AppSetup`` installing sweeps; put it after ``coordinator_setup()``. Runs left
    running by a previous server are resumed once it serves."""

    def setup(app: web.Application) -> None:
        import asyncio

        from forge_server.coordinator import COORDINATOR
        from forge_server.history import HISTORY

        if COORDINATOR not in app or HISTORY not in app:
            raise RuntimeError("sweeps run executions: install coordinator_setup() first")
        studies = Studies(app[CONFIG].data_dir / "sweeps.db")
        sweeps = Sweeps(app[COORDINATOR], app[HISTORY], studies)
        app[SWEEPS] = sweeps

        async def lifecycle(app: web.Application) -> AsyncIterator[None]:
            resuming = asyncio.get_running_loop().create_task(sweeps.resume_interrupted())
            try:
                yield
            finally:
                resuming.cancel()
                await asyncio.gather(resuming, return_exceptions=True)
                await sweeps.stop()

        app.cleanup_ctx.append(lifecycle)
        base = "/api/projects/{project}/sweeps"
        one = base + "/{sweep}/runs/{run}"
        app.router.add_get(base, json_errors(_listing))
        app.router.add_put(base + "/{sweep}", json_errors(_define))
        app.router.add_post(base + "/{sweep}/runs", json_errors(_start))
        app.router.add_get(one, json_errors(_record))
        app.router.add_post(one + "/cancel", json_errors(_cancel))
        app.router.add_post(one + "/resume", json_errors(_resume))
        app.router.add_post(one + "/apply", json_errors(_apply))

    return setup


def _branch(request: web.Request, body: dict[str, Any] | None = None) -> str:
    if body is not None and "branch" in body:
        return optional_text(body, "branch") or "main"
    return request.query.get("branch", "main")


async def _listing(request: web.Request) -> web.Response:
    sweeps, project, _ = await _ACCESS.reader(request)
    rows = await sweeps.listing(project, _branch(request))
    return web.json_response({"project": project, "sweeps": rows})


async def _define(request: web.Request) -> web.Response:
    sweeps, project, principal, body = await _ACCESS.writer(request)
    pipeline = optional_text(body, "pipeline")
    if pipeline is None:
        raise RequestError('name the pipeline the sweep searches: {"pipeline": "NAME or id", '
                           '"parameters": {...}, "objective": {...}}')
    parts: dict[str, Any] = {key: body[key] for key in (
        "parameters", "objective", "budget", "sampler", "pruner") if key in body}
    unknown = sorted(set(body) - {"pipeline", "branch", *parts})
    if unknown:
        raise RequestError(f"a sweep has no {unknown[0]!r}; give pipeline, parameters, "
                           "objective, budget, sampler, pruner (and branch)")
    defined = await sweeps.define(project, _branch(request, body), request.match_info["sweep"],
                                  pipeline=pipeline, parts=parts, by=principal.user)
    return web.json_response(defined, status=200)


async def _start(request: web.Request) -> web.Response:
    sweeps, project, principal, body = await _ACCESS.writer(request)
    record = await sweeps.start(project, request.match_info["sweep"],
                                branch=_branch(request, body),
                                executor=optional_text(body, "executor"), by=principal.user)
    return web.json_response(record, status=201)


async def _record(request: web.Request) -> web.Response:
    sweeps, project, _ = await _ACCESS.reader(request)
    return web.json_response(await sweeps.record(
        project, request.match_info["sweep"], request.match_info["run"],
        branch=_branch(request)))


async def _cancel(request: web.Request) -> web.Response:
    sweeps, project, principal, body = await _ACCESS.writer(request)
    return web.json_response(await sweeps.cancel(
        project, request.match_info["sweep"], request.match_info["run"],
        branch=_branch(request, body), by=principal.user), status=202)


async def _resume(request: web.Request) -> web.Response:
    sweeps, project, principal, body = await _ACCESS.writer(request)
    return web.json_response(await sweeps.resume(
        project, request.match_info["sweep"], request.match_info["run"],
        branch=_branch(request, body), by=principal.user), status=202)


async def _apply(request: web.Request) -> web.Response:
    sweeps, project, principal, body = await _ACCESS.writer(request)
    trial = body.get("trial")
    if trial is not None and (not isinstance(trial, int) or isinstance(trial, bool)):
        raise RequestError("'trial' must be a trial's number")
    return web.json_response(await sweeps.apply(
        project, request.match_info["sweep"], request.match_info["run"], trial=trial,
        branch=_branch(request, body), by=principal.user))
