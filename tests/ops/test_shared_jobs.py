"""Executions running at the same time share their identical jobs: the first computes, the others
wait for it (a sweep's trials share everything upstream of the swept node)."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from engine_helpers import Recorder, build_project

from forge_ops.artifacts import ArtifactStore
from forge_ops.execution import (
    Engine,
    ExecutionResult,
    JobFeedback,
    LocalExecutor,
    RayExecutor,
    plan_pipeline,
)
from forge_ops.schema import JobStatus

SLOW_SOURCE = '''
def slow_source(*, n: int = 4, seconds: float = 1.5, fail: bool = False) -> Tensor:
    import time
    import torch
    print("computing", flush=True)
    time.sleep(seconds)
    if fail:
        raise ValueError("the source broke")
    return torch.arange(n, dtype=torch.float32)
'''
SCALE = '''
def scale(x: Tensor, /, *, factor: float = 2.0, seconds: float = 0.0) -> Tensor:
    import time
    time.sleep(seconds)
    return x * factor
'''


def trial_plan(factor: float, mid_seconds: float = 0.0, **source: Any) -> Any:
    """Source → Mid (same in every trial) → Leaf (scaled by the trial's ``factor``)."""
    project = build_project(
        {"slow": SLOW_SOURCE, "scale": SCALE},
        {"Source": ("slow", source), "Mid": ("scale", {"factor": 3.0, "seconds": mid_seconds}),
         "Leaf": ("scale", {"factor": factor})},
        [("Source", "out", "Mid", "x"), ("Mid", "out", "Leaf", "x")])
    return plan_pipeline(project, "p")


def statuses(result: ExecutionResult) -> dict[str, str]:
    return {job: record.status.value for job, record in result.jobs.items()}


def started_computing() -> tuple[Recorder, threading.Event]:
    started = threading.Event()
    recorder = Recorder(lambda e: started.set() if isinstance(e, JobFeedback)
                        and "computing" in e.lines else None)
    return recorder, started


@pytest.fixture
def engine(store: ArtifactStore, local_executor: LocalExecutor) -> Engine:
    return Engine(store, local_executor, cancel_grace=1.0)


class TestLocal:
    def test_concurrent_trials_compute_the_shared_job_once(self, engine: Engine) -> None:
        handles = [engine.start(trial_plan(factor)) for factor in (1.0, 2.0, 4.0)]
        results = [handle.wait(60) for handle in handles]
        assert all(r.status is JobStatus.SUCCEEDED for r in results), [statuses(r)
                                                                         for r in results]
        sources = [r.jobs["Source"] for r in results]
        computed = [s for s in sources if s.status is JobStatus.SUCCEEDED]
        assert len(computed) == 1
        owner = next(r.execution for r in results if r.jobs["Source"] is computed[0])
        assert all(s.cached_from == owner for s in sources if s is not computed[0])
        # One Source, one Mid (the second trial waits on it or hits the cache), three Leaves.
        assert sum(r.tasks_launched for r in results) == 5
        assert len({r.jobs["Leaf"].outputs["out"] for r in results}) == 3  # each its own

    def test_a_waiting_trial_says_whom_it_waits_for(self, engine: Engine) -> None:
        computing, started = started_computing()
        first = engine.start(trial_plan(1.0), computing)
        assert started.wait(60)
        recorder = Recorder()
        second = engine.start(trial_plan(2.0), recorder)
        first.wait(60)
        second.wait(60)
        assert any(f"runs in execution {first.execution}" in line
                   for line in recorder.lines("Source"))

    def test_the_owner_cancelled_hands_the_job_to_a_waiting_trial(self, engine: Engine) -> None:
        recorder, started = started_computing()
        owner = engine.start(trial_plan(1.0), recorder)
        assert started.wait(60)
        waiting = Recorder()
        waiter = engine.start(trial_plan(2.0), waiting)
        owner.cancel(reason="pruned: loss too high")
        cancelled, result = owner.wait(30), waiter.wait(60)
        assert cancelled.jobs["Source"].status is JobStatus.CANCELLED
        assert cancelled.jobs["Source"].error == "pruned: loss too high"
        assert result.status is JobStatus.SUCCEEDED, statuses(result)
        assert result.jobs["Source"].status is JobStatus.SUCCEEDED  # it ran it itself
        assert result.tasks_launched == 3
        assert any(f"execution {owner.execution} cancelled the shared job; running it here"
                   in line for line in waiting.lines("Source"))

    def test_a_failure_is_shared_not_repeated(self, engine: Engine) -> None:
        recorder, started = started_computing()
        owner = engine.start(trial_plan(1.0, fail=True, seconds=1.0), recorder)
        assert started.wait(60)
        waiter = engine.start(trial_plan(2.0, fail=True, seconds=1.0))
        failed, shared = owner.wait(60), waiter.wait(60)
        assert failed.jobs["Source"].status is JobStatus.FAILED
        assert shared.jobs["Source"].status is JobStatus.FAILED
        assert f"failed in execution {owner.execution}" in str(shared.jobs["Source"].error)
        assert "the source broke" in str(shared.jobs["Source"].error)
        assert shared.tasks_launched == 0

    def test_a_waiting_job_can_be_cancelled(self, engine: Engine) -> None:
        recorder, started = started_computing()
        owner = engine.start(trial_plan(1.0), recorder)
        assert started.wait(60)
        waiter = engine.start(trial_plan(2.0))
        waiter.cancel()
        result = waiter.wait(10)
        assert result.status is JobStatus.CANCELLED
        assert owner.wait(60).status is JobStatus.SUCCEEDED
        assert engine.shared.in_flight() == 0

    def test_no_cache_runs_do_not_share(self, engine: Engine) -> None:
        handles = [engine.start(trial_plan(f), use_cache=False) for f in (1.0, 2.0)]
        results = [h.wait(60) for h in handles]
        assert [r.jobs["Source"].status for r in results] == [JobStatus.SUCCEEDED] * 2


@pytest.mark.ray
@pytest.mark.slow
def test_on_ray_chained_jobs_are_shared_too(store: ArtifactStore,
                                            ray_executor: RayExecutor) -> None:
    """On Ray, Mid is submitted chained to the running Source (its key unknown to the engine):
    the trial that waited for Source must find Mid in flight, not start a second one."""
    engine = Engine(store, ray_executor, cancel_grace=2.0)
    recorder, started = started_computing()
    first = engine.start(trial_plan(1.0, 1.5, seconds=2.0), recorder)
    assert started.wait(120)
    others = [engine.start(trial_plan(f, 1.5, seconds=2.0)) for f in (2.0, 4.0)]
    results = [h.wait(120) for h in (first, *others)]
    assert all(r.status is JobStatus.SUCCEEDED for r in results), [statuses(r) for r in results]
    for job in ("Source", "Mid"):
        ran = [r for r in results if r.jobs[job].status is JobStatus.SUCCEEDED]
        assert len(ran) == 1, (job, [statuses(r) for r in results])
    assert sum(r.tasks_launched for r in results) == 5
