"""A task submitted to Ray, seen from the executor: its attempts, their feedback and outcome,
retries after worker crashes, chaining to upstream tasks, and cancellation.
"""

from __future__ import annotations

import itertools
import logging
import pickle
import threading
from collections.abc import Callable
from typing import Any

from ._ray_feedback import FeedbackHub
from ._ray_worker import outcome_of
from ._task import Report, TaskEvent, TaskEventKind, TaskSpec
from ._worker import failed, skipped

_log = logging.getLogger(__name__)

#: What ``ray.get`` gave for one finished ref: (its value, None) or (None, what it raised).
Result = tuple[Any, Exception | None]


def results(refs: list[Any]) -> list[Result]:
    """The results of finished refs."""
    import ray

    try:
        return [(value, None) for value in ray.get(refs)]
    except Exception:  # one of them failed: fetch each on its own
        results: list[Result] = []
        for ref in refs:
            try:
                results.append((ray.get(ref), None))
            except Exception as exc:
                results.append((None, exc))
        return results


class HandleContext:
    """What every task handle of one executor shares."""

    def __init__(self, feedback: FeedbackHub,
                 watch: Callable[[Any, RayTaskHandle], None]) -> None:
        self.feedback = feedback
        #: Has the executor's completion thread report a ref's outcome to its handle.
        self.watch = watch
        #: Guards chained tasks' ``final``/``waiters``/``deferred`` across threads.
        self.chain_lock = threading.RLock()
        self._attempt_numbers = itertools.count()

    def attempt_key(self, job_id: str, attempt: int) -> str:
        """A key for a new attempt, unique per executor (the relay is too): a restarted job's
        new attempts never pick up an earlier run's leftovers."""
        return f"{job_id}:{attempt}:{next(self._attempt_numbers)}"


