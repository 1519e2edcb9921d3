"""The inside of a job: run operation code, capture its console, feedback API, references."""

from forge_ops.operations.types import (
    Any as Any,
)
from forge_ops.operations.types import (
    Architecture as Architecture,
)
from forge_ops.operations.types import (
    Artifact as Artifact,
)
from forge_ops.operations.types import (
    Criterion as Criterion,
)
from forge_ops.operations.types import (
    Dataset as Dataset,
)
from forge_ops.operations.types import (
    Layer as Layer,
)
from forge_ops.operations.types import (
    Metrics as Metrics,
)
from forge_ops.operations.types import (
    Model as Model,
)
from forge_ops.operations.types import (
    Tensor as Tensor,
)

from ._checkpoints import Checkpoints as Checkpoints
from ._checkpoints import checkpoint as checkpoint
from ._checkpoints import resume as resume
from ._console import MAX_LINE_CHARS as MAX_LINE_CHARS
from ._console import LineWriter as LineWriter
from ._console import capture_console as capture_console
from ._context import ArtifactLoader as ArtifactLoader
from ._context import JobContext as JobContext
from ._context import current_job as current_job
from ._context import job_context as job_context
from ._execute import OperationFailed as OperationFailed
from ._execute import OperationInterrupted as OperationInterrupted
from ._execute import execute_operation as execute_operation
from ._feedback import Graph as Graph
from ._feedback import Line as Line
from ._feedback import image as image
from ._feedback import load_artifact as load_artifact
from ._feedback import to_image_array as to_image_array
from ._references import ReferenceContext as ReferenceContext
from ._references import UnresolvedReference as UnresolvedReference
from ._references import resolve_references as resolve_references
from ._sink import FeedbackSink as FeedbackSink
from ._sink import MemorySink as MemorySink
from ._sink import NullSink as NullSink
from ._sink import storable_text as storable_text

__all__ = [
    "MAX_LINE_CHARS",
    "Any",
    "Architecture",
    "Artifact",
    "ArtifactLoader",
    "Checkpoints",
    "Criterion",
    "Dataset",
    "FeedbackSink",
    "Graph",
    "JobContext",
    "Layer",
    "Line",
    "LineWriter",
    "MemorySink",
    "Metrics",
    "Model",
    "NullSink",
    "OperationFailed",
    "OperationInterrupted",
    "ReferenceContext",
    "Tensor",
    "UnresolvedReference",
    "capture_console",
    "checkpoint",
    "current_job",
    "execute_operation",
    "image",
    "job_context",
    "load_artifact",
    "resolve_references",
    "resume",
    "storable_text",
    "to_image_array",
]
