"""HTTP API of executions and artifacts (JSON; errors are ``{"error": reason, …}``).

Under ``/api/projects/{project}/``:

POST runs {pipeline, branch?, executor?, no_cache?, gpus?, ray_address?}   201: the execution
                                              record (gpus: for each job that runs a network)
GET  executions?branch=B                      execution summaries of a branch
GET  executions/{id}                          the execution record (jobs, durations, outputs)
POST executions/{id}/cancel                   cancel the whole execution
POST executions/{id}/jobs/{job}/cancel        cancel one job (and so its downstream)
POST executions/{id}/jobs/{job}/restart {executor?}   re-run a job and its downstream (on
                                              the executor it ran on unless one is named)
POST executions/{id}/rerun {no_cache?, executor?}   run again from the run/{id} tag; 201
GET  executions/{id}/jobs/{job}/images/{name}?format=png|raw&max_side=N
                                              an image a job showed: PNG, or raw uint8 H×W×C
                                              bytes with the shape in ``X-Forge-Shape: H,W,C``
GET  executions/{id}/artifacts/{hash}         summary of any job output or image of the run
GET  artifacts?branch=B                       named artifacts
GET  artifacts/{name}?branch=B                one artifact: record, provenance, stats
GET  artifacts/{name}/export?branch=B         the artifact as a file (.npy/.npz/.pt/.json)

The same execution routes exist without the project, as ``/api/executions/{id}…``: the server
finds the project (execution ids are unique across the server); an id of a project the caller
has no role on answers the same 404 as an id that does not exist. A run with validation
problems answers 400 with ``problems``: a list of ``{kind, message, node, node_name, edge}``.
Starting or changing executions needs a writer or owner role; reading needs any role.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

from aiohttp import web

from forge_server.http_api import RouteAccess, json_errors, optional_text
from forge_server.principal import AuthError
from forge_server.relay.app import AUTHORIZER, CONFIG, ROOMS, request_token

from ._backfill import backfill
from ._config import CoordinatorConfig, ExecutorKind
from ._coordinator import Coordinator
from ._errors import CoordinatorError
from ._project_records import ProjectRecords

COORDINATOR = web.AppKey("forge_coordinator", Coordinator)


def coordinator_setup(
    config: CoordinatorConfig | None = None,
) -> Callable[[web.Application], None]:
    """An ``AppSetup`` installing the coordinator; put it after ``history_setup()``.

    ``config`` defaults to the Ray executor and artifacts under the relay's data dir.
    """

    def setup(app: web.Application) -> None:
        from forge_server.history import HISTORY

        if HISTORY not in app:
            raise RuntimeError("the coordinator tags every run: install history_setup() first")
        settings = config or CoordinatorConfig(artifacts=str(app[CONFIG].data_dir / "artifacts"))
        records = ProjectRecords(app[CONFIG].db_path)
        coordinator = Coordinator(app[ROOMS], app[HISTORY], settings, records)
        app[COORDINATOR] = coordinator

        async def lifecycle(app: web.Application) -> AsyncIterator[None]:
            # In the background: the server answers while old projects are looked through,
            # and while a cluster it joins is checked (its log says at once what is wrong).
            background = [asyncio.create_task(_settle_left_running(coordinator))]
            if settings.ray_address and settings.executor is ExecutorKind.RAY:
                background.append(asyncio.create_task(_check_cluster(coordinator)))
            try:
                await backfill(records, app[ROOMS], app[HISTORY], coordinator.log)
                yield
            finally:
                for task in background:
                    task.cancel()
                await asyncio.gather(*background, return_exceptions=True)
                try:
                    await coordinator.stop()
                finally:
                    records.close()

        app.cleanup_ctx.append(lifecycle)
        for base, find in (("/api/projects/{project}", False), ("/api/executions", True)):
            _add_execution_routes(app, base, find)
        base = "/api/projects/{project}"
        app.router.add_post(f"{base}/runs", json_errors(_run))
        app.router.add_get(f"{base}/executions", json_errors(_executions))
        app.router.add_get(f"{base}/artifacts", json_errors(_artifacts))
        app.router.add_get(f"{base}/artifacts/{{name}}", json_errors(_artifact))
        app.router.add_get(f"{base}/artifacts/{{name}}/export", json_errors(_export))

    return setup


async def _settle_left_running(coordinator: Coordinator) -> None:
    try:
        await coordinator.settle_left_running()
    except Exception:  # the server runs on; record() still settles each one when asked
        coordinator.log.exception("settling executions left running failed")


async def _check_cluster(coordinator: Coordinator) -> None:
    """Join the cluster and probe its node types now, not at the first run."""
    try:
        await coordinator.engine(ExecutorKind.RAY)
    except Exception as exc:  # every run says it again until the nodes are fixed
        coordinator.log.warning("%s", exc)


def _add_execution_routes(app: web.Application, base: str, find: bool) -> None:
    one = f"{base}/{{execution}}" if find else f"{base}/executions/{{execution}}"
    app.router.add_get(one, json_errors(_record))
    app.router.add_post(f"{one}/cancel", json_errors(_cancel))
    app.router.add_post(f"{one}/jobs/{{job}}/cancel", json_errors(_cancel))
    app.router.add_post(f"{one}/jobs/{{job}}/restart", json_errors(_restart))
    app.router.add_post(f"{one}/rerun", json_errors(_rerun))
    app.router.add_get(f"{one}/jobs/{{job}}/images/{{name}}", json_errors(_image))
    app.router.add_get(f"{one}/artifacts/{{hash}}", json_errors(_execution_artifact))


# ----- request helpers ---------------------------------------------------------------------


async def _project(request: web.Request) -> str:
    project = request.match_info.get("project")
    if project is None:
        # Who asks comes first: an unknown token learns nothing about which ids exist.
        authorizer = request.app[AUTHORIZER]
        try:
            user = await authorizer.authenticate(request_token(request))
        except AuthError as exc:
            raise web.HTTPUnauthorized(
                text=json.dumps({"error": exc.reason}), content_type="application/json"
            ) from None
        coordinator = request.app[COORDINATOR]
        execution = request.match_info["execution"]
        project = coordinator.find_project(execution)
        # Another project's id answers as an unknown one: a 403 would name the project.
        if await authorizer.role(user, project) is None:
            raise coordinator.unknown_execution(execution)
    return project


_ACCESS = RouteAccess(
    COORDINATOR,
    project=_project,
    writer_hint="; running and changing executions needs the writer or owner role",
)
_reader = _ACCESS.reader
_writer = _ACCESS.writer
_text = optional_text


def _flag(body: dict[str, Any], key: str) -> bool:
    value = body.get(key, False)
    if not isinstance(value, bool):
        raise CoordinatorError(f"{key!r} must be true or false")
    return value


def _gpus(body: dict[str, Any]) -> float | None:
    """A run's GPU count: absent or null (the nodes' own settings), else a number >= 0."""
    value = body.get("gpus")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not (
        0 <= value < float("inf")
    ):
        raise CoordinatorError("'gpus' must be a number of GPUs, 0 or more (e.g. 1, or 0.5 "
                               "to share one), or null for each node's own setting")
    return float(value)


def _branch(request: web.Request) -> str:
    return request.query.get("branch", "main")


# ----- handlers ----------------------------------------------------------------------------


async def _run(request: web.Request) -> web.Response:
    coordinator, project, principal, body = await _writer(request)
    pipeline = _text(body, "pipeline")
    if pipeline is None:
        raise CoordinatorError('name the pipeline to run: {"pipeline": "NAME or id"}')
    record = await coordinator.run(
        project,
        pipeline,
        branch=_text(body, "branch", "main") or "main",
        executor=_text(body, "executor"),
        use_cache=not _flag(body, "no_cache"),
        by=principal.user,
        ray_address=_text(body, "ray_address"),
        gpus=_gpus(body),
    )
    return web.json_response(record, status=201)


async def _executions(request: web.Request) -> web.Response:
    coordinator, project, _ = await _reader(request)
    rows = await coordinator.executions(project, _branch(request))
    return web.json_response({"project": project, "executions": rows})


async def _record(request: web.Request) -> web.Response:
    coordinator, project, _ = await _reader(request)
    return web.json_response(await coordinator.record(project, request.match_info["execution"]))


async def _cancel(request: web.Request) -> web.Response:
    coordinator, project, _, _ = await _writer(request)
    execution = request.match_info["execution"]
    coordinator.cancel(project, execution, request.match_info.get("job"))
    return web.json_response(await coordinator.record(project, execution), status=202)


async def _restart(request: web.Request) -> web.Response:
    coordinator, project, principal, body = await _writer(request)
    record = await coordinator.restart(
        project, request.match_info["execution"], request.match_info["job"], by=principal.user,
        executor=_text(body, "executor"),
    )
    return web.json_response(record, status=202)


async def _rerun(request: web.Request) -> web.Response:
    coordinator, project, principal, body = await _writer(request)
    record = await coordinator.rerun(
        project,
        request.match_info["execution"],
        use_cache=not _flag(body, "no_cache"),
        executor=_text(body, "executor"),
        by=principal.user,
    )
    return web.json_response(record, status=201)


async def _image(request: web.Request) -> web.Response:
    from ._images import png_bytes

    coordinator, project, _ = await _reader(request)
    form = request.query.get("format", "png")
    if form not in ("png", "raw"):
        raise CoordinatorError("format must be png or raw")
    max_side = None
    if "max_side" in request.query:
        try:
            max_side = int(request.query["max_side"])
        except ValueError:
            max_side = 0
        if not 1 <= max_side <= 4096:
            raise CoordinatorError("max_side must be a whole number of pixels from 1 to 4096")
    pixels = await coordinator.queries.image(
        project, request.match_info["execution"], request.match_info["job"],
        request.match_info["name"], max_side,
    )
    shape = ",".join(str(n) for n in pixels.shape)
    if form == "raw":
        return web.Response(body=pixels.tobytes(), content_type="application/octet-stream",
                            headers={"X-Forge-Shape": shape})
    return web.Response(body=png_bytes(pixels), content_type="image/png",
                        headers={"X-Forge-Shape": shape})


async def _execution_artifact(request: web.Request) -> web.Response:
    coordinator, project, _ = await _reader(request)
    summary = await coordinator.queries.execution_artifact(
        project, request.match_info["execution"], request.match_info["hash"]
    )
    return web.json_response(summary, dumps=_dumps)


async def _artifacts(request: web.Request) -> web.Response:
    coordinator, project, _ = await _reader(request)
    artifacts = await coordinator.queries.artifacts(project, _branch(request))
    return web.json_response({"project": project, "artifacts": artifacts})


async def _artifact(request: web.Request) -> web.Response:
    coordinator, project, _ = await _reader(request)
    summary = await coordinator.queries.artifact_summary(
        project, request.match_info["name"], _branch(request)
    )
    return web.json_response(summary, dumps=_dumps)


async def _export(request: web.Request) -> web.StreamResponse:
    coordinator, project, _ = await _reader(request)
    name = request.match_info["name"]
    async with coordinator.queries.exported(project, name, _branch(request)) as path:
        response = web.StreamResponse(
            headers={
                "Content-Type": "application/octet-stream",
                "Content-Disposition": f'attachment; filename="{path.name}"',
                "Content-Length": str(path.stat().st_size),
            }
        )
        await response.prepare(request)
        with path.open("rb") as file:
            while chunk := file.read(1 << 20):
                await response.write(chunk)
        await response.write_eof()
        return response


def _dumps(value: Any) -> str:
    # Statistics of an all-NaN tensor are NaN: JSON has no NaN, so send null.
    return json.dumps(_finite(value))


def _finite(value: Any) -> Any:
    if isinstance(value, float) and value != value:  # noqa: PLR0124 - NaN check
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value
