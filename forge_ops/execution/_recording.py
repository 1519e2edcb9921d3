"""What an execution records about its successful jobs: who produced each output (provenance)
and each job's cache entry, written by the engine in batches.

One writer for a whole run, one transaction per batch: when every worker wrote its own two
records per job, the workers of a pipeline of tiny jobs waited on each other's write locks in
the store's index (in a probe on two cores, a write took 125 µs on average instead of 35 µs
alone).
"""

from __future__ import annotations

import logging
import time

from forge_ops.artifacts import ArtifactError, ArtifactStore, Provenance
from forge_ops.schema import now_iso

from ._cache import CacheEntry, CacheIndex

#: A batch is written once it has this many jobs, or once its oldest job waited this long.
MAX_JOBS = 256
MAX_AGE = 0.1


class RunRecorder:
    """Collects the records of a run's successful jobs and writes them in batches."""

    def __init__(self, store: ArtifactStore, cache: CacheIndex, *, execution: str,
                 commit: str | None, log: logging.Logger) -> None:
        self.store = store
        self.cache = cache
        self.execution = execution
        self.commit = commit
        self.log = log
        self._producers: list[tuple[str, Provenance]] = []
        self._entries: list[CacheEntry] = []
        self._jobs = 0
        self._oldest: float | None = None

    def succeeded(self, job: str, outputs: dict[str, str], cache_key: str | None) -> None:
        """Note a job that ran and stored ``outputs`` (``{port: hash}``)."""
        created = now_iso("milliseconds")
        provenance = Provenance(self.commit, self.execution, job, created)
        self._producers.extend((artifact, provenance) for artifact in outputs.values())
        if cache_key is not None:
            self._entries.append(CacheEntry(cache_key, dict(outputs), self.execution, job,
                                            created))
        self._jobs += 1
        if self._oldest is None:
            self._oldest = time.monotonic()

    def deadline(self) -> float | None:
        """When the pending batch must be written at the latest (None: nothing pending)."""
        return None if self._oldest is None else self._oldest + MAX_AGE

    def due(self, now: float, idle: bool) -> bool:
        """Whether to write now: a full batch, or an old one while no event waits."""
        deadline = self.deadline()
        return deadline is not None and (self._jobs >= MAX_JOBS or (idle and now >= deadline))

    def flush(self) -> None:
        """Write what is pending. A failure is logged, not raised: the outputs are stored,
        and a missing record costs a recomputation (cache) or a gap in provenance."""
        producers, entries, jobs = self._producers, self._entries, self._jobs
        self._producers, self._entries, self._jobs, self._oldest = [], [], 0, None
        try:
            self.store.add_producers(producers)
            self.cache.record_many(entries)
        except (ArtifactError, OSError) as exc:
            self.log.warning("execution %s: the records of %d jobs could not be written to %s "
                             "(their outputs are stored): %s", self.execution, jobs, self.store,
                             exc)
