"""The coordinator: run requests become executions, written live into execution documents.

Running a pipeline: validate it (every problem, each naming its node), commit and tag the exact
state (``run/{id}``), create the execution document (one queued job per node, the pipeline as it
runs with its operation code), record the summary in the project, and start the engine with a
callback whose events an :class:`~._writer.ExecutionWriter` writes into the document. When the
run ends, the values reaching *Output* operations are published in the project's ``artifacts``.

Restart and rerun plan from the ``run/{id}`` tag, so they work after a server restart and
whatever has been edited since. Executors start lazily, on the first run that needs them; user
code never runs in this process (jobs run in child processes or Ray workers, artifacts are read
by a child process, see ``_inspect``).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import shutil
import tempfile
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pycrdt import Doc

from forge_ops.schema import (
    FINISHED_STATUSES,
    ExecutionDoc,
    JobStatus,
    Project,
    ProjectDoc,
    SchemaError,
    new_id,
)
from forge_server.history import History, HistoryError
from forge_server.relay.rooms import RoomManager, execution_room, project_room

from ._config import CoordinatorConfig, ExecutorKind
from ._errors import Conflict, CoordinatorError, NotFound
from ._inspect import export_suffix, inspect_artifact
from ._planning import (
    OUTPUT_OPERATION,
    Prepared,
    find_job,
    find_pipeline,
    match_job,
    prepare,
    safe_file_name,
    validate,
)
from ._records import execution_record, previous_result
from ._writer import ExecutionWriter

if TYPE_CHECKING:
    from forge_ops.artifacts import ArtifactStore
    from forge_ops.execution import Engine, ExecutionHandle, ExecutionResult, Plan

_log = logging.getLogger(__name__)
_RESULTS_KEPT = 1000


@dataclass
class _Live:
    """An execution the engine is running now."""

    project: str
    branch: str
    execution: str
    plan: Plan
    outputs: frozenset[str]
    handle: ExecutionHandle
    writer: ExecutionWriter
    by: str | None
    done: asyncio.Event = field(default_factory=asyncio.Event)
    result: ExecutionResult | None = None


class Coordinator:
    """Turns run, rerun, restart and cancel requests into executions on one relay."""

    def __init__(
        self,
        rooms: RoomManager,
        history: History,
        config: CoordinatorConfig,
        *,
        log: logging.Logger | None = None,
    ) -> None:
        self.rooms = rooms
        self.history = history
        self.config = config
        self.log = log or _log
        self._engines: dict[ExecutorKind, Engine] = {}
        self._engine_lock = asyncio.Lock()
        self._live: dict[str, _Live] = {}
        self._starting: set[str] = set()
        self._followers: set[asyncio.Task[None]] = set()
        self._store: ArtifactStore | None = None
        self.results: dict[str, ExecutionResult] = {}
        """The engine's result of recently finished executions (tasks launched, attempts)."""

    # ----- lifecycle ----------------------------------------------------------------------

    async def stop(self) -> None:
        """Cancel running executions, write their last state, shut the executors down."""
        for live in list(self._live.values()):
            live.handle.cancel()
        if self._followers:
            await asyncio.wait(list(self._followers), timeout=self.config.cancel_grace_s + 15)
        for task in list(self._followers):
            task.cancel()
        await asyncio.gather(*self._followers, return_exceptions=True)
        engines, self._engines = list(self._engines.values()), {}
        for engine in engines:
            try:
                await asyncio.to_thread(engine.executor.shutdown)
            except Exception:
                self.log.exception("shutting down the %s executor failed", engine.executor.name)

    @property
    def store(self) -> ArtifactStore:
        if self._store is None:
            from forge_ops.artifacts import ArtifactStore

            self._store = ArtifactStore(self.config.artifacts)
        return self._store

    async def engine(self, kind: str | None = None, ray_address: str | None = None) -> Engine:
        """The engine of an executor kind, starting the executor on first use."""
        try:
            executor_kind = ExecutorKind(kind or self.config.executor)
        except ValueError:
            raise CoordinatorError(
                f"unknown executor {kind!r}; use one of {', '.join(ExecutorKind)}"
            ) from None
        if ray_address and ray_address != self.config.ray_address:
            configured = self.config.ray_address or "a local Ray runtime it starts itself"
            raise CoordinatorError(
                f"this server runs Ray jobs on {configured}, not {ray_address}; restart "
                f"`forge serve --ray-address {ray_address}` to use that cluster"
            )
        async with self._engine_lock:
            engine = self._engines.get(executor_kind)
            if engine is None:
                engine = await self._start_engine(executor_kind)
                self._engines[executor_kind] = engine
        return engine

    async def _start_engine(self, kind: ExecutorKind) -> Engine:
        from forge_ops.execution import Engine, Executor, LocalExecutor, RayExecutor

        executor: Executor
        if kind is ExecutorKind.LOCAL:
            executor = LocalExecutor(self.config.local_workers)
        else:
            executor = RayExecutor(self.config.ray_address)
        self.log.info("starting the %s executor", kind)
        try:
            await asyncio.to_thread(executor.start)
        except Exception as exc:
            where = f" at {self.config.ray_address}" if kind is ExecutorKind.RAY else ""
            raise CoordinatorError(
                f"cannot start the {kind} executor{where}: {exc}; check the server's "
                "--executor / --ray-address settings"
            ) from exc
        store = await asyncio.to_thread(lambda: self.store)
        return Engine(store, executor, cancel_grace=self.config.cancel_grace_s)

    # ----- running ------------------------------------------------------------------------

    async def run(
        self,
        project: str,
        pipeline: str,
        *,
        branch: str = "main",
        executor: str | None = None,
        use_cache: bool = True,
        by: str | None = None,
        ray_address: str | None = None,
    ) -> dict[str, Any]:
        """Validate, commit and tag, then start running ``pipeline`` (id or name)."""
        room_name = self._branch_room(project, branch)
        async with self.rooms.hold(room_name) as room:
            current = ProjectDoc(room.doc).to_plain()
        pipeline_id = find_pipeline(current, pipeline)
        validate(current, pipeline_id)
        engine = await self.engine(executor, ray_address)
        execution = new_id()
        commit = await self.history.commit_and_tag_run(project, branch, execution, by=by)
        committed = self.history.store.content(commit)  # exactly the state that runs
        validate(committed, pipeline_id)
        return await self._launch(
            project, branch, execution, prepared=prepare(committed, pipeline_id),
            commit=commit, engine=engine, use_cache=use_cache, by=by,
        )

    async def rerun(
        self,
        project: str,
        execution: str,
        *,
        use_cache: bool = True,
        executor: str | None = None,
        by: str | None = None,
    ) -> dict[str, Any]:
        """Run the pipeline exactly as ``execution`` ran it, from its ``run/{id}`` tag."""
        original = await self._document(project, execution)
        snapshot = original["meta"]["pipeline"]
        commit, content = self._tagged(project, execution)
        engine = await self.engine(executor or original["meta"]["executor"])
        prepared = prepare(content, str(snapshot.get("pipeline")))
        new = new_id()
        try:
            self.history.store.add_tag(project, f"run/{new}", commit, by)
        except HistoryError as exc:
            raise CoordinatorError(exc.message) from exc
        branch = str(snapshot.get("branch") or "main")
        return await self._launch(
            project, branch, new, prepared=prepared, commit=commit, engine=engine,
            use_cache=use_cache, by=by, rerun_of=execution,
        )

    async def restart(
        self, project: str, execution: str, job: str, *, by: str | None = None
    ) -> dict[str, Any]:
        """Re-run one job and everything downstream of it; the other jobs keep their results."""
        self._execution_room(project, execution)  # 404 first: no news of other projects' runs
        self._not_running(execution)
        self._starting.add(execution)  # until it is live: a second restart is refused
        try:
            await self._settle_interrupted(project, execution, ours=True)
            return await self._restart(project, execution, job, by)
        finally:
            self._starting.discard(execution)

    async def _restart(
        self, project: str, execution: str, job: str, by: str | None
    ) -> dict[str, Any]:
        room_name = self._execution_room(project, execution)
        async with self.rooms.hold(room_name) as room:
            document = ExecutionDoc(room.doc)
            previous = previous_result(execution, document)
            plain = document.to_plain()
        snapshot = plain["meta"]["pipeline"]
        job_id = find_job(snapshot, plain["jobs"], job)
        commit, content = self._tagged(project, execution)
        prepared = prepare(content, str(snapshot.get("pipeline")))
        engine = await self.engine(plain["meta"]["executor"])
        branch = str(snapshot.get("branch") or "main")
        # The job and its downstream run again, forced; upstream jobs that did not succeed
        # (failed, cancelled, interrupted) run again too, from the cache where it has them.
        rerun = prepared.plan.downstream(job_id)
        keep = {
            j: r for j, r in previous.jobs.items()
            if j not in rerun and r.status in (JobStatus.SUCCEEDED, JobStatus.CACHED)
        }
        writer = self._writer(project, branch, execution, by)
        handle = engine.start(prepared.plan, writer.on_event, execution=execution,
                              commit=commit, keep=keep, force=rerun)
        self._follow(
            _Live(project, branch, execution, prepared.plan, prepared.outputs, handle, writer, by)
        )
        record = await self.record(project, execution)
        # The engine's first writes (these same statuses) may not have landed yet.
        record["status"] = JobStatus.RUNNING.value
        for job_id in prepared.plan.jobs.keys() - keep.keys():
            record["jobs"][job_id].update(status=JobStatus.QUEUED.value, started=None,
                                          finished=None, duration=None, error=None,
                                          cached_from=None, outputs={})
        return record

    def cancel(self, project: str, execution: str, job: str | None = None) -> None:
        """Cancel a running execution or one of its jobs (and so its downstream)."""
        live = self._live.get(execution)
        if live is None or live.project != project:
            self._execution_room(project, execution)  # 404 when it does not exist
            raise Conflict(f"execution {execution} is not running; nothing to cancel")
        if job is None:
            live.handle.cancel()
            return
        names = {j: s.name for j, s in live.plan.jobs.items()}
        job_id = match_job(job, names, f"execution {execution}")
        status = live.handle.records()[job_id].status
        if status in FINISHED_STATUSES:
            raise Conflict(f"job {names[job_id]} of execution {execution} already finished "
                           f"({status.value}); cancel a queued or running job, or the whole "
                           "execution")
        live.handle.cancel(job_id)

    async def wait(self, execution: str) -> None:
        """Wait until a running execution is finished and its last state written."""
        live = self._live.get(execution)
        if live is not None:
            await live.done.wait()

    async def _launch(
        self,
        project: str,
        branch: str,
        execution: str,
        *,
        prepared: Prepared,
        commit: str,
        engine: Engine,
        use_cache: bool,
        by: str | None,
        rerun_of: str | None = None,
    ) -> dict[str, Any]:
        self._starting.add(execution)
        try:
            return await self._create_and_start(
                project, branch, execution, prepared=prepared, commit=commit, engine=engine,
                use_cache=use_cache, by=by, rerun_of=rerun_of,
            )
        finally:
            self._starting.discard(execution)

    async def _create_and_start(
        self,
        project: str,
        branch: str,
        execution: str,
        *,
        prepared: Prepared,
        commit: str,
        engine: Engine,
        use_cache: bool,
        by: str | None,
        rerun_of: str | None,
    ) -> dict[str, Any]:
        plan, pipeline_name = prepared.plan, prepared.name
        snapshot = {
            **plan.snapshot(),
            "name": pipeline_name,
            "branch": branch,
            "by": by,
            "order": list(plan.order),
            "rerun_of": rerun_of,
            "publishes": sorted(prepared.outputs),
        }
        doc: Doc = Doc()
        document = ExecutionDoc(doc)
        document.init(snapshot, commit, engine.executor.name)
        for job_id in plan.order:
            document.add_job(job_id, plan.jobs[job_id].operation, job_id=job_id)
        await self.rooms.create(execution_room(project, execution), doc.get_update())
        async with self.rooms.hold(project_room(project, branch)) as room:
            with room.edit(by) as project_doc:
                ProjectDoc(project_doc).record_execution(
                    plan.pipeline, commit, by, execution_id=execution
                )
            await room.written()
        writer = self._writer(project, branch, execution, by)
        handle = engine.start(
            plan, writer.on_event, execution=execution, commit=commit, use_cache=use_cache
        )
        self.log.info(
            "execution %s of %s/%s (%s) started on %s by %s",
            execution, project, pipeline_name, commit[:10], engine.executor.name, by,
        )
        self._follow(_Live(project, branch, execution, plan, prepared.outputs, handle, writer, by))
        return await self.record(project, execution)

    def _writer(self, project: str, branch: str, execution: str, by: str | None) -> ExecutionWriter:
        writer = ExecutionWriter(
            self.rooms,
            execution_room(project, execution),
            project_room(project, branch),
            execution,
            author=by,
            interval=self.config.write_interval_s,
            log=self.log,
        )
        writer.start()
        return writer

    def _follow(self, live: _Live) -> None:
        self._live[live.execution] = live
        task = asyncio.get_running_loop().create_task(self._finish(live))
        self._followers.add(task)
        task.add_done_callback(self._followers.discard)

    async def _finish(self, live: _Live) -> None:
        """When the engine is done: publish Output artifacts, then write the final status."""
        try:
            # The engine signals from its own thread; polling its flag keeps no thread busy.
            while not live.handle.done():  # noqa: ASYNC110
                await asyncio.sleep(0.05)
            try:
                live.result = live.handle.wait(0)
            except RuntimeError:
                self.log.error("execution %s ended without a result", live.execution)
                live.writer.finish_as(JobStatus.FAILED, _now())
            if live.result is not None:
                self.results[live.execution] = live.result
                while len(self.results) > _RESULTS_KEPT:
                    del self.results[next(iter(self.results))]
                try:
                    await self._publish(live, live.result)
                except Exception:
                    self.log.exception("execution %s: publishing artifacts failed",
                                       live.execution)
        finally:
            await live.writer.close()
            self._live.pop(live.execution, None)
            live.done.set()

    async def _publish(self, live: _Live, result: ExecutionResult) -> None:
        """Record what reached each Output operation in the project's ``artifacts``."""
        published: list[tuple[str, str, str]] = []
        for job_id, record in result.jobs.items():
            spec = live.plan.jobs.get(job_id)
            if spec is None or job_id not in live.outputs:
                continue
            if record.status not in (JobStatus.SUCCEEDED, JobStatus.CACHED):
                continue
            artifact = record.inputs.get("data")
            if artifact is None:
                continue
            name = spec.attributes.get("name", "output")
            published.append((str(name), artifact, job_id))
        if not published:
            return
        infos = {h: await asyncio.to_thread(self.store.info, h) for _, h, _ in published}
        async with self.rooms.hold(project_room(live.project, live.branch)) as room:
            with room.edit(live.by) as doc:
                project = ProjectDoc(doc)
                for name, artifact, _job in published:
                    info = infos[artifact]
                    project.record_artifact(
                        name, artifact, info.kind, shape=info.shape, dtype=info.dtype,
                        nbytes=info.bytes, produced_by=live.execution,
                    )
            await room.written()

    # ----- reading ------------------------------------------------------------------------

    async def record(self, project: str, execution: str) -> dict[str, Any]:
        """The execution's record: status, each job's status, duration, cache origin, outputs."""
        await self._settle_interrupted(project, execution)
        async with self.rooms.hold(self._execution_room(project, execution)) as room:
            record = execution_record(project, execution, ExecutionDoc(room.doc))
        result = self.results.get(execution)
        record["tasks_launched"] = result.tasks_launched if result is not None else None
        record["running"] = execution in self._live
        return record

    async def executions(self, project: str, branch: str = "main") -> list[dict[str, Any]]:
        """The execution summaries of a branch, oldest first."""
        room_name = self._branch_room(project, branch)
        async with self.rooms.hold(room_name) as room:
            plain = ProjectDoc(room.doc).to_plain()
        left = [xid for xid, s in plain["executions"].items()
                if s.get("status") not in FINISHED_STATUSES and xid not in self._live
                and xid not in self._starting]
        if left:  # a server stopped mid-run left them: marked failed, as record() does
            for xid in left:
                with contextlib.suppress(NotFound):
                    await self._settle_interrupted(project, xid)
            async with self.rooms.hold(room_name) as room:
                plain = ProjectDoc(room.doc).to_plain()
        names = {pid: p.get("name") for pid, p in plain["pipelines"].items()}
        rows = [{"execution": xid, **dict(s), "pipeline_name": names.get(s.get("pipeline"))}
                for xid, s in plain["executions"].items()]
        return sorted(rows, key=lambda r: (r["created"], r["execution"]))

    def find_project(self, execution: str) -> str:
        """The project an execution id belongs to (ids are unique across projects)."""
        live = self._live.get(execution)
        if live is not None:
            return live.project
        for project in self.rooms.projects():
            with contextlib.suppress(ValueError):
                name = execution_room(project, execution)
                if self.rooms.loaded(name) is not None or self.rooms.store.exists(name):
                    return project
        raise NotFound(
            f"no execution {_shown(execution)}; list them with `forge executions PROJECT`")

    # ----- artifacts ----------------------------------------------------------------------

    async def artifacts(self, project: str, branch: str = "main") -> dict[str, dict[str, Any]]:
        """The named artifacts of a branch (what Output operations published)."""
        async with self.rooms.hold(self._branch_room(project, branch)) as room:
            artifacts = ProjectDoc(room.doc).to_plain()["artifacts"]
        return {name: dict(a) for name, a in sorted(artifacts.items())}

    async def artifact(self, project: str, name: str, branch: str = "main") -> dict[str, Any]:
        artifacts = await self.artifacts(project, branch)
        if name not in artifacts:
            names = ", ".join(artifacts) or "none yet: run a pipeline with an Output operation"
            raise NotFound(f"no artifact {name!r} in {project}/{branch}; artifacts: {names}")
        return {"name": name, **artifacts[name]}

    async def artifact_summary(
        self, project: str, name: str, branch: str = "main"
    ) -> dict[str, Any]:
        """The artifact's record plus provenance, shape, dtype and statistics."""
        record = await self.artifact(project, name, branch)
        summary = await inspect_artifact(
            self.store.location, record["hash"], limit_s=self.config.inspect_timeout_s
        )
        return {**record, "summary": summary}

    @contextlib.asynccontextmanager
    async def exported(
        self, project: str, name: str, branch: str = "main"
    ) -> AsyncIterator[Path]:
        """A temporary file holding the artifact as .npy/.npz/.pt/.json (deleted afterwards)."""
        record = await self.artifact(project, name, branch)
        suffix = export_suffix(str(record["kind"]))
        folder = Path(tempfile.mkdtemp(prefix="forge-export-"))
        try:
            result = await inspect_artifact(
                self.store.location, record["hash"], limit_s=self.config.inspect_timeout_s,
                destination=folder / f"{safe_file_name(name)}{suffix}",
            )
            yield Path(result["path"])
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    async def execution_artifact(
        self, project: str, execution: str, artifact_hash: str
    ) -> dict[str, Any]:
        """Summary of any output or image of an execution's jobs, named by its hash.

        Only hashes this execution produced are answered: the store is shared by all projects,
        and a reader of this project must not read another project's artifacts by hash."""
        plain = await self._document(project, execution)
        producers = [
            {"job": job_id, "port": port}
            for job_id, job in plain["jobs"].items()
            for port, digest in job["outputs"].items()
            if digest == artifact_hash
        ] + [
            {"job": job_id, "image": name}
            for job_id, names in plain["images"].items()
            for name, digest in names.items()
            if digest == artifact_hash
        ]
        if not producers:
            raise NotFound(
                f"execution {execution} produced no artifact {artifact_hash[:12]}…; its job "
                f"outputs are listed by GET /api/executions/{execution}"
            )
        summary = await inspect_artifact(
            self.store.location, artifact_hash, limit_s=self.config.inspect_timeout_s
        )
        return {"hash": artifact_hash, "execution": execution, "produced_by": producers,
                "summary": summary}

    async def image(
        self, project: str, execution: str, job: str, name: str, max_side: int | None = None
    ) -> Any:
        """The pixels (uint8 H×W×C) of image ``name`` that job ``job`` showed.

        Images are plain arrays in the store, so they are read here: nothing is unpickled."""
        from ._images import image_pixels

        plain = await self._document(project, execution)
        job = find_job(plain["meta"]["pipeline"], plain["jobs"], job)
        images = plain["images"].get(job)
        if not images or name not in images:
            shown = ", ".join(sorted(images or {})) or "none"
            raise NotFound(f"job {job} of execution {execution} showed no image {name!r}; "
                           f"its images: {shown}")
        store = self.store
        digest = images[name]

        def read() -> Any:
            from forge_ops.artifacts import ArtifactError

            try:
                info = store.info(digest)
            except ArtifactError as exc:
                raise NotFound(str(exc)) from None
            if info.kind != "array":
                raise CoordinatorError(
                    f"image {name!r} is stored as a {info.kind} artifact, not a plain array; "
                    "images are H×W(×C) arrays written by forge_ops.runtime.image"
                )
            return image_pixels(store.get(digest), max_side)

        return await asyncio.to_thread(read)

    # ----- helpers ------------------------------------------------------------------------

    def _branch_room(self, project: str, branch: str) -> str:
        try:
            name = project_room(project, branch)
        except ValueError:
            which = "branch" if _valid_room(project, "main") else "project"
            raise CoordinatorError(
                f"invalid {which} name {_shown(branch if which == 'branch' else project)}: "
                f"use letters, digits, '.', '_' or '-', starting with a letter or digit "
                f"(at most 100 characters)") from None
        rooms = self.rooms.project_rooms(project)
        if name not in rooms:
            if not rooms:
                raise NotFound(f"no project {project!r} on this server; create it first")
            branches = sorted(r.split("/", 1)[1] for r in rooms if "/executions/" not in r)
            raise NotFound(
                f"project {project!r} has no branch {branch!r}; branches: {', '.join(branches)}"
            )
        return name

    def _execution_room(self, project: str, execution: str) -> str:
        try:
            name: str | None = execution_room(project, execution)
        except ValueError:
            name = None  # no execution can have such an id
        if name is None or (self.rooms.loaded(name) is None
                            and not self.rooms.store.exists(name)):
            raise NotFound(
                f"no execution {_shown(execution)} in project {_shown(project)}; "
                f"list them with `forge executions {project if len(project) <= 40 else 'PROJECT'}`"
            )
        return name

    async def _document(self, project: str, execution: str) -> Mapping[str, Any]:
        async with self.rooms.hold(self._execution_room(project, execution)) as room:
            return ExecutionDoc(room.doc).to_plain()

    def _tagged(self, project: str, execution: str) -> tuple[str, Project]:
        """The commit an execution ran (its ``run/{id}`` tag) and that commit's content."""
        tag = self.history.store.tag(project, f"run/{execution}")
        if tag is None:
            raise Conflict(
                f"execution {execution} has no run/{execution} tag, so the state it ran cannot "
                "be restored; run the pipeline again instead"
            )
        return tag.commit, self.history.store.content(tag.commit)

    async def _settle_interrupted(self, project: str, execution: str, *, ours: bool = False
                                  ) -> None:
        """An unfinished execution nobody runs (the server stopped mid-run) becomes failed.

        ``ours``: the caller is the one starting it again (it is in ``_starting``)."""
        if execution in self._live or (execution in self._starting and not ours):
            return
        room_name = self._execution_room(project, execution)
        async with self.rooms.hold(room_name) as room:
            document = ExecutionDoc(room.doc)
            if document.meta.get("status") in FINISHED_STATUSES:
                return
            plain = document.to_plain()
            why = ("interrupted: the server stopped while this job was queued or running; "
                   f"restart it with `forge restart {execution} JOB`")
            with room.edit(None):
                for job_id, job in plain["jobs"].items():
                    if job["status"] not in FINISHED_STATUSES:
                        document.set_job_status(job_id, JobStatus.FAILED, error=why)
                document.set_status(JobStatus.FAILED)
            await room.written()
        branch = str(plain["meta"]["pipeline"].get("branch") or "main")
        with contextlib.suppress(CoordinatorError, SchemaError):
            async with self.rooms.hold(self._branch_room(project, branch)) as project_doc:
                with project_doc.edit(None) as doc:
                    ProjectDoc(doc).set_execution_status(execution, JobStatus.FAILED)
        self.log.warning("execution %s of %s was interrupted; marked failed", execution, project)

    def _not_running(self, execution: str) -> None:
        if execution in self._live or execution in self._starting:
            raise Conflict(
                f"execution {execution} is still running; wait for it or cancel it first"
            )


def _shown(name: str, limit: int = 40) -> str:
    """A name from a request, quoted for an error message, cut short if it is long."""
    return repr(name if len(name) <= limit else name[:limit] + "…")


def _valid_room(project: str, branch: str) -> bool:
    try:
        project_room(project, branch)
    except ValueError:
        return False
    return True


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")


__all__ = ["OUTPUT_OPERATION", "Coordinator"]
