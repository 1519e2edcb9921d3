"""One sweep run, driven on the event loop: ask Optuna for a trial, commit its settings, run it as
an ordinary execution, watch its plotted line for the pruner, score it, tell Optuna; up to the
budget's concurrency at once, until its trials or its time are spent.

A pruned trial's execution is cancelled cooperatively, its jobs saying why. When the server
stops, the driver is cancelled without telling Optuna anything: the study keeps its status
``running`` and the next server resumes it (see ``_service``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from forge_ops.execution import Event, JobFeedback
from forge_ops.schema import Project, now_iso
from forge_ops.sweeps import (
    NoScore,
    SweepSpec,
    graph_value,
    intermediate,
    metric_value,
    suggest,
    trial_content,
)
from forge_server.http_api import RequestError

from ._commits import commit_trial
from ._studies import Studies

if TYPE_CHECKING:
    import optuna

    from forge_server.coordinator import Coordinator
    from forge_server.history import History

#: Forge statuses of trials that count against the budget (cancelled and interrupted ones are
#: run again when the sweep resumes).
COUNTED = frozenset({"succeeded", "failed", "pruned"})
#: Launches that fail in a row before the sweep gives up (the executor cannot start, …).
MAX_LAUNCH_FAILURES = 3


@dataclass
class Parts:
    """What a driver works with."""

    coordinator: Coordinator
    history: History
    studies: Studies
    log: logging.Logger


@dataclass
class _Trial:
    trial: optuna.Trial
    values: dict[str, Any]
    feedback: asyncio.Queue[list[tuple[float, float]]] = field(default_factory=asyncio.Queue)
    execution: str | None = None
    pruned: str | None = None
    last_step: int = -1


class Driver:
    """Drives the run ``run`` (its study ``name``) of sweep ``spec`` over ``base`` (the content
    of the tagged commit ``run["commit"]``)."""

    def __init__(self, parts: Parts, name: str, run: dict[str, Any], *, spec: SweepSpec,
                 base: Project, study: optuna.Study, done: int, elapsed_s: float) -> None:
        self.parts = parts
        self.name = name
        self.run = run
        self.spec = spec
        self.base = base
        self.study = study
        self.done = done
        self.elapsed_s = elapsed_s
        self.active: dict[int, _Trial] = {}
        #: Trials whose execution ended, being scored: their slot is free already.
        self.settling = 0
        self.cancelling: str | None = None
        self._changed = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._launch_failures = 0
        self._began = time.monotonic()
        budget = spec.budget.time_s
        self.deadline = None if budget is None else self._began + max(0.0, budget - elapsed_s)

    @property
    def project(self) -> str:
        return str(self.run["project"])

    # ----- the loop -----------------------------------------------------------------------

    async def drive(self) -> None:
        studies, log = self.parts.studies, self.parts.log
        note = None
        try:
            while True:
                while self._room_for_more():
                    if not await self._launch():
                        break
                if not self.active and not self.settling:
                    break
                await self._changed.wait()
                self._changed.clear()
            status = "cancelled" if self.cancelling else (
                "failed" if self._launch_failures >= MAX_LAUNCH_FAILURES else "finished")
            note = self.cancelling or self._note()
            await studies.run(studies.set_state, self.name, status=status, note=note,
                              ended=now_iso(), elapsed_s=self._elapsed())
            log.info("sweep run %s %s: %s", self.name, status, note)
        except asyncio.CancelledError:  # the server stops: resumed by the next one
            for task in list(self._tasks):
                task.cancel()
            with contextlib.suppress(Exception):
                await asyncio.shield(studies.run(studies.set_state, self.name,
                                                 elapsed_s=self._elapsed()))
            raise
        except Exception as exc:
            log.exception("sweep run %s failed", self.name)
            with contextlib.suppress(Exception):
                await studies.run(studies.set_state, self.name, status="failed",
                                  note=f"the sweep failed: {exc}", ended=now_iso(),
                                  elapsed_s=self._elapsed())

    def cancel(self, reason: str) -> None:
        """Stop asking for trials and cancel the running ones."""
        self.cancelling = reason
        for active in self.active.values():
            if active.execution is not None:
                with contextlib.suppress(RequestError):
                    self.parts.coordinator.cancel(self.project, active.execution,
                                                  reason=f"cancelled with its sweep: {reason}")
        self._changed.set()

    def _elapsed(self) -> float:
        return round(self.elapsed_s + time.monotonic() - self._began, 3)

    def _room_for_more(self) -> bool:
        budget = self.spec.budget
        if self.cancelling or self._launch_failures >= MAX_LAUNCH_FAILURES:
            return False
        if self.deadline is not None and time.monotonic() >= self.deadline:
            return False
        return len(self.active) < budget.concurrency and \
            self.done + len(self.active) + self.settling < budget.trials

    def _note(self) -> str:
        if self._launch_failures >= MAX_LAUNCH_FAILURES:
            return f"{MAX_LAUNCH_FAILURES} trials in a row could not start; see their reasons"
        if self.deadline is not None and time.monotonic() >= self.deadline \
                and self.done < self.spec.budget.trials:
            return f"time budget spent after {self.done} trials"
        return f"{self.done} trials done"

    # ----- one trial ----------------------------------------------------------------------

    async def _launch(self) -> bool:
        """Ask for a trial and start it; False when the sweep should launch no more."""
        studies, spec = self.parts.studies, self.spec

        def ask() -> tuple[optuna.Trial, dict[str, Any]]:
            trial = self.study.ask()
            values = suggest(trial, spec)
            studies.set_trial(trial._trial_id, status="starting", settings={
                p.target: values[p.name] for p in spec.parameters if p.name in values})
            return trial, values

        trial, values = await studies.run(ask)
        active = _Trial(trial, values)
        self.active[trial.number] = active
        content = trial_content(self.base, spec, values)
        store = self.parts.history.store
        run = self.run
        try:
            commit = await store.run(commit_trial, store, self.project, run["branch"],
                                     base=run["commit"], content=content,
                                     label=f"Sweep {spec.name} trial {trial.number}",
                                     by=run["by"])
            record = await self.parts.coordinator.run_commit(
                self.project, run["branch"], spec.pipeline, commit, content,
                executor=run["executor"], by=run["by"], observe=self._observer(active))
        except RequestError as exc:
            self._launch_failures += 1
            await self._tell(active, "failed", f"could not start: {exc.message}")
            self.active.pop(trial.number, None)
            return self._launch_failures < MAX_LAUNCH_FAILURES
        self._launch_failures = 0
        active.execution = record["execution"]
        await studies.run(studies.set_trial, trial._trial_id, status="running",
                          execution=active.execution, commit=commit,
                          started=record.get("started") or now_iso())
        self.parts.log.info("sweep run %s: trial %d is execution %s (%s)", self.name,
                            trial.number, active.execution, spec.describe(values))
        task = asyncio.get_running_loop().create_task(self._follow(active))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return True

    def _observer(self, active: _Trial) -> Any:
        """An engine callback passing the pruner's line to ``active.feedback`` (called on the
        engine's thread, so it only hands the points over to the loop)."""
        rule = self.spec.pruner
        if rule is None:
            return None
        loop = asyncio.get_running_loop()

        def observe(event: Event) -> None:
            if isinstance(event, JobFeedback) and event.job == rule.node:
                points = event.points.get(rule.graph, {}).get(rule.line)
                if points:
                    loop.call_soon_threadsafe(active.feedback.put_nowait, list(points))

        return observe

    async def _follow(self, active: _Trial) -> None:
        assert active.execution is not None
        coordinator = self.parts.coordinator
        ended = asyncio.ensure_future(coordinator.wait(active.execution))
        try:
            while not ended.done():
                points = asyncio.ensure_future(active.feedback.get())
                await asyncio.wait({ended, points}, return_when=asyncio.FIRST_COMPLETED)
                if not points.done():
                    points.cancel()
                    continue
                batch = points.result()
                while not active.feedback.empty():
                    batch += active.feedback.get_nowait()
                if active.pruned is None and self.cancelling is None:
                    await self._watch(active, batch)
            # The slot is free: the next trial starts while this one is scored.
            self.active.pop(active.trial.number, None)
            self.settling += 1
            self._changed.set()
            try:
                await self._settle(active)
            finally:
                self.settling -= 1
        finally:
            ended.cancel()
            self.active.pop(active.trial.number, None)
            self._changed.set()

    async def _watch(self, active: _Trial, points: list[tuple[float, float]]) -> None:
        """Report the new points of the watched line; prune the trial if Optuna says so."""
        spec = self.spec
        assert spec.pruner is not None

        def report() -> tuple[int, bool]:
            last = active.last_step
            for x, y in points:
                step = int(x)
                if step > last and math.isfinite(y):
                    active.trial.report(intermediate(spec, float(y)), step)
                    last = step
                elif step > last:  # a diverged line (NaN, inf) is as bad as it gets
                    active.trial.report(math.inf if spec.objective.goal == "minimize"
                                        else -math.inf, step)
                    last = step
            return last, last > active.last_step and active.trial.should_prune()

        active.last_step, prune = await self.parts.studies.run(report)
        if not prune:
            return
        rule = spec.pruner
        value = points[-1][1]
        active.pruned = (f"pruned at step {active.last_step}: {rule.graph}/{rule.line} "
                         f"{value:.4g} ({rule.rule} rule)")
        assert active.execution is not None
        with contextlib.suppress(RequestError):  # it may have just finished
            self.parts.coordinator.cancel(self.project, active.execution,
                                          reason=f"sweep {spec.name}: {active.pruned}")

    async def _settle(self, active: _Trial) -> None:
        assert active.execution is not None
        record: dict[str, Any] = dict(
            await self.parts.coordinator.record(self.project, active.execution))
        status = record["status"]
        if active.pruned is not None:
            await self._tell(active, "pruned", active.pruned, record=record)
        elif status == "succeeded":
            try:
                value = await score(self.parts.coordinator, self.project, self.spec, record)
            except NoScore as exc:
                await self._tell(active, "failed", str(exc), record=record)
            else:
                await self._tell(active, "succeeded", None, value, record=record)
        elif self.cancelling is not None or status == "cancelled":
            await self._tell(active, "cancelled", self.cancelling or
                             f"execution {active.execution} was cancelled", record=record)
        else:
            await self._tell(active, "failed", first_error(record), record=record)

    async def _tell(self, active: _Trial, status: str, reason: str | None,
                    value: float | None = None, *, record: dict[str, Any] | None = None) -> None:
        from optuna.trial import TrialState

        state = {"succeeded": TrialState.COMPLETE, "pruned": TrialState.PRUNED}.get(
            status, TrialState.FAIL)
        times = {"started": (record or {}).get("started"),
                 "finished": (record or {}).get("finished") or now_iso()}
        studies = self.parts.studies

        def tell() -> None:
            studies.set_trial(active.trial._trial_id, status=status, reason=reason,
                              objective=value, **{k: v for k, v in times.items() if v})
            self.study.tell(active.trial, value if state is TrialState.COMPLETE else None,
                            state=state)

        await studies.run(tell)
        if status in COUNTED:
            self.done += 1
        self.parts.log.info("sweep run %s: trial %d %s%s", self.name, active.trial.number,
                            status, f" ({reason})" if reason else f" = {value}")


