"""Shared vocabulary of Forge documents: typed views, editing helpers, plain snapshots, diffs."""

from ._execution import CONSOLE_CAP, ExecutionDoc
from ._ids import new_id, now_iso
from ._plain import plain_value
from ._project import ProjectDoc, read_project, to_plain
from ._read import SchemaError, SchemaWarning
from ._restore import changed_span, merge_edits
from ._types import (
    EXECUTION_ROOTS,
    FINISHED_STATUSES,
    PROJECT_ROOTS,
    SCHEMA_VERSION,
    ArchEdge,
    Architecture,
    ArchLayer,
    Artifact,
    Edge,
    Execution,
    ExecutionMeta,
    ExecutionSummary,
    Job,
    JobStatus,
    Layer,
    Node,
    Operation,
    Pipeline,
    Project,
    ProjectMeta,
)
from .diff import Action, Change, Target, code_diff, diff_projects, format_value
from .messages import commit_message

__all__ = [
    "CONSOLE_CAP",
    "EXECUTION_ROOTS",
    "FINISHED_STATUSES",
    "PROJECT_ROOTS",
    "SCHEMA_VERSION",
    "Action",
    "ArchEdge",
    "ArchLayer",
    "Architecture",
    "Artifact",
    "Change",
    "Edge",
    "Execution",
    "ExecutionDoc",
    "ExecutionMeta",
    "ExecutionSummary",
    "Job",
    "JobStatus",
    "Layer",
    "Node",
    "Operation",
    "Pipeline",
    "Project",
    "ProjectDoc",
    "ProjectMeta",
    "SchemaError",
    "SchemaWarning",
    "Target",
    "changed_span",
    "code_diff",
    "commit_message",
    "diff_projects",
    "format_value",
    "merge_edits",
    "new_id",
    "now_iso",
    "plain_value",
    "read_project",
    "to_plain",
]
