"""Long jobs survive losing their worker: ``checkpoint(state)`` / ``resume()`` in user code, and
the built-in Train, which resumes to the very model an uninterrupted run trains."""

from __future__ import annotations

import os
import re
import signal
import threading
from pathlib import Path
from typing import Any

import pytest
import torch
from engine_helpers import Recorder, build_project

from forge_ops.arch import small_cnn
from forge_ops.artifacts import ArtifactStore
from forge_ops.execution import Engine, JobFeedback, LocalExecutor, RayExecutor, plan_pipeline
from forge_ops.operations import builtin_code
from forge_ops.runtime import MemorySink, execute_operation, resolve_references
from forge_ops.runtime import ReferenceContext as References

COUNT = '''
import os
import time

def count(*, to: int = 90, every: int = 10) -> Metrics:
    state = resume()
    start = 0 if state is None else state["done"]
    print("pid", os.getpid(), "from", start, flush=True)
    total = state["total"] if state else 0
    for i in range(start, to):
        total += i
        time.sleep(0.02)
        if (i + 1) % every == 0:
            checkpoint({"done": i + 1, "total": total}, step=i + 1)
            print("at", i + 1, flush=True)
    return {"total": total}
'''


@pytest.mark.parametrize("executor_name", ["local", "ray"])
def test_a_job_killed_twice_resumes_from_its_checkpoints(
        store: ArtifactStore, executor_name: str, request: pytest.FixtureRequest) -> None:
    executor: LocalExecutor | RayExecutor = request.getfixturevalue(f"{executor_name}_executor")
    kills: list[int] = []
    lock = threading.Lock()

    def kill_at_30_then_60(event: Any) -> None:
        if not isinstance(event, JobFeedback) or event.job != "C":
            return
        for line in event.lines:
            if line.startswith("pid "):
                with lock:
                    kill_at_30_then_60.pid = int(line.split()[1])  # type: ignore[attr-defined]
            elif line.startswith("at ") and int(line.split()[1]) >= 30 * (len(kills) + 1) \
                    and len(kills) < 2:
                with lock:
                    pid = kill_at_30_then_60.pid  # type: ignore[attr-defined]
                    kills.append(int(line.split()[1]))
                os.kill(pid, signal.SIGKILL)

    project = build_project({"count": COUNT}, {"C": ("count", {})}, [])
    recorder = Recorder(kill_at_30_then_60)
    result = Engine(store, executor, max_retries=2).run(plan_pipeline(project, "p"), recorder)
    assert len(kills) == 2
    record = result.jobs["C"]
    assert record.status.value == "succeeded", (record.error, recorder.lines("C"))
    assert record.attempts == 3
    assert store.get(record.outputs["out"]) == {"total": sum(range(90))}
    resumed = [int(m.group(1)) for line in recorder.lines("C")
               if (m := re.match(r"\[forge\] resuming from the checkpoint saved at step (\d+)",
                                 line))]
    # Each retry went on from the last checkpoint before its worker died, not from 0.
    assert len(resumed) == 2 and 30 <= resumed[0] < resumed[1], resumed
    # Once the job succeeded its checkpoint is gone: a restart computes afresh.
    assert not list(Path(store.location, "checkpoints").rglob("*.json"))


class MemoryCheckpoints:
    """Checkpoints kept in memory; ``lose_after`` saves, the 'worker' dies (an exception)."""

    def __init__(self, lose_after: int | None = None) -> None:
        self.saved: tuple[int, Any] | None = None
        self.saves = 0
        self.lose_after = lose_after

    def save(self, state: Any, step: int) -> None:
        import pickle

        self.saved = (step, pickle.loads(pickle.dumps(state)))  # as a store would
        self.saves += 1
        if self.lose_after is not None and self.saves >= self.lose_after:
            self.lose_after = None
            raise ConnectionAbortedError("the worker is gone")

    def load(self) -> tuple[int, Any] | None:
        return self.saved


def _train(data: dict[str, Any], keeper: MemoryCheckpoints | None, sink: MemorySink) -> Any:
    code = builtin_code("Train")
    attributes = {"max_iterations": 40, "batch_size": 16, "checkpoint_every": 7, "seed": 3}
    architecture = small_cnn()
    references = resolve_references(code, {"net": architecture["name"]}, References(
        architectures={"a": architecture}, seed=3))
    return execute_operation(code, attributes, references, {"data": data}, sink,
                             name="Train", checkpoints=keeper)["out"]


def test_train_resumes_to_the_model_an_uninterrupted_run_trains() -> None:
    torch.manual_seed(0)
    data = {"x": torch.randn(100, 3, 32, 32), "y": torch.randint(0, 10, (100,))}
    plain = _train(data, None, MemorySink())
    keeper = MemoryCheckpoints(lose_after=3)  # dies at iteration 21 (7, 14, 21)
    with pytest.raises(Exception, match="the worker is gone"):
        _train(data, keeper, MemorySink())
    sink = MemorySink()
    resumed = _train(data, keeper, sink)
    text = sink.text()
    assert "resuming from the checkpoint saved at step 21" in text
    assert "resuming at iteration 21/40" in text
    for (name, a), (_, b) in zip(resumed.state_dict().items(), plain.state_dict().items(),
                                 strict=True):
        assert torch.equal(a, b), name
    points = sink.graphs["Training Error"]["error"]
    assert points[0][0] == 22 and points[-1][0] == 40  # the plot goes on from there
