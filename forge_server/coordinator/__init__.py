"""The coordinator: run requests become executions whose jobs it writes into documents.

``coordinator_setup(CoordinatorConfig(...))`` installs it in the relay (after
``history_setup()``); ``app[COORDINATOR]`` is the :class:`Coordinator`. See ``_routes`` for the
HTTP API.
"""

from ._config import CoordinatorConfig, ExecutorKind
from ._coordinator import Coordinator
from ._errors import Conflict, CoordinatorError, NotFound, PipelineRejected
from ._planning import OUTPUT_OPERATION
from ._routes import COORDINATOR, coordinator_setup
from ._writer import ExecutionWriter

__all__ = [
    "COORDINATOR",
    "OUTPUT_OPERATION",
    "Conflict",
    "Coordinator",
    "CoordinatorConfig",
    "CoordinatorError",
    "ExecutionWriter",
    "ExecutorKind",
    "NotFound",
    "PipelineRejected",
    "coordinator_setup",
]
