"""Settings of the coordinator: which executor runs jobs and where artifacts are stored."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from forge_ops.execution import SandboxPolicy


class ExecutorKind(StrEnum):
    RAY = "ray"
    LOCAL = "local"


@dataclass(frozen=True)
class CoordinatorConfig:
    artifacts: str
    """Artifact store location: a folder or any fsspec URL (``s3://bucket/forge``)."""
    executor: ExecutorKind = ExecutorKind.RAY
    """Executor used when a run request names none."""
    ray_address: str | None = None
    """Ray cluster to join; None starts a local runtime (or uses ``RAY_ADDRESS``)."""
    local_workers: int | None = None
    """Jobs the local executor runs at once (default: the number of CPUs)."""
    cancel_grace_s: float = 5.0
    """After a cancel request, how long a job may unwind before its worker is killed."""
    write_interval_s: float = 0.1
    """Minimum time between two writes into one execution document (about 10 per second)."""
    inspect_timeout_s: float = 120.0
    """Limit for the child process that summarises or exports an artifact."""
    sandbox: SandboxPolicy | None = None
    """How jobs are confined (``forge serve`` always sets one); None: they run unconfined, as
    the server's user."""
    store_options: Mapping[str, Any] = field(default_factory=dict)
    """fsspec storage options of an object store (``endpoint_url``…), for every process."""
    forward_env: tuple[str, ...] = ()
    """Patterns (``AWS_*``) of the server's environment variables handed to Ray workers."""
    probe_cluster: bool = True
    """Check each node type of a Ray cluster it joins (job runtime, store) before the first
    job (not a runtime it starts itself, on this machine)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "executor", ExecutorKind(self.executor))
        if self.cancel_grace_s <= 0 or self.write_interval_s < 0 or self.inspect_timeout_s <= 0:
            raise ValueError("coordinator timings must be positive")