class RayTaskHandle:
    """A submitted Ray task: its attempts, their feedback and outcome (and retries).

    ``complete`` runs on the executor's completion thread once an attempt's result is ready
    (one thread for every task in flight: a blocked thread per task costs more than a trivial
    job's own work).

    Retries after a worker crash are ours, not Ray's, so that each attempt is announced and its
    feedback told apart (by a key per attempt).

    A chained task passes its upstream tasks' result refs to Ray, which starts it once they
    exist. If an upstream attempt crashed, the chained attempt fails with that crash without
    running: it then waits for the upstream task to settle and is submitted again with the
    retry's ref (not counted as one of its own retries), or skipped if the upstream failed.
    """

    def __init__(self, context: HandleContext, task: TaskSpec, report: Report,
                 remote: Any, upstream: list[RayTaskHandle] | None = None) -> None:
        self.context = context
        self.task = task
        self.report = report
        self.remote = remote
        self.payload = pickle.dumps(task, protocol=pickle.HIGHEST_PROTOCOL)
        self.lock = threading.Lock()
        self.ref: Any = None
        self.key = ""
        self.announced = False
        self.cancel_requested = False
        self.attempt = 0
        #: Chained tasks: the upstream tasks (``task.chained_upstream`` order), the refs the
        #: current attempt was given, and whether it waits for one of them to settle.
        self.upstream = upstream or []
        self.upstream_refs: list[Any] = []
        self.deferred = False
        #: The kind of the terminal event once reported; tasks deferred on this one.
        self.final: TaskEventKind | None = None
        self.waiters: list[RayTaskHandle] = []

    def start(self) -> None:
        self.key = self.context.attempt_key(self.task.job_id, self.attempt)
        self.announced = False
        self.upstream_refs = [upstream.ref for upstream in self.upstream]
        self.context.feedback.follow(self)
        ref = self.ref = self.remote.remote(self.payload, self.context.feedback.route, self.key,
                                            *self.upstream_refs)
        self.context.watch(ref, self)

    def cancel(self, force: bool = False) -> None:
        import ray

        with self.lock:
            self.cancel_requested = True
            ref = self.ref
        with self.context.chain_lock:
            deferred, self.deferred = self.deferred, False
        if deferred:  # nothing in Ray to cancel: it waits for an upstream task's retry
            self.settle(TaskEvent(self.task.job_id, TaskEventKind.CANCELLED))
            return
        if ref is not None:
            try:
                ray.cancel(ref, force=force)
            except Exception:  # already finished, or the worker is gone
                _log.debug("ray.cancel of %s failed", self.task.job_id, exc_info=True)

    def deliver(self, events: list[TaskEvent]) -> None:
        """Report events the task pushed (called under the executor's feedback lock)."""
        for event in events:
            if not self.announced:
                self.announced = True
                self.report(TaskEvent(event.job_id, TaskEventKind.STARTED, {
                    "pid": event.data.get("pid"), "attempt": self.attempt,
                    "started": event.data.get("started")}))
            if event.kind is not TaskEventKind.STARTED:
                self.report(event)

    def complete(self, ref: Any, result: Result) -> None:
        """An attempt ended: report its outcome, or start the next attempt after a crash."""
        # Compared by id, never by identity: under Ray Client, ``ray.wait`` hands back new ref
        # objects equal to (not the same as) the submitted ones.
        if ref != self.ref:
            return  # not the current attempt (cannot happen; be safe)
        if self.upstream and result[1] is not None and not self.cancel_requested \
                and self._upstream_broke():
            return
        outcome, crash = self._wait(result)
        if outcome is None and self.cancel_requested:
            outcome = TaskEvent(self.task.job_id, TaskEventKind.CANCELLED)
        if outcome is None and crash is not None and self.attempt < self.task.max_retries:
            self.attempt += 1
            with self.lock:
                if not self.cancel_requested:
                    self.start()
                    return
            outcome = TaskEvent(self.task.job_id, TaskEventKind.CANCELLED)
        if outcome is None:
            why = (f"the Ray worker running this job died ({type(crash).__name__}); "
                   f"retried {self.attempt} of {self.task.max_retries} time(s) allowed; "
                   "see the Ray logs for why it died") if crash is not None else \
                "the Ray task ended without reporting an outcome"
            outcome = failed(self.task.job_id, why)
        self.settle(outcome)

    def settle(self, outcome: TaskEvent) -> None:
        """Report the terminal event, then let chained tasks waiting on this one go on."""
        with self.context.chain_lock:
            # Reported under the lock: a chained task's skip never overtakes this event.
            self.final = outcome.kind
            self.report(outcome)
            waiters, self.waiters = self.waiters, []
        for waiter in waiters:
            waiter.upstream_settled()

    def _upstream_broke(self) -> bool:
        """After a failed attempt: whether the failure was an upstream attempt's (then this
        task waits for, or follows, its upstream tasks and True is returned)."""
        with self.context.chain_lock:
            if all(upstream.final is TaskEventKind.SUCCEEDED and upstream.ref == ref
                   for upstream, ref in zip(self.upstream, self.upstream_refs, strict=True)):
                return False  # its own failure
            self.deferred = True
        self.context.feedback.unfollow(self)
        self.upstream_settled()
        return True

    def upstream_settled(self) -> None:
        """A deferred task's upstream task settled: wait on, run again, or skip."""
        with self.context.chain_lock:
            if not self.deferred:
                return  # cancelled meanwhile (and reported then)
            unsettled = [upstream for upstream in self.upstream if upstream.final is None]
            failed = [upstream for upstream in self.upstream
                      if upstream.final not in (None, TaskEventKind.SUCCEEDED)]
            if unsettled and not failed:
                unsettled[0].waiters.append(self)
                return
            self.deferred = False
            if failed:
                outcome = skipped(self.task.job_id, failed[0].task.job.name)
            else:
                with self.lock:
                    if not self.cancel_requested:
                        self.start()  # with the upstream tasks' final refs
                        return
                outcome = TaskEvent(self.task.job_id, TaskEventKind.CANCELLED)
        self.settle(outcome)

    def _wait(self, result: Result) -> tuple[TaskEvent | None, Exception | None]:
        """Report one ended attempt's feedback; its terminal event, or its crash."""
        from ray import exceptions

        returned, error = result
        if error is not None:
            if not isinstance(error, exceptions.RayError):
                raise error
            self.context.feedback.unfollow(self)
            if isinstance(error, exceptions.TaskCancelledError):
                return None, None
            if isinstance(error, exceptions.RayTaskError):  # the task body broke (not user code)
                return failed(self.task.job_id, f"the Ray task failed: {error}"), None
            return None, error  # worker or node died
        outcome = outcome_of(self.task.job_id, returned)
        # Its frames are all in (waited for if need be) and what is still in the relay is
        # reported now, before the outcome.
        with self.context.feedback.attempt_ended(self.key, returned["sent"], returned["pushed"],
                                                 outcome.data.get("pid"),
                                                 returned.get("no_link")):
            if "pid" not in outcome.data:  # it ended without running (skipped, cached)
                return outcome, None
            if returned["items"]:
                self.deliver([
                    TaskEvent(outcome.job_id, TaskEventKind.STARTED, outcome.data),
                    TaskEvent(outcome.job_id, TaskEventKind.FEEDBACK,
                              {"items": returned["items"], **outcome.data})])
        # Not announced yet: the outcome implies the start (one message to the engine).
        return TaskEvent(outcome.job_id, outcome.kind,
                         {**outcome.data, "attempt": self.attempt}), None
