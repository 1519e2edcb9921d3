"""Jobs shared by the executions of one engine while they run: a registry of jobs in flight by
cache key.

The cache makes a job computed once reusable by every later execution; this registry does the
same for executions running *at the same time* (a sweep's trials share everything upstream of
the swept node). The first execution to launch a key owns it; the others wait for its outcome
instead of starting a duplicate, then take its outputs as a cache hit (``cached_from``: the
owner). A failure is shared as a failure (it would fail again); if the owner is cancelled or its
run ends without an outcome, the first waiter launches the job itself and the rest wait on it.
Outcomes stay known for a while after they settle, because the cache index is written in batches.

:class:`RunSharing` is one run's side of it, so that ``_run`` only calls it at four places.
"""

from __future__ import annotations

import queue
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from forge_ops.schema import JobStatus, now_iso

from ._batch import FeedbackBatcher
from ._cache import cache_key
from ._plan import JobSpec, Plan
from ._results import JobRecord

#: How many settled outcomes are remembered (each a few hashes).
REMEMBERED = 4096
_SHARED_OK = (JobStatus.SUCCEEDED, JobStatus.CACHED)


@dataclass(frozen=True)
class SharedJobSettled:
    """To a waiting run: the job it waited for settled in ``execution``."""

    job: str  # the waiting run's job
    status: JobStatus  # SUCCEEDED: reuse ``outputs``; FAILED: fail too; CANCELLED: run it
    execution: str
    outputs: dict[str, str] = field(default_factory=dict)
    error: str | None = None


Notify = Callable[[SharedJobSettled], None]


def sharing_key(spec: JobSpec, key: str) -> str:
    """The registry's key of a job: its cache key and the resources it asks for (a job that
    cannot get 64 GPUs fails; the same job asking for none must not share that failure)."""
    return f"{key}/{spec.settings.num_cpus:g}/{spec.settings.num_gpus:g}"


@dataclass
class _Flight:
    execution: str
    job: str
    name: str
    waiters: list[tuple[str, str, Notify]] = field(default_factory=list)


@dataclass(frozen=True)
class Claim:
    """What :meth:`SharedJobs.claim` found: nothing (the caller now owns the key), a running
    owner to wait for, or a settled success to reuse."""

    owner: str | None = None  # the execution computing it
    owner_job: str | None = None  # its job's name
    outputs: dict[str, str] | None = None  # a settled success
    execution: str | None = None  # which computed that success


class SharedJobs:
    """The registry of one engine (thread-safe: every run's thread calls it)."""

    def __init__(self, remembered: int = REMEMBERED) -> None:
        self._lock = threading.Lock()
        self._flights: dict[str, _Flight] = {}
        self._settled: OrderedDict[str, tuple[dict[str, str], str]] = OrderedDict()
        self._remembered = remembered

    def claim(self, key: str, execution: str, job: str, name: str, notify: Notify) -> Claim:
        """Own ``key``, or wait for its owner (``notify`` is called when it settles), or reuse
        its settled success."""
        with self._lock:
            settled = self._settled.get(key)
            if settled is not None:
                return Claim(outputs=dict(settled[0]), execution=settled[1])
            flight = self._flights.get(key)
            if flight is None:
                self._flights[key] = _Flight(execution, job, name)
                return Claim()
            flight.waiters.append((execution, job, notify))
            return Claim(owner=flight.execution, owner_job=flight.name)

    def register(self, key: str, execution: str, job: str, name: str) -> bool:
        """Own ``key`` if nobody computes or computed it (a job already submitted, whose key
        became known only now); whether it is now the caller's."""
        with self._lock:
            if key in self._flights or key in self._settled:
                return False
            self._flights[key] = _Flight(execution, job, name)
            return True

    def settle(self, key: str, execution: str, job: str, status: JobStatus, *,
               outputs: dict[str, str], error: str | None = None) -> None:
        """The owner's job finished: tell its waiters (a cancelled owner hands the job to the
        first of them, who becomes the owner)."""
        with self._lock:
            flight = self._flights.get(key)
            if flight is None or (flight.execution, flight.job) != (execution, job):
                return
            del self._flights[key]
            if status in _SHARED_OK:
                self._settled[key] = (dict(outputs), execution)
                while len(self._settled) > self._remembered:
                    self._settled.popitem(last=False)
                waiters, status = flight.waiters, JobStatus.SUCCEEDED
            elif status is JobStatus.FAILED:
                waiters = flight.waiters
            else:
                waiters, status = flight.waiters[:1], JobStatus.CANCELLED
                if flight.waiters:  # the first waiter runs it; the others wait on it
                    heir_execution, heir_job, _ = flight.waiters[0]
                    self._flights[key] = _Flight(heir_execution, heir_job, flight.name,
                                                 flight.waiters[1:])
        for _, waiter_job, notify in waiters:
            notify(SharedJobSettled(waiter_job, status, execution, dict(outputs), error))

    def withdraw(self, key: str, execution: str, job: str) -> None:
        """A waiter no longer waits (its job was cancelled)."""
        with self._lock:
            flight = self._flights.get(key)
            if flight is not None:
                flight.waiters = [w for w in flight.waiters if (w[0], w[1]) != (execution, job)]

    def in_flight(self) -> int:
        """How many keys are being computed now."""
        with self._lock:
            return len(self._flights)


