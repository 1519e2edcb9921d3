"""Plain-data shapes of the documents (TypedDicts) and the shared vocabulary of keys."""

from __future__ import annotations

from enum import StrEnum
from typing import Any, NotRequired, TypedDict

SCHEMA_VERSION = 1
"""Version of the document layout this reader writes and fully understands."""

JsonValue = Any
"""A plain JSON value (None, bool, int, float, str, list, dict)."""


class JobStatus(StrEnum):
    """Status of a job (and of a whole execution)."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CACHED = "cached"
    CANCELLED = "cancelled"


FINISHED_STATUSES = frozenset(
    {JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CACHED, JobStatus.CANCELLED}
)

PROJECT_ROOTS = (
    "meta",
    "operations",
    "pipelines",
    "layers",
    "architectures",
    "executions",
    "artifacts",
    "sweeps",
)
EXECUTION_ROOTS = ("meta", "jobs", "console", "console_dropped", "graphs", "images")


class ProjectMeta(TypedDict):
    name: str
    schema_version: int
    created: str


class Operation(TypedDict):
    name: str
    code: str
    builtin: bool


class Node(TypedDict):
    operation: str
    name: str
    attributes: dict[str, JsonValue]
    references: dict[str, JsonValue]
    settings: dict[str, JsonValue]


class Edge(TypedDict):
    src: str
    src_port: str
    dst: str
    dst_port: str


class Pipeline(TypedDict):
    name: str
    nodes: dict[str, Node]
    edges: dict[str, Edge]


class Layer(TypedDict):
    name: str
    code: str


class ArchLayer(TypedDict):
    type: str
    name: str
    attributes: dict[str, JsonValue]


class ArchEdge(TypedDict):
    src: str
    dst: str
    index: int


class Architecture(TypedDict):
    name: str
    input_shape: list[int] | None
    layers: dict[str, ArchLayer]
    edges: dict[str, ArchEdge]


class ExecutionSummary(TypedDict):
    pipeline: str
    commit: str | None
    status: str
    created: str
    by: str | None


class Artifact(TypedDict):
    hash: str
    kind: str
    shape: list[int] | None
    dtype: str | None
    bytes: int
    produced_by: str | None
    created: str


class Sweep(TypedDict):
    """A search over a pipeline's attributes and references (``forge_ops.sweeps`` reads the
    parts; they are plain JSON here): ``parameters`` by name, each {node, attribute or
    reference, values or low/high, …}; ``objective`` {artifact, key or graph, line, node;
    goal}; ``budget`` {trials, time_s, concurrency}; ``sampler`` {kind, seed}; ``pruner``
    {rule, node, graph, line, …} ({} for none)."""

    name: str
    pipeline: str
    parameters: dict[str, JsonValue]
    objective: dict[str, JsonValue]
    budget: dict[str, JsonValue]
    sampler: dict[str, JsonValue]
    pruner: dict[str, JsonValue]


class Project(TypedDict):
    """Plain snapshot of a whole project document."""

    meta: ProjectMeta
    operations: dict[str, Operation]
    pipelines: dict[str, Pipeline]
    layers: dict[str, Layer]
    architectures: dict[str, Architecture]
    executions: dict[str, ExecutionSummary]
    artifacts: dict[str, Artifact]
    #: Added after the first release: snapshots committed before it have none (read with .get).
    sweeps: NotRequired[dict[str, Sweep]]


class JobSnapshot(TypedDict, total=False):
    """One job of a pipeline as it runs: its node's operation code, attributes, references,
    settings and input wires (``[source job, source port]`` by input port). Written whole;
    read with ``.get``, as :class:`ExecutionSnapshot` is."""

    name: str
    operation: str
    code: str
    attributes: dict[str, JsonValue]
    references: dict[str, JsonValue]
    inputs: dict[str, list[str]]
    settings: dict[str, JsonValue]


class ExecutionSnapshot(TypedDict, total=False):
    """The pipeline as an execution runs it (``meta.pipeline``), written once when it starts.

    The coordinator writes every key; a document from elsewhere (or a damaged one, read as
    ``{}``) may lack any, so readers ask with ``.get``."""

    pipeline: str
    jobs: dict[str, JobSnapshot]
    name: str
    branch: str
    by: str | None
    order: list[str]
    rerun_of: str | None
    publishes: list[str]


class ExecutionMeta(TypedDict):
    pipeline: ExecutionSnapshot
    commit: str | None
    status: str
    executor: str | None
    started: str | None
    finished: str | None
    #: What happened that the status alone does not say ("a restart of Train was cancelled;
    #: the earlier results are kept").
    note: NotRequired[str | None]


class JobState(TypedDict):
    """Where a job stands: the fields the engine's records, the execution document's ``jobs``
    entries and the HTTP execution records share."""

    status: str
    started: str | None
    finished: str | None
    error: str | None
    cache_key: str | None
    cached_from: str | None
    outputs: dict[str, str]


class Job(JobState):
    """An execution document's ``jobs`` entry: the job's node and operation, and its state."""

    node: str
    operation: str
    #: Set when a cancelled restart left an earlier attempt (1-based) as the job's result.
    kept_from_attempt: NotRequired[int | None]


class Execution(TypedDict):
    """Plain snapshot of a whole execution document."""

    meta: ExecutionMeta
    jobs: dict[str, Job]
    console: dict[str, list[str]]
    console_dropped: dict[str, int]
    graphs: dict[str, dict[str, dict[str, list[list[float]]]]]
    images: dict[str, dict[str, str]]
    #: job id -> its earlier attempts, oldest first (see ``ExecutionDoc.archive_attempt``).
    attempts: NotRequired[dict[str, list[dict[str, Any]]]]
