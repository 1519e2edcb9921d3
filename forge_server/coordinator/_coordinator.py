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
    new_id,
    now_iso,
)
from forge_server.history import History, HistoryError
from forge_server.relay.rooms import RoomManager, execution_room, project_room

from ._config import CoordinatorConfig
from ._engines import Engines
from ._errors import Conflict, CoordinatorError, NotFound
from ._lookup import Lookup, shown
from ._planning import (
    OUTPUT_OPERATION,
    Prepared,
    find_job,
    find_pipeline,
    match_job,
    named_hashes,
    prepare,
    validate,
)
from ._project_records import ProjectRecords
from ._publishing import publish, published_artifacts
from ._queries import ArtifactQueries
from ._records import ExecutionRecordJson, execution_record, previous_result
from ._recovery import settle_interrupted
from ._sources import ExecutionSources
from ._writer import ExecutionWriter

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
        self.engines = Engines(config, lambda: self.store, self.log)
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
    ) -> ExecutionRecordJson:
        """Validate, commit and tag, then start running ``pipeline`` (id or name)."""
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
            project, branch, execution, prepared=self._prepare(project, committed, pipeline_id),
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
        """Run the pipeline exactly as ``execution`` ran it, from its ``run/{id}`` tag."""
        original = await self.lookup.document(project, execution)
        snapshot = original["meta"]["pipeline"]
        commit, content = await self.lookup.tagged(project, execution)
        engine = await self.engine(executor or original["meta"]["executor"])
        prepared = self._prepare(project, content, str(snapshot.get("pipeline")))
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
        self, project: str, execution: str, job: str, *, by: str | None = None
    ) -> ExecutionRecordJson:
        """Re-run one job and everything downstream of it; the other jobs keep their results
        (those that did not succeed run again too, see ``Engine.restart``)."""
        self.lookup.execution_room(project, execution)  # 404 first: no news of others' runs
        self._not_running(execution)
        self._starting.add(execution)  # until it is live: a second restart is refused
        try:
            await settle_interrupted(self.lookup, project, execution, self.log)
            return await self._restart(project, execution, job, by)
        finally:
            self._starting.discard(execution)

    async def _restart(
        self, project: str, execution: str, job: str, by: str | None
    ) -> ExecutionRecordJson:
        plain = await self.lookup.document(project, execution)
        snapshot = plain["meta"]["pipeline"]
        job_id = find_job(snapshot, plain["jobs"], job)
        commit, content = await self.lookup.tagged(project, execution)
        prepared = self._prepare(project, content, str(snapshot.get("pipeline")))
        engine = await self.engine(plain["meta"]["executor"])
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
            on_event = writer.on_event if observe is None else _both(writer.on_event, observe)
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
        """``content`` with only the artifacts the project may read: its ``artifacts`` map is
        document content, which a writer may have pointed at another project's hashes."""
        artifacts = content["artifacts"]
        own = {name: artifact for name, artifact in artifacts.items()
               if self.records.readable(project, str(artifact.get("hash")))}
        if len(own) == len(artifacts):
            return content
        mine = content.copy()
        mine["artifacts"] = own
        return mine

    # ----- helpers ------------------------------------------------------------------------

    async def _settle_interrupted(self, project: str, execution: str) -> None:
        """An unfinished execution nobody runs (the server stopped mid-run) becomes failed."""
        if execution in self._live or execution in self._starting:
            return
        await settle_interrupted(self.lookup, project, execution, self.log)

    def _prepare(self, project: str, content: Project, pipeline_id: str) -> Prepared:
        """Plan a pipeline with the project's own artifacts; refused when an attribute names
        an artifact the project may not read (LoadArtifact's ``content_hash``, for one)."""
        prepared = prepare(self.own_artifacts(project, content), pipeline_id)
        for job, attribute, digest in named_hashes(prepared.plan):
            if not self.records.readable(project, digest):
                raise CoordinatorError(
                    f"node {job}: attribute {attribute!r} names artifact {digest[:12]}…, which "
                    f"no execution of {project} produced; use a hash that `forge artifacts "
                    f"{project}` or `forge run --json` shows for this project")
        return prepared

    async def _new_execution(self, project: str) -> str:
        """A new execution id, unique across the server (``new_id`` until one is free)."""
        store = self.history.store
        for _ in range(1000):
            candidate = new_id()
            if self.rooms.store.exists(execution_room(project, candidate)) or (
                    await store.run(store.tag, project, f"run/{candidate}")) is not None:
                continue  # a room opened under that URL, or a tag a user made: not reused
            if await self.records.run(self.records.claim_execution, candidate, project):
                return candidate
        raise RuntimeError("no free execution id after 1000 tries: the id source repeats itself")

    def _not_running(self, execution: str) -> None:
        if execution in self._live or execution in self._starting:
            raise Conflict(
                f"execution {execution} is still running; wait for it or cancel it first"
            )


def _both(first: EventCallback, second: EventCallback) -> EventCallback:
    def both(event: Any) -> None:
        first(event)
        second(event)

    return both


__all__ = ["OUTPUT_OPERATION", "Coordinator"]
