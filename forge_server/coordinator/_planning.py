"""From a project snapshot to something runnable: the pipeline, its validation, its plan."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from forge_ops.schema import ExecutionSnapshot, Job, Project

from ._errors import CoordinatorError, NotFound, PipelineRejected

if TYPE_CHECKING:
    from forge_ops.execution import Plan

OUTPUT_OPERATION = "Output"
"""Operations of this name publish the value at their ``data`` input as a project artifact."""


def find_pipeline(project: Project, pipeline: str) -> str:
    """A pipeline's id from its id or its (unique) name."""
    pipelines = project["pipelines"]
    if pipeline in pipelines:
        return pipeline
    matches = [pid for pid, p in pipelines.items() if p["name"] == pipeline]
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise CoordinatorError(
            f"{len(matches)} pipelines are called {pipeline!r}; give one of their ids: "
            f"{', '.join(sorted(matches))}"
        )
    names = sorted(p["name"] for p in pipelines.values())
    raise NotFound(
        f"no pipeline {pipeline!r} in this project; pipelines: {', '.join(names) or 'none'}"
    )


def validate(project: Project, pipeline_id: str) -> None:
    """Raise :class:`PipelineRejected` listing every problem of the pipeline, if it has any."""
    from forge_ops.operations import find_problems

    pipeline = project["pipelines"][pipeline_id]
    problems = find_problems(
        pipeline,
        project["operations"],
        architectures=project["architectures"],
        layers=project["layers"],
        artifacts=project["artifacts"],
    )
    if not problems:
        return
    nodes = pipeline["nodes"]
    count = f"{len(problems)} problem{'s' if len(problems) != 1 else ''}"
    lines = "\n".join(f"- {p.message}" for p in problems)
    raise PipelineRejected(
        f"pipeline {pipeline['name']} cannot run ({count}):\n{lines}",
        details={
            "problems": [
                {
                    "kind": str(p.kind),
                    "message": p.message,
                    "node": p.node,
                    "node_name": nodes[p.node]["name"] if p.node in nodes else None,
                    "edge": p.edge,
                }
                for p in problems
            ]
        },
    )


@dataclass(frozen=True)
class Prepared:
    """A planned pipeline, its name and which of its jobs publish artifacts (Outputs)."""

    plan: Plan
    name: str
    outputs: frozenset[str]

    def snapshot(self, branch: str, by: str | None, rerun_of: str | None = None
                 ) -> ExecutionSnapshot:
        """The pipeline as it runs (execution document ``meta.pipeline``)."""
        return self.plan.snapshot(name=self.name, branch=branch, by=by, rerun_of=rerun_of,
                                  publishes=self.outputs)


def prepare(project: Project, pipeline_id: str) -> Prepared:
    """Plan the pipeline; a plan error becomes a request error."""
    from forge_ops.execution import PlanError, plan_pipeline

    try:
        plan = plan_pipeline(project, pipeline_id)
    except PlanError as exc:
        raise CoordinatorError(str(exc)) from exc
    operations = project["operations"]
    outputs = frozenset(
        job_id
        for job_id, spec in plan.jobs.items()
        if operations[spec.operation]["name"] == OUTPUT_OPERATION
    )
    return Prepared(plan, project["pipelines"][plan.pipeline]["name"], outputs)


#: An artifact's content hash (as ``forge_ops.artifacts`` writes it: 64 lowercase hex digits);
#: matched here without importing the store.
_ARTIFACT_HASH = re.compile(r"[0-9a-f]{64}")


def named_hashes(plan: Plan) -> Iterator[tuple[str, str, str]]:
    """``(job name, attribute, hash)`` for every attribute value (or string inside one) shaped
    like an artifact hash: what LoadArtifact, and operations like it, will load."""
    def walk(value: Any) -> Iterator[str]:
        if isinstance(value, str):
            if _ARTIFACT_HASH.fullmatch(value):
                yield value
        elif isinstance(value, Mapping):
            for item in value.values():
                yield from walk(item)
        elif isinstance(value, list | tuple):
            for item in value:
                yield from walk(item)

    for job in plan.jobs.values():
        for attribute, value in job.attributes.items():
            for digest in walk(value):
                yield job.name, attribute, digest


def runs_a_network(project: Project, operation_id: str) -> bool:
    """Whether an operation takes a network: an ``Architecture`` reference or a ``Model``
    input (Train, Test, Predict): the jobs a run's GPU count is for."""
    from forge_ops.operations import InterfaceError, parse_interface

    operation = project["operations"].get(operation_id)
    if operation is None:
        return False
    try:
        interface = parse_interface(operation["code"])
    except InterfaceError:
        return False
    return any(r.type == "Architecture" for r in interface.references) or any(
        p.type == "Model" for p in interface.inputs
    )


def with_gpus(prepared: Prepared, project: Project, gpus: float | None) -> Prepared:
    """``prepared`` with ``num_gpus = gpus`` on every job that runs a network (None: as the
    nodes' settings say)."""
    if gpus is None:
        return prepared
    return _with_settings(prepared, {
        job_id: {"num_gpus": gpus}
        for job_id, spec in prepared.plan.jobs.items()
        if runs_a_network(project, spec.operation)
    })


def as_it_ran(prepared: Prepared, snapshot: ExecutionSnapshot) -> Prepared:
    """``prepared`` with each job's resources as the execution ran it (a run's GPU count
    holds for its restarts too)."""
    jobs = snapshot.get("jobs") or {}
    return _with_settings(prepared, {
        job_id: {key: value for key, value in (jobs[job_id].get("settings") or {}).items()
                 if key in ("num_cpus", "num_gpus")}
        for job_id in prepared.plan.jobs if job_id in jobs
    })


def _with_settings(prepared: Prepared, changes: Mapping[str, Mapping[str, float]]) -> Prepared:
    from dataclasses import replace

    jobs = dict(prepared.plan.jobs)
    for job_id, change in changes.items():
        if change:
            spec = jobs[job_id]
            settings = replace(
                spec.settings,
                num_cpus=float(change.get("num_cpus", spec.settings.num_cpus)),
                num_gpus=float(change.get("num_gpus", spec.settings.num_gpus)),
            )
            jobs[job_id] = replace(spec, settings=settings)
    return replace(prepared, plan=replace(prepared.plan, jobs=jobs))


def match_job(ref: str, names: Mapping[str, str], where: str) -> str:
    """A job id from its id or its (unique) display name; ``where`` names the execution in
    errors ("execution 1a2b3c4d")."""
    if ref in names:
        return ref
    matches = [job for job, name in names.items() if name == ref]
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise CoordinatorError(
            f"{len(matches)} jobs are called {ref!r}; give one of their ids: "
            f"{', '.join(sorted(matches))}"
        )
    listing = ", ".join(f"{name} ({job})" for job, name in sorted(names.items(),
                                                                  key=lambda item: item[1]))
    raise NotFound(f"no job {ref!r} in {where}; jobs: {listing}")


def find_job(snapshot: ExecutionSnapshot, jobs: Mapping[str, Job], ref: str) -> str:
    """A job id of an execution from its id or its (unique) name."""
    specs = snapshot.get("jobs") or {}  # plain JSON, not checked by the reader
    names = {job: str(spec.get("name", job)) if (spec := specs.get(job)) else job
             for job in jobs}
    return match_job(ref, names, "this execution")


def safe_file_name(name: str) -> str:
    cleaned = "".join(c if c.isalnum() or c in "-_." else "_" for c in name).strip("._")
    return cleaned or "artifact"
