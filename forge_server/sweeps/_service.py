"""Sweeps on one server: define, start, watch, cancel, resume, apply the best settings.

Starting a sweep checks it against its pipeline, commits and tags the branch's state once
(``sweep/{run}``), creates the run's Optuna study (``_studies``) and hands it to a
:class:`~._driver.Driver`. A run the server was driving when it stopped still says ``running``
in its study: the next server resumes it at start, as ``resume`` does for a cancelled one:
trials left running are settled from their executions (a succeeded one is scored, the others
are run again with the same settings), and the driver goes on until the budget is spent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from typing import Any

from forge_ops.schema import Project, ProjectDoc, SchemaError, new_id, now_iso
from forge_ops.sweeps import (
    SweepError,
    SweepSpec,
    direction,
    find_sweep,
    pruner,
    read_sweep,
    sampler,
)
from forge_server.coordinator import Coordinator, NotFound
from forge_server.history import History

from ._commits import apply_settings, commit_and_tag_sweep
from ._driver import COUNTED, Driver, Parts, score
from ._errors import SweepConflict, SweepFailure, SweepNotFound
from ._records import run_json, run_summary
from ._studies import TRIAL, Studies, study_name

_log = logging.getLogger(__name__)
LATEST = "latest"


class Sweeps:
    """The sweeps of one relay's projects."""

    def __init__(self, coordinator: Coordinator, history: History, studies: Studies,
                 log: logging.Logger | None = None) -> None:
        self.coordinator = coordinator
        self.history = history
        self.studies = studies
        self.log = log or _log
        self.parts = Parts(coordinator, history, studies, self.log)
        self._drivers: dict[str, tuple[Driver, asyncio.Task[None]]] = {}

    # ----- lifecycle ----------------------------------------------------------------------

    async def resume_interrupted(self) -> None:
        """Resume every run a previous server left running."""
        for name, run in await self.studies.run(self.studies.active_runs):
            if name in self._drivers:
                continue
            try:
                await self._resume(name, run)
                self.log.info("sweep run %s resumed after a restart", name)
            except Exception as exc:
                self.log.exception("sweep run %s could not be resumed", name)
                await self.studies.run(self.studies.set_state, name, status="failed",
                                       note=f"could not resume after a restart: {exc}",
                                       ended=now_iso())

    async def stop(self) -> None:
        """Stop driving (the runs stay ``running`` in their studies, for the next server)."""
        tasks = [task for _, task in self._drivers.values()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self.studies.close()

    def _drive(self, driver: Driver) -> None:
        task = asyncio.get_running_loop().create_task(driver.drive())
        self._drivers[driver.name] = (driver, task)

        def forget(_: asyncio.Task[None]) -> None:
            if self._drivers.get(driver.name, (None, None))[1] is task:
                del self._drivers[driver.name]

        task.add_done_callback(forget)

    async def wait(self, project: str, run: str) -> None:
        """Until this server no longer drives the run."""
        entry = self._drivers.get(study_name(project, run))
        if entry is not None:
            await asyncio.shield(entry[1])

    # ----- definitions --------------------------------------------------------------------

    async def content(self, project: str, branch: str) -> Project:
        coordinator = self.coordinator
        async with coordinator.rooms.hold(coordinator.lookup.branch_room(project, branch)) as room:
            return coordinator.own_artifacts(project, ProjectDoc(room.doc).to_plain())

    async def define(self, project: str, branch: str, name: str, *, pipeline: str,
                     parts: Mapping[str, Any], by: str | None) -> dict[str, Any]:
        """Write sweep ``name``'s definition (new or replaced), checked first."""
        content = await self.content(project, branch)
        pipeline_id = _pipeline_id(content, pipeline)
        try:
            sweep_id: str | None = find_sweep(content, name)
        except KeyError:
            sweep_id = None
        draft = ProjectDoc.create("draft")
        try:
            draft_id = draft.set_sweep(name, pipeline_id, parts)
        except (SchemaError, ValueError) as exc:
            raise SweepFailure(str(exc)) from exc
        candidate = content.copy()
        candidate["sweeps"] = {draft_id: draft.to_plain().get("sweeps", {})[draft_id]}
        _checked(candidate, draft_id)
        coordinator = self.coordinator
        async with coordinator.rooms.hold(coordinator.lookup.branch_room(project, branch)) as room:
            with room.edit(by):
                sweep_id = ProjectDoc(room.doc).set_sweep(name, pipeline_id, parts,
                                                          sweep_id=sweep_id)
            await room.written()
        return {"sweep": sweep_id, "name": name, "pipeline": pipeline_id}

    async def listing(self, project: str, branch: str) -> list[dict[str, Any]]:
        """The branch's sweeps, each with its problems (if any) and its runs."""
        content = await self.content(project, branch)
        runs = await self.studies.run(self.studies.runs, project)
        rows = []
        for sweep_id, sweep in sorted(content.get("sweeps", {}).items(),
                                      key=lambda item: item[1]["name"]):
            try:
                spec = read_sweep(content, sweep_id)
                problems: list[str] = []
                trials = spec.budget.trials
            except SweepError as exc:
                problems, trials = exc.problems, 0
            pipeline = content["pipelines"].get(sweep["pipeline"])
            rows.append({
                "sweep": sweep_id, "name": sweep["name"], "pipeline": sweep["pipeline"],
                "pipeline_name": pipeline["name"] if pipeline else None, "trials": trials,
                "problems": problems, "definition": dict(sweep),
                "runs": [run_summary(name.split("/", 1)[1], run, state)
                         for name, run, state in runs if run.get("sweep") == sweep_id],
            })
        return rows

    # ----- runs ---------------------------------------------------------------------------

    async def start(self, project: str, sweep: str, *, branch: str = "main",
                    executor: str | None = None, by: str | None = None) -> dict[str, Any]:
        content = await self.content(project, branch)
        sweep_id = _sweep_id(content, sweep)
        _checked(content, sweep_id)
        await self.coordinator.engine(executor)  # an unknown executor is refused first
        run_id = new_id()
        while await self.studies.run(self.studies.exists, study_name(project, run_id)):
            run_id = new_id()
        commit = await commit_and_tag_sweep(self.history, project, branch, run_id, by)
        store = self.history.store
        base = self.coordinator.own_artifacts(project, await store.run(store.content, commit))
        spec = _checked(base, sweep_id)  # what runs, if it was edited meanwhile
        run = {
            "project": project, "branch": branch, "sweep": sweep_id, "sweep_name": spec.name,
            "pipeline": spec.pipeline, "pipeline_name": spec.pipeline_name, "commit": commit,
            "executor": executor, "by": by, "created": now_iso(),
            "definition": dict(base.get("sweeps", {})[sweep_id]),
            "targets": {p.name: p.target for p in spec.parameters},
            "objective": {"goal": str(spec.objective.goal),
                          "describe": spec.objective.describe()},
            "budget": {"trials": spec.budget.trials, "concurrency": spec.budget.concurrency,
                       "time_s": spec.budget.time_s},
            "sampler": {"kind": str(spec.sampler), "seed": spec.seed},
        }
        name = study_name(project, run_id)
        study = await self.studies.run(self.studies.create, name, direction(spec),
                                       sampler=sampler(spec), pruner=pruner(spec), run=run,
                                       state={"status": "running", "elapsed_s": 0.0})
        self._drive(Driver(self.parts, name, run, spec=spec, base=base, study=study, done=0,
                           elapsed_s=0.0))
        self.log.info("sweep %s of %s/%s started as run %s (%s trials) by %s", spec.name,
                      project, branch, run_id, spec.budget.trials, by)
        return await self.record(project, sweep, run_id, branch=branch)

    async def record(self, project: str, sweep: str, run: str, *,
                     branch: str = "main") -> dict[str, Any]:
        name = await self._run_name(project, sweep, run, branch)
        run_attr, state, trials = await self.studies.run(self.studies.snapshot, name)
        return run_json(name.split("/", 1)[1], run_attr, state, trials,
                        driving=name in self._drivers)

    async def cancel(self, project: str, sweep: str, run: str, *, branch: str = "main",
                     by: str | None = None) -> dict[str, Any]:
        name = await self._run_name(project, sweep, run, branch)
        entry = self._drivers.get(name)
        if entry is not None:
            entry[0].cancel(f"cancelled by {by or 'request'}")
        else:
            _, state, _ = await self.studies.run(self.studies.snapshot, name)
            if state.get("status") != "running":
                raise SweepConflict(f"sweep run {name.split('/', 1)[1]} is not running "
                                    f"({state.get('status')}); nothing to cancel")
            await self.studies.run(self.studies.set_state, name, status="cancelled",
                                   note=f"cancelled by {by or 'request'}", ended=now_iso())
        return await self.record(project, sweep, name.split("/", 1)[1], branch=branch)

    async def resume(self, project: str, sweep: str, run: str, *, branch: str = "main",
                     by: str | None = None) -> dict[str, Any]:
        name = await self._run_name(project, sweep, run, branch)
        if name in self._drivers:
            raise SweepConflict(f"sweep run {name.split('/', 1)[1]} is still running (or "
                                "still stopping its trials); wait for it")
        run_attr, state, _ = await self.studies.run(self.studies.snapshot, name)
        if state.get("status") == "finished":
            raise SweepConflict(f"sweep run {name.split('/', 1)[1]} finished its budget; "
                                "start a new run of the sweep instead")
        await self._resume(name, run_attr)
        return await self.record(project, sweep, name.split("/", 1)[1], branch=branch)

    async def _resume(self, name: str, run: dict[str, Any]) -> None:
        project = str(run["project"])
        store = self.history.store
        base = self.coordinator.own_artifacts(project, await store.run(store.content,
                                                                       run["commit"]))
        try:
            spec = read_sweep(base, run["sweep"], definition=run["definition"])
        except SweepError as exc:
            raise SweepFailure(str(exc), details={"problems": exc.problems}) from exc
        _, state, trials = await self.studies.run(self.studies.snapshot, name)
        study = await self.studies.run(self.studies.load, name, sampler(spec, len(trials)),
                                       pruner(spec))
        retried = {info.get("retry_of") for t in trials
                   if (info := t.user_attrs.get(TRIAL) or {}).get("retry_of") is not None}
        for trial in trials:
            info = dict(trial.user_attrs.get(TRIAL) or {})
            again = trial.state.name == "FAIL" and info.get("status") in (
                "cancelled", "interrupted")
            if trial.state.name == "RUNNING":
                again = not await self._settle_left(study, trial, info, project, spec)
            if again and trial.number not in retried:
                await self.studies.run(study.enqueue_trial, dict(trial.params),
                                       user_attrs={TRIAL: {"retry_of": trial.number}})
        done = sum(1 for t in (await self.studies.run(self.studies.snapshot, name))[2]
                   if (t.user_attrs.get(TRIAL) or {}).get("status") in COUNTED)
        await self.studies.run(self.studies.set_state, name, status="running", note=None,
                               ended=None)
        self._drive(Driver(self.parts, name, run, spec=spec, base=base, study=study, done=done,
                           elapsed_s=float(state.get("elapsed_s") or 0.0)))

    async def _settle_left(self, study: Any, trial: Any, info: dict[str, Any], project: str,
                           spec: SweepSpec) -> bool:
        """Settle a trial a stopped server left running: scored if its execution succeeded
        (True), else failed as interrupted (False: run it again)."""
        from optuna.trial import TrialState

        execution = info.get("execution")
        record: dict[str, Any] = {}
        if execution:
            with contextlib.suppress(NotFound):
                record = dict(await self.coordinator.record(project, execution))
        value = None
        if record.get("status") == "succeeded":
            with contextlib.suppress(Exception):
                value = await score(self.coordinator, project, spec, record)

        def tell() -> None:
            self.studies.set_trial(
                trial._trial_id, status="succeeded" if value is not None else "interrupted",
                reason=None if value is not None else "the server stopped while it ran",
                objective=value, finished=record.get("finished") or now_iso())
            study.tell(trial.number, value,
                       state=TrialState.COMPLETE if value is not None else TrialState.FAIL)

        await self.studies.run(tell)
        return value is not None

    async def apply(self, project: str, sweep: str, run: str, *, trial: int | None = None,
                    branch: str = "main", by: str | None = None) -> dict[str, Any]:
        """Write the best (or a given) trial's settings into the branch's pipeline, committed."""
        name = await self._run_name(project, sweep, run, branch)
        record = await self.record(project, sweep, name.split("/", 1)[1], branch=branch)
        number = record["best"] if trial is None else trial
        chosen = next((row for row in record["trials"] if row["number"] == number), None)
        if chosen is None:
            raise SweepNotFound("this run has no scored trial yet; wait for one to finish"
                                if trial is None else f"no trial {trial} in this run")
        run_attr, _, _ = await self.studies.run(self.studies.snapshot, name)
        content = await self.content(project, branch)
        try:
            spec = read_sweep(content, run_attr["sweep"], definition=run_attr["definition"])
        except SweepError as exc:
            raise SweepFailure(str(exc), details={"problems": exc.problems}) from exc
        applied = await apply_settings(
            self.history, project, branch, spec=spec, values=chosen["values"],
            label=f"Applied sweep {spec.name} trial {number}", by=by)
        return {"run": record["run"], "trial": number, "settings": chosen["settings"],
                "objective": chosen["objective"], **applied}

    async def _run_name(self, project: str, sweep: str, run: str, branch: str) -> str:
        """The study of run ``run`` ("latest": the newest) of sweep ``sweep`` of ``project``."""
        if run == LATEST:
            content = await self.content(project, branch)
            sweep_id = _sweep_id(content, sweep)
            runs = [n for n, r, _ in await self.studies.run(self.studies.runs, project)
                    if r.get("sweep") == sweep_id]
            if not runs:
                raise SweepNotFound(f"sweep {sweep} has not run yet; start it with "
                                    f"`forge sweep {project} {sweep}`")
            return runs[-1]
        name = study_name(project, run)
        missing = SweepNotFound(f"no run {run!r} of sweep {sweep!r} in project {project}; "
                                f"list them with `forge sweeps {project}`")
        if not await self.studies.run(self.studies.exists, name):
            raise missing
        run_attr, _, _ = await self.studies.run(self.studies.snapshot, name)
        if sweep not in (run_attr.get("sweep"), run_attr.get("sweep_name")):
            raise missing
        return name


def _sweep_id(content: Project, sweep: str) -> str:
    try:
        return find_sweep(content, sweep)
    except KeyError as exc:
        raise SweepNotFound(str(exc.args[0])) from None


def _checked(content: Project, sweep_id: str) -> SweepSpec:
    try:
        return read_sweep(content, sweep_id)
    except SweepError as exc:
        raise SweepFailure(str(exc), details={"problems": exc.problems}) from exc


def _pipeline_id(content: Project, pipeline: str) -> str:
    pipelines = content["pipelines"]
    if pipeline in pipelines:
        return pipeline
    matches = [pid for pid, p in pipelines.items() if p["name"] == pipeline]
    if len(matches) != 1:
        names = ", ".join(sorted(p["name"] for p in pipelines.values())) or "none"
        raise SweepFailure(f"no single pipeline {pipeline!r} in this project; pipelines: {names}")
    return matches[0]
