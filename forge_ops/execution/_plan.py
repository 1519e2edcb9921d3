"""A pipeline turned into a job graph: one job per node, inputs wired by edges; and the plain
snapshot of the pipeline as it runs (execution document ``meta.pipeline``)."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from forge_ops.artifacts import canonical_json
from forge_ops.graph_order import CycleFound, static_order
from forge_ops.schema import (
    Architecture,
    Artifact,
    ExecutionSnapshot,
    JobSnapshot,
    Layer,
    Node,
    Operation,
    Project,
)


class PlanError(ValueError):
    """The pipeline cannot be turned into jobs; the message says what to fix."""


@dataclass(frozen=True)
class JobSettings:
    """Per-node resources and cache behaviour (the node's ``settings`` map)."""

    num_cpus: float = 1.0
    num_gpus: float = 0.0
    always_recompute: bool = False
    #: False: the job runs with no network at all (only in a sandbox; see _sandbox).
    network: bool = True

    @classmethod
    def from_plain(cls, settings: Mapping[str, Any] | None, where: str) -> JobSettings:
        settings = dict(settings or {})
        try:
            num_cpus = float(settings.get("num_cpus", 1.0) if settings.get("num_cpus")
                             is not None else 1.0)
            num_gpus = float(settings.get("num_gpus", 0.0) or 0.0)
        except (TypeError, ValueError):
            raise PlanError(f"{where}: num_cpus and num_gpus must be numbers") from None
        if num_cpus < 0 or num_gpus < 0:
            raise PlanError(f"{where}: num_cpus and num_gpus cannot be negative")
        network = settings.get("network", True)
        if not isinstance(network, bool):
            raise PlanError(f"{where}: setting network is {network!r}; set true or false")
        return cls(num_cpus, num_gpus, bool(settings.get("always_recompute", False)), network)


@dataclass(frozen=True)
class InputWire:
    """An input port fed by ``src_job``'s ``src_port``."""

    src_job: str
    src_port: str


@dataclass(frozen=True)
class JobSpec:
    """Everything needed to run one node, as plain data (picklable, hashable into a key)."""

    job_id: str
    name: str
    operation: str
    code: str
    attributes: dict[str, Any]
    references: dict[str, Any]
    inputs: dict[str, InputWire]
    settings: JobSettings = field(default_factory=JobSettings)
    #: Content of what the references point at (architecture plain data, layer code, artifact
    #: hashes), part of the cache key.
    reference_content: dict[str, Any] = field(default_factory=dict)

    @property
    def seed(self) -> int:
        """The seed references are built under: the node's ``seed`` attribute, else 0."""
        seed = self.attributes.get("seed", 0)
        return seed if isinstance(seed, int) and not isinstance(seed, bool) else 0

    def snapshot(self) -> JobSnapshot:
        """The job as plain data (an entry of the execution snapshot's ``jobs``)."""
        return JobSnapshot(
            name=self.name,
            operation=self.operation,
            code=self.code,
            attributes=self.attributes,
            references=self.references,
            inputs={p: [w.src_job, w.src_port] for p, w in self.inputs.items()},
            settings=dict(vars(self.settings)),
        )


@dataclass(frozen=True)
class Plan:
    """The job graph of one pipeline (job ids are node ids) in a topological order."""

    pipeline: str
    jobs: dict[str, JobSpec]
    order: tuple[str, ...]
    #: Project items references resolve against inside jobs (see forge_ops.runtime).
    architectures: dict[str, Architecture] = field(default_factory=dict)
    layers: dict[str, Layer] = field(default_factory=dict)
    artifacts: dict[str, Artifact] = field(default_factory=dict)

    def downstream(self, job_id: str) -> set[str]:
        """``job_id`` and every job that depends on its outputs, directly or not."""
        if job_id not in self.jobs:
            raise PlanError(f"no job {job_id!r} in this plan; use one of {sorted(self.jobs)}")
        found = {job_id}
        for candidate in self.order:
            if any(w.src_job in found for w in self.jobs[candidate].inputs.values()):
                found.add(candidate)
        return found

    def upstream(self, job_id: str) -> set[str]:
        """The jobs ``job_id`` reads inputs from, directly."""
        return {wire.src_job for wire in self.jobs[job_id].inputs.values()}

    def snapshot(self, *, name: str, branch: str, by: str | None, rerun_of: str | None,
                 publishes: Collection[str]) -> ExecutionSnapshot:
        """The pipeline as it runs (execution document ``meta.pipeline``): its jobs with their
        code, and who ran it from which branch; ``publishes``: the Output jobs."""
        return ExecutionSnapshot(
            pipeline=self.pipeline,
            jobs={job_id: job.snapshot() for job_id, job in self.jobs.items()},
            name=name,
            branch=branch,
            by=by,
            order=list(self.order),
            rerun_of=rerun_of,
            publishes=sorted(publishes),
        )


def plan_pipeline(project: Project, pipeline_id: str) -> Plan:
    """Plan the pipeline ``pipeline_id`` (id or unique name) of a project snapshot
    (``schema.to_plain``).

    The pipeline should have passed validation (forge_ops.operations); this still refuses what
    cannot be run at all: unknown operations, edges to missing nodes, two edges into one input,
    cycles.
    """
    pipelines = project["pipelines"]
    if pipeline_id not in pipelines:
        names = {pid: p["name"] for pid, p in pipelines.items()}
        matches = [pid for pid, name in names.items() if name == pipeline_id]
        if len(matches) != 1:
            raise PlanError(f"no pipeline {pipeline_id!r} in the project; pipelines: "
                            f"{sorted(str(n) for n in names.values())}")
        pipeline_id = matches[0]
    pipeline = pipelines[pipeline_id]
    operations = project["operations"]
    architectures = dict(project["architectures"])
    layers = dict(project["layers"])
    artifacts = dict(project["artifacts"])
    nodes = pipeline["nodes"]

    wires: dict[str, dict[str, InputWire]] = {node_id: {} for node_id in nodes}
    for edge_id, edge in pipeline["edges"].items():
        src, dst, dst_port = edge["src"], edge["dst"], edge["dst_port"]
        if src not in nodes or dst not in nodes:
            raise PlanError(f"edge {edge_id} connects a node that is not in the pipeline; "
                            "delete the edge")
        if dst_port in wires[dst]:
            raise PlanError(f"input {dst_port!r} of node {_node_name(nodes[dst], operations)} "
                            "has two incoming edges; keep one")
        wires[dst][dst_port] = InputWire(src, edge["src_port"])

    jobs: dict[str, JobSpec] = {}
    for node_id, node in nodes.items():
        operation = operations.get(node["operation"])
        name = _node_name(node, operations)
        if operation is None:
            raise PlanError(f"node {name} uses operation {node['operation']!r}, which is not "
                            "in the project; pick an existing operation")
        references = dict(node["references"])
        jobs[node_id] = JobSpec(
            job_id=node_id,
            name=name,
            operation=node["operation"],
            code=operation["code"],
            attributes=dict(node["attributes"]),
            references=references,
            inputs=wires[node_id],
            settings=JobSettings.from_plain(node["settings"], f"node {name}"),
            reference_content={
                key: _reference_content(value, architectures, layers, artifacts)
                for key, value in references.items()
            },
        )
    try:
        order = tuple(static_order(
            {j: {w.src_job for w in s.inputs.values()} for j, s in jobs.items()}))
    except CycleFound as exc:
        cycle = " → ".join(jobs[j].name for j in exc.cycle)
        raise PlanError(f"the pipeline has a cycle ({cycle}); remove one of its edges") from exc
    return Plan(pipeline_id, jobs, order, architectures, layers, artifacts)


def _node_name(node: Node, operations: Mapping[str, Operation]) -> str:
    operation = operations.get(node["operation"])
    return node["name"] or (operation["name"] if operation else "") or node["operation"]


def _reference_content(
    value: Any, architectures: Mapping[str, Architecture], layers: Mapping[str, Layer],
    artifacts: Mapping[str, Artifact],
) -> Any:
    """What a reference value points at, for the cache key (ids and names both resolve)."""
    if not isinstance(value, str):
        return value

    def find(items: Mapping[str, Any]) -> Any:
        if value in items:
            return items[value]
        # .get: artifacts are keyed by their name and carry no "name" field of their own.
        matches = [item for item in items.values() if item.get("name") == value]
        return matches[0] if len(matches) == 1 else None

    layer_code = {layer["name"]: layer["code"] for layer in layers.values()}
    if (arch := find(architectures)) is not None:
        # Architectures may use any custom layer: all their code counts.
        return {"architecture": canonical_json(arch), "layers": layer_code}
    if (layer := find(layers)) is not None:
        return {"layer": layer["code"]}
    if (artifact := find(artifacts)) is not None:
        return {"artifact": artifact["hash"]}
    return {"value": value}
