"""The coordinator: run requests become executions, written live into execution documents.

Running a pipeline: validate it (every problem, each naming its node), commit and tag the exact
state (``run/{id}``), create the execution document (one queued job per node, the pipeline as it
runs with its operation code), record the summary in the project, and start the engine with a
callback whose events an :class:`~._writer.ExecutionWriter` writes into the document. When the
run ends, the values reaching *Output* operations are published in the project's ``artifacts``.

Restart and rerun plan from the ``run/{id}`` tag, so they work after a server restart and
whatever has been edited since. Executors start lazily, on the first run that needs them
(``_engines``); user code never runs in this process (jobs run in child processes or Ray
workers, artifacts are read by a child process, see ``_inspect`` and ``_queries``).

Which project an execution id belongs to, and which artifacts a project may read, come from the
server's own records (``_project_records``), never from documents, which writers can edit: ids
are handed out unique across the server, artifacts become a project's as its jobs store them,
and a run resolves only the project's own artifacts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pycrdt import Doc

from forge_ops.schema import (
    FINISHED_STATUSES,
    ExecutionDoc,
    ExecutionSnapshot,
    JobStatus,
    Project,
    ProjectDoc,
    now_iso,
)
from forge_server.history import History, HistoryError
from forge_server.relay.rooms import RoomManager, execution_room, project_room

from ._config import CoordinatorConfig
from ._engines import Engines
from ._errors import Conflict, CoordinatorError, NotFound
from ._lookup import Lookup, shown
from ._own_data import new_execution_id, own_artifacts, prepare_own
from ._planning import (
    OUTPUT_OPERATION,
    Prepared,
    as_it_ran,
    find_job,
    find_pipeline,
    match_job,
    validate,
    with_gpus,
)
from ._project_records import ProjectRecords
from ._publishing import publish, published_artifacts
from ._queries import ArtifactQueries
from ._records import ExecutionRecordJson, execution_record, previous_result
from ._recovery import settle_interrupted, settle_left_running
from ._sources import ExecutionSources
from ._writer import ExecutionWriter, both

if TYPE_CHECKING:
    from forge_ops.artifacts import ArtifactStore
    from forge_ops.execution import Engine, EventCallback, ExecutionHandle, ExecutionResult, Plan

_log = logging.getLogger(__name__)
_RESULTS_KEPT = 1000


@dataclass
class _Live:
    """An execution the engine is running now."""

    project: str
    branch: str
    execution: str
    plan: Plan
    #: The pipeline as it runs (which jobs publish what).
    snapshot: ExecutionSnapshot
    handle: ExecutionHandle
    writer: ExecutionWriter
    by: str | None
    done: asyncio.Event = field(default_factory=asyncio.Event)
    result: ExecutionResult | None = None


class Coordinator:
    """Turns run, rerun, restart and cancel requests into executions on one relay;
    ``queries`` reads what they produced."""

    def __init__(
        self,
        rooms: RoomManager,
        history: History,
        config: CoordinatorConfig,
        records: ProjectRecords,
        *,
        log: logging.Logger | None = None,
    ) -> None:
        self.rooms = rooms
        self.history = history
        self.config = config
        self.records = records
        self.log = log or _log
        self.lookup = Lookup(rooms, history, records)
        from forge_ops.execution import StoreAccess

        #: How every process reaches the artifact store (applied here: the server's own
        #: processes inherit it; Ray workers get it through their runtime_env).
        self.access = StoreAccess(config.artifacts, config.store_options, config.forward_env)
        if self.access.protocol is not None:
            self.access.apply()
        self.engines = Engines(config, lambda: self.store, self.log, self.access)
        self.queries = ArtifactQueries(self.lookup, lambda: self.store, config)
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
        await self.engines.stop()

    @property
    def store(self) -> ArtifactStore:
        if self._store is None:
            from forge_ops.artifacts import ArtifactStore

            self._store = ArtifactStore(self.config.artifacts)
        return self._store

    async def engine(self, kind: str | None = None, ray_address: str | None = None) -> Engine:
        """The engine of an executor kind, starting the executor on first use."""
        return await self.engines.get(kind, ray_address)

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
        gpus: float | None = None,
    ) -> ExecutionRecordJson:
        """Validate, commit and tag, then start running ``pipeline`` (id or name).

        ``gpus``: GPUs for each job that runs a network (see ``with_gpus``); None keeps the
        nodes' own settings. ``use_cache=False`` recomputes every job."""
        async with self.rooms.hold(self.lookup.branch_room(project, branch)) as room:
            current = self.own_artifacts(project, ProjectDoc(room.doc).to_plain())
        pipeline_id = find_pipeline(current, pipeline)
        validate(current, pipeline_id)
        self._prepare(project, current, pipeline_id)  # refused before anything is recorded
        engine = await self.engine(executor, ray_address)
        execution = await self._new_execution(project)
        commit = await self.history.commit_and_tag_run(project, branch, execution, by=by)
        committed = self.own_artifacts(  # what runs
            project, await self.history.store.run(self.history.store.content, commit))
        if committed != current:  # edited while the executor started: check what runs
            validate(committed, pipeline_id)
        return await self._launch(
            project, branch, execution,
            prepared=with_gpus(self._prepare(project, committed, pipeline_id), committed, gpus),
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
    ) -> ExecutionRecordJson:
        """Run the pipeline exactly as ``execution`` ran it, from its ``run/{id}`` tag, on
        ``executor`` or else the one it ran on (see ``Engines.resume_kind``)."""
        original = await self.lookup.document(project, execution)
        snapshot = original["meta"]["pipeline"]
        commit, content = await self.lookup.tagged(project, execution)
        engine = await self.engine(
            self.engines.resume_kind(executor, original["meta"]["executor"]))
        prepared = as_it_ran(self._prepare(project, content, str(snapshot.get("pipeline"))),
                             snapshot)
        new = await self._new_execution(project)
        await self._tag_run(project, new, commit, by)
        branch = str(snapshot.get("branch") or "main")
        return await self._launch(
            project, branch, new, prepared=prepared, commit=commit, engine=engine,
            use_cache=use_cache, by=by, rerun_of=execution,
        )

    async def run_commit(
        self, project: str, branch: str, pipeline_id: str, commit: str, content: Project, *,
        executor: str | None = None, by: str | None = None,
        observe: EventCallback | None = None,
    ) -> ExecutionRecordJson:
        """Run ``pipeline_id`` as it is in ``content``, the state of ``commit`` (not necessarily
        a branch head: a sweep trial's settings), tagged ``run/{id}``. ``observe`` sees every
        engine event as it happens, on the engine's thread."""
        content = self.own_artifacts(project, content)
        validate(content, pipeline_id)
        prepared = self._prepare(project, content, pipeline_id)
        engine = await self.engine(executor)
        execution = await self._new_execution(project)
        await self._tag_run(project, execution, commit, by)
        return await self._launch(project, branch, execution, prepared=prepared, commit=commit,
                                  engine=engine, use_cache=True, by=by, observe=observe)

    async def _tag_run(self, project: str, execution: str, commit: str, by: str | None) -> None:
        try:
            await self.history.store.run(self.history.store.add_tag, project,
                                         f"run/{execution}", commit, by)
        except HistoryError as exc:
            raise CoordinatorError(exc.message) from exc

    async def restart(
        self,
        project: str,
        execution: str,
        job: str,
        *,
        by: str | None = None,
        executor: str | None = None,
    ) -> ExecutionRecordJson:
        """Re-run one job and everything downstream of it; the other jobs keep their results
        (those that did not succeed run again too, see ``Engine.restart``). It runs on
        ``executor``, else on the one the execution ran on (see ``Engines.resume_kind``)."""
        self.lookup.execution_room(project, execution)  # 404 first: no news of others' runs
        self._not_running(execution)
        self._starting.add(execution)  # until it is live: a second restart is refused
        try:
            await settle_interrupted(self.lookup, project, execution, self.log)
            return await self._restart(project, execution, job, by, executor)
        finally:
            self._starting.discard(execution)

    async def _restart(
        self, project: str, execution: str, job: str, by: str | None, executor: str | None
    ) -> ExecutionRecordJson:
        plain = await self.lookup.document(project, execution)
        snapshot = plain["meta"]["pipeline"]
        job_id = find_job(snapshot, plain["jobs"], job)
        commit, content = await self.lookup.tagged(project, execution)
        prepared = as_it_ran(self._prepare(project, content, str(snapshot.get("pipeline"))),
                             snapshot)
        engine = await self.engine(self.engines.resume_kind(executor, plain["meta"]["executor"]))
        if engine.executor.name != plain["meta"]["executor"]:
            await self._record_executor(project, execution, engine.executor.name, by)
        branch = str(snapshot.get("branch") or "main")
        # The kept jobs' outputs are read from the document: only the project's own count.
        previous = previous_result(execution, plain,
                                   readable=lambda digest: self.records.readable(project, digest))
        writer = self._writer(project, branch, execution, by, commit)
        handle = engine.restart(prepared.plan, previous, job_id, writer.on_event, commit=commit)
        self._follow(_Live(project, branch, execution, prepared.plan,
                           prepared.snapshot(branch, by), handle, writer, by))
        record = await self.record(project, execution)
        # The engine's first writes (these same statuses) may not have landed yet.
        record["status"] = JobStatus.RUNNING.value
        for rerun in handle.to_run:
            entry = record["jobs"][rerun]
            entry["status"] = JobStatus.QUEUED.value
            entry["started"] = entry["finished"] = entry["duration"] = None
            entry["error"] = entry["cached_from"] = None
            entry["outputs"] = {}
        return record

    async def _record_executor(
        self, project: str, execution: str, executor: str, by: str | None
    ) -> None:
        """The execution now runs on ``executor``: its record says so (and its next restart
        uses it)."""
        async with self.rooms.hold(execution_room(project, execution)) as room:
            with room.edit(by) as doc:
                ExecutionDoc(doc).set_executor(executor)
            await room.written()

    def cancel(self, project: str, execution: str, job: str | None = None, *,
               reason: str = "cancelled by request") -> None:
        """Cancel a running execution or one of its jobs (and so its downstream); ``reason``
        becomes the cancelled jobs' error."""
        live = self._live.get(execution)
        if live is None or live.project != project:
            self.lookup.execution_room(project, execution)  # 404 when it does not exist
            raise Conflict(f"execution {execution} is not running; nothing to cancel")
        if job is None:
            live.handle.cancel(reason=reason)
            return
        names = {j: s.name for j, s in live.plan.jobs.items()}
        job_id = match_job(job, names, f"execution {execution}")
        status = live.handle.records()[job_id].status
        if status in FINISHED_STATUSES:
            raise Conflict(f"job {names[job_id]} of execution {execution} already finished "
                           f"({status.value}); cancel a queued or running job, or the whole "
                           "execution")
        live.handle.cancel(job_id, reason)

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
        observe: EventCallback | None = None,
    ) -> ExecutionRecordJson:
        self._starting.add(execution)
        try:
            plan = prepared.plan
            snapshot = prepared.snapshot(branch, by, rerun_of)
            document = ExecutionDoc(Doc())
            document.init(snapshot, commit, engine.executor.name)
            for job_id in plan.order:
                document.add_job(job_id, plan.jobs[job_id].operation, job_id=job_id)
            await self.rooms.create(execution_room(project, execution),
                                    document.doc.get_update())
            async with self.rooms.hold(project_room(project, branch)) as room:
                with room.edit(by) as project_doc:
                    ProjectDoc(project_doc).record_execution(
                        plan.pipeline, commit, by, execution_id=execution
                    )
                await room.written()
            writer = self._writer(project, branch, execution, by, commit)
            on_event = writer.on_event if observe is None else both(writer.on_event, observe)
            handle = engine.start(
                plan, on_event, execution=execution, commit=commit, use_cache=use_cache
            )
            self.log.info(
                "execution %s of %s/%s (%s) started on %s by %s",
                execution, project, prepared.name, commit[:10], engine.executor.name, by,
            )
            self._follow(_Live(project, branch, execution, plan, snapshot, handle, writer, by))
            return await self.record(project, execution)
        finally:
            self._starting.discard(execution)

    def _writer(self, project: str, branch: str, execution: str, by: str | None,
                commit: str) -> ExecutionWriter:
        writer = ExecutionWriter(
            self.rooms,
            execution_room(project, execution),
            project_room(project, branch),
            execution,
            author=by,
            interval=self.config.write_interval_s,
            log=self.log,
            sources=ExecutionSources(self.records, project, execution, commit),
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
            try:
                live.result = await asyncio.wrap_future(live.handle.future)
            except RuntimeError:
                self.log.error("execution %s ended without a result", live.execution)
                live.writer.finish_as(JobStatus.FAILED, now_iso("milliseconds"))
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
        """Record what reached the Output jobs this run ran in the project's ``artifacts``."""
        states = {job_id: record.state() for job_id, record in result.jobs.items()}
        published = published_artifacts(live.snapshot, states, only=live.handle.to_run)
        await publish(self.rooms, self.store, project_room(live.project, live.branch),
                      published, execution=live.execution, by=live.by)

    # ----- reading ------------------------------------------------------------------------

    async def record(self, project: str, execution: str) -> ExecutionRecordJson:
        """The execution's record: status, each job's status, duration, cache origin, outputs."""
        await self._settle_interrupted(project, execution)
        record = execution_record(project, execution,
                                  await self.lookup.document(project, execution))
        result = self.results.get(execution)
        record["tasks_launched"] = result.tasks_launched if result is not None else None
        record["running"] = execution in self._live
        return record

    async def executions(self, project: str, branch: str = "main") -> list[dict[str, Any]]:
        """The execution summaries of a branch, oldest first."""
        room_name = self.lookup.branch_room(project, branch)
        async with self.rooms.hold(room_name) as room:
            plain = ProjectDoc(room.doc).to_plain()
        left = [xid for xid, s in plain["executions"].items()
                if s["status"] not in FINISHED_STATUSES and xid not in self._live
                and xid not in self._starting]
        if left:  # a server stopped mid-run left them: marked failed, as record() does
            for xid in left:
                with contextlib.suppress(NotFound):
                    await self._settle_interrupted(project, xid)
            async with self.rooms.hold(room_name) as room:
                plain = ProjectDoc(room.doc).to_plain()
        names = {pid: p["name"] for pid, p in plain["pipelines"].items()}
        rows = [{"execution": xid, **dict(s), "pipeline_name": names.get(s["pipeline"])}
                for xid, s in plain["executions"].items()]
        return sorted(rows, key=lambda r: (r["created"], r["execution"]))

    def find_project(self, execution: str) -> str:
        """The project an execution id belongs to (ids are unique across the server)."""
        project = self.records.project_of(execution)
        if project is None or not self.lookup.exists(project, execution):
            raise self.unknown_execution(execution)
        return project

    @staticmethod
    def unknown_execution(execution: str) -> NotFound:
        """The answer to an id nobody may see: the same whether it does not exist or belongs
        to a project the caller has no role on (a 403 would name that project)."""
        return NotFound(
            f"no execution {shown(execution)}; list them with `forge executions PROJECT`")

    def own_artifacts(self, project: str, content: Project) -> Project:
        """``content`` with only the artifacts the project may read (see ``_own_data``)."""
        return own_artifacts(self.records, project, content)

    async def settle_left_running(self) -> int:
        """At start: settle every execution a previous server process left queued or running
        (it crashed, or was killed), so its documents say so at once; how many were."""
        return await settle_left_running(
            self.lookup, lambda xid: xid in self._live or xid in self._starting, self.log)

    # ----- helpers ------------------------------------------------------------------------

    async def _settle_interrupted(self, project: str, execution: str) -> None:
        """An unfinished execution nobody runs (the server stopped mid-run) becomes failed."""
        if execution in self._live or execution in self._starting:
            return
        await settle_interrupted(self.lookup, project, execution, self.log)

    def _prepare(self, project: str, content: Project, pipeline_id: str) -> Prepared:
        return prepare_own(self.records, project, content, pipeline_id)

    async def _new_execution(self, project: str) -> str:
        return await new_execution_id(self.rooms, self.history.store, self.records, project)

    def _not_running(self, execution: str) -> None:
        if execution in self._live or execution in self._starting:
            raise Conflict(
                f"execution {execution} is still running; wait for it or cancel it first"
            )


__all__ = ["OUTPUT_OPERATION", "Coordinator"]