class SharingRun(Protocol):
    """What :class:`RunSharing` uses of its run (``_run.Run``)."""

    execution: str
    plan: Plan
    records: dict[str, JobRecord]
    inbox: queue.Queue[Any]
    batcher: FeedbackBatcher
    dependents: dict[str, list[str]]
    chained: set[str]
    runtime: dict[str, str]

    def update(self, job: str, **changes: Any) -> JobRecord: ...

    def finish_unrun(self, job: str, status: JobStatus, why: str) -> None: ...

    def launch(self, job: str, shared: bool = True) -> None: ...

    def ready(self, job: str) -> bool: ...


class RunSharing:
    """One run's use of the engine's :class:`SharedJobs`."""

    def __init__(self, run: SharingRun, shared: SharedJobs) -> None:
        self.run = run
        self.shared = shared
        self.owned: dict[str, str] = {}  # job -> key it computes for others too
        self.awaiting: dict[str, str] = {}  # job -> key it waits for

    def wait_or_own(self, job: str, key: str) -> bool:
        """Before launching ``job``: True when another execution computes (or computed) it,
        so this run waits for (or already has) its outcome instead."""
        run = self.run
        name = run.records[job].name
        key = sharing_key(run.plan.jobs[job], key)
        claim = self.shared.claim(key, run.execution, job, name, run.inbox.put)
        if claim.outputs is not None:
            now = now_iso("milliseconds")
            run.update(job, status=JobStatus.CACHED, started=now, finished=now,
                       outputs=claim.outputs, cached_from=claim.execution)
            return True
        if claim.owner is None:
            self.owned[job] = key
            return False
        self.awaiting[job] = key
        run.batcher.note(job, f"[forge] the same job runs in execution {claim.owner} "
                              f"({claim.owner_job}); waiting for its result")
        return True

    def on_settled(self, message: SharedJobSettled) -> None:
        """The job this run waited for settled elsewhere."""
        run, job = self.run, message.job
        if self.awaiting.pop(job, None) is None:
            return  # cancelled meanwhile
        if message.status is JobStatus.SUCCEEDED:
            now = now_iso("milliseconds")
            run.update(job, status=JobStatus.CACHED, started=now, finished=now,
                       outputs=message.outputs, cached_from=message.execution)
        elif message.status is JobStatus.FAILED:
            run.finish_unrun(job, JobStatus.FAILED,
                             f"failed in execution {message.execution}, which ran the same job: "
                             f"{message.error or 'no reason given'}")
        else:  # the owner was cancelled: this run computes it now (it owns the key)
            self.owned[job] = sharing_key(run.plan.jobs[job], str(run.records[job].cache_key))
            run.batcher.note(job, f"[forge] execution {message.execution} cancelled the shared "
                                  "job; running it here")
            run.launch(job, shared=False)

    def withdraw(self, job: str) -> bool:
        """Cancel a waiting job's wait; whether it was waiting."""
        key = self.awaiting.pop(job, None)
        if key is None:
            return False
        self.shared.withdraw(key, self.run.execution, job)
        return True

    def finished(self, job: str) -> None:
        """``job`` reached a final status: settle it for the waiters if this run owns it. On a
        success, the jobs submitted chained to it get their keys first, so that a run which
        is told of this success finds them in flight."""
        run = self.run
        record = run.records[job]
        if record.status in _SHARED_OK:
            self._own_chained(job)
        key = self.owned.pop(job, None)
        if key is not None:
            self.shared.settle(key, run.execution, job, record.status,
                               outputs=dict(record.outputs), error=record.error)

    def _own_chained(self, job: str) -> None:
        run = self.run
        for dependent in run.dependents.get(job, ()):
            if dependent not in run.chained or dependent in self.owned or not run.ready(dependent):
                continue
            spec = run.plan.jobs[dependent]
            inputs = {port: run.records[wire.src_job].outputs.get(wire.src_port, "")
                      for port, wire in spec.inputs.items()}
            key = sharing_key(spec, cache_key(spec, inputs, run.runtime))
            if self.shared.register(key, run.execution, dependent, spec.name):
                self.owned[dependent] = key

    def close(self) -> None:
        """The run ended: what it still owns goes to the waiters, its waits are withdrawn."""
        for job, key in list(self.owned.items()):
            self.shared.settle(key, self.run.execution, job, JobStatus.CANCELLED, outputs={})
        self.owned.clear()
        for job in list(self.awaiting):
            self.withdraw(job)