async def score(coordinator: Coordinator, project: str, spec: SweepSpec,
                record: dict[str, Any]) -> float:
    """A succeeded trial's objective value (NoScore saying why there is none)."""
    objective = spec.objective
    if objective.artifact is None:
        plain = await coordinator.lookup.document(project, record["execution"])
        return graph_value(plain["graphs"].get(str(objective.node), {}), objective)
    digest = (record.get("artifacts") or {}).get(objective.artifact)
    if digest is None or not coordinator.records.readable(project, digest):
        raise NoScore(f"the trial published no artifact {objective.artifact}")
    value = await asyncio.to_thread(_metrics, coordinator, digest, objective.artifact)
    return metric_value(value, objective)


def _metrics(coordinator: Coordinator, digest: str, name: str) -> Any:
    """A published metrics artifact: only JSON is read here (no user object is unpickled in
    the server)."""
    store = coordinator.store
    info = store.info(digest)
    if info.kind != "json":
        raise NoScore(f"artifact {name} is a {info.kind}, not metrics (a map of numbers)")
    return store.get(digest)


def first_error(record: dict[str, Any]) -> str:
    for job in record.get("jobs", {}).values():
        if job.get("status") == "failed" and job.get("error"):
            return f"{job.get('name')}: {str(job['error']).strip().splitlines()[-1]}"
    return f"execution {record.get('execution')} {record.get('status')}"
