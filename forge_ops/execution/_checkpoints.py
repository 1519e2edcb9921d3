"""A job's checkpoints in the artifact store: each saved state is an ordinary content-addressed
artifact; a small pointer file per job (``checkpoints/{key}.json``, written whole) names the
latest. The key joins the execution, the job and its cache key, so a retry or a restart of the
same job with the same inputs finds it, and nothing else does. The pointer goes once the job
succeeds (the states stay: artifacts are never deleted)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from forge_ops.artifacts import ArtifactStore, canonical_json
from forge_ops.schema import now_iso

from ._task import TaskSpec


class StoreCheckpoints:
    """``forge_ops.runtime.Checkpoints`` on the job's artifact store."""

    def __init__(self, store: ArtifactStore, task: TaskSpec) -> None:
        self.store = store
        key = canonical_json([task.execution, task.job_id, task.cache_key or ""])
        name = hashlib.sha256(key.encode()).hexdigest()[:32]
        self.path = store.path("checkpoints", name[:2], f"{name}.json")
        #: Whether this attempt saved or found one (else there is nothing to clear: most jobs
        #: never checkpoint, and a removal is a round trip in an object store).
        self.used = False

    def save(self, state: Any, step: int) -> None:
        self.used = True
        stored = self.store.put({"step": step, "state": state})
        self.store.write_json(self.path, {"hash": stored.hash, "step": step,
                                          "created": now_iso("milliseconds")})

    def load(self) -> tuple[int, Any] | None:
        try:
            pointer = json.loads(self.store.read_bytes(self.path))
        except (FileNotFoundError, ValueError):
            return None
        self.used = True
        saved = self.store.get(pointer["hash"])
        return int(saved["step"]), saved["state"]

    def clear(self) -> None:
        """The job succeeded: a later restart computes afresh."""
        try:
            self.store.fs.rm_file(self.path)
        except FileNotFoundError:
            pass
