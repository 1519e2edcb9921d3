"""Plain-data shapes of the documents (TypedDicts) and the shared vocabulary of keys."""

from __future__ import annotations

from enum import StrEnum
from typing import Any, TypedDict

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


class Project(TypedDict):
    """Plain snapshot of a whole project document."""

    meta: ProjectMeta
    operations: dict[str, Operation]
    pipelines: dict[str, Pipeline]
    layers: dict[str, Layer]
    architectures: dict[str, Architecture]
    executions: dict[str, ExecutionSummary]
    artifacts: dict[str, Artifact]


class ExecutionMeta(TypedDict):
    pipeline: dict[str, JsonValue]
    commit: str | None
    status: str
    executor: str | None
    started: str | None
    finished: str | None


class Job(TypedDict):
    node: str
    operation: str
    status: str
    started: str | None
    finished: str | None
    error: str | None
    cache_key: str | None
    cached_from: str | None
    outputs: dict[str, str]


class Execution(TypedDict):
    """Plain snapshot of a whole execution document."""

    meta: ExecutionMeta
    jobs: dict[str, Job]
    console: dict[str, list[str]]
    console_dropped: dict[str, int]
    graphs: dict[str, dict[str, dict[str, list[list[float]]]]]
    images: dict[str, dict[str, str]]
