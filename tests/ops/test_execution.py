"""The engine on the local executor: scheduling, failures, cache, restart, cancel, feedback."""

from __future__ import annotations

import hashlib
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from engine_helpers import Recorder

from forge_ops.artifacts import ArtifactStore, canonical_json
from forge_ops.execution import (
    CacheIndex,
    Engine,
    FeedbackBatcher,
    JobFeedback,
    LocalExecutor,
    PlanError,
    cache_key,
    normalize_code,
    plan_pipeline,
)
from forge_ops.execution._cache import runtime_versions
from forge_ops.schema import JobStatus

SOURCE = '''
def source(*, n: int = 4, seed: int = 0) -> Tensor:
    import torch
    print("making", n)
    return torch.arange(n, dtype=torch.float32) + seed
'''
SCALE = '''
def scale(x: Tensor, /, *, factor: float = 2.0) -> Tensor:
    return x * factor
'''
TOTAL = '''
def total(x: Tensor, /) -> Metrics:
    return {"total": float(x.sum())}
'''
BOOM = '''
def boom(x: Tensor, /) -> Tensor:
    values = x.tolist()
    return values[0] / 0
'''
SLEEPY = '''
def sleepy(x: Tensor, /, *, seconds: float = 30.0) -> Tensor:
    import time
    start = time.time()
    print("started", flush=True)
    while time.time() - start < seconds:
        time.sleep(0.05)
    return x
'''
STUBBORN = '''
def stubborn(x: Tensor, /) -> Tensor:
    import time
    print("ignoring interrupts", flush=True)
    for _ in range(600):
        try:
            time.sleep(0.05)
        except BaseException:
            pass
    return x
'''
CHATTY = '''
def chatty(x: Tensor, /, *, count: int = 3000) -> Tensor:
    import time
    line = Graph("progress").line("i")
    for i in range(count):
        print("line", i)
        line.add(i, i * 2)
        if i % 300 == 0:
            time.sleep(0.05)
    return x
'''
SUICIDE = '''
def suicide(x: Tensor, /, *, marker: str = "") -> Tensor:
    import os, signal
    if not os.path.exists(marker):
        open(marker, "w").close()
        os.kill(os.getpid(), signal.SIGKILL)
    return x
'''
PICTURE = '''
def picture(x: Tensor, /) -> Tensor:
    import numpy
    image("sample", numpy.full((4, 5), 200, dtype=numpy.uint8))
    return x
'''
OPS = {"picture": PICTURE, "source": SOURCE, "scale": SCALE, "total": TOTAL, "boom": BOOM,
       "sleepy": SLEEPY, "stubborn": STUBBORN, "chatty": CHATTY, "suicide": SUICIDE}


def project(nodes: dict[str, tuple[Any, ...]], edges: list[tuple[str, str, str, str]]
            ) -> dict[str, Any]:
    from engine_helpers import build_project

    return build_project(OPS, nodes, edges)


def chain_project(**scale_attributes: Any) -> dict[str, Any]:
    """A → B → C and A → D: Source, Scale, Total, and an independent Total."""
    return project(
        {"A": ("source", {"n": 5}), "B": ("scale", scale_attributes), "C": ("total", {}),
         "D": ("total", {})},
        [("A", "out", "B", "x"), ("B", "out", "C", "x"), ("A", "out", "D", "x")],
    )


@pytest.fixture
def engine(store: ArtifactStore, local_executor: LocalExecutor) -> Engine:
    return Engine(store, local_executor, cancel_grace=1.0)


def statuses(result: Any) -> dict[str, str]:
    return {job: record.status.value for job, record in result.jobs.items()}


class TestPlan:
    def test_one_job_per_node_in_dependency_order(self) -> None:
        plan = plan_pipeline(chain_project(), "p")
        assert set(plan.jobs) == {"A", "B", "C", "D"}
        assert plan.order.index("A") < plan.order.index("B") < plan.order.index("C")
        assert plan.jobs["B"].inputs["x"].src_job == "A"
        assert plan.downstream("B") == {"B", "C"}
        assert plan.downstream("A") == {"A", "B", "C", "D"}

    def test_pipeline_found_by_name(self) -> None:
        assert plan_pipeline(chain_project(), "pipeline").pipeline == "p"

    def test_cycle_is_refused_naming_its_nodes(self) -> None:
        cyclic = project({"B": ("scale", {}), "C": ("scale", {})},
                         [("B", "out", "C", "x"), ("C", "out", "B", "x")])
        with pytest.raises(PlanError, match=r"cycle.*remove one of its edges"):
            plan_pipeline(cyclic, "p")

    def test_unknown_operation_and_doubled_input_are_refused(self) -> None:
        unknown = project({"A": ("nope", {})}, [])
        with pytest.raises(PlanError, match="not in the project"):
            plan_pipeline(unknown, "p")
        doubled = project({"A": ("source", {}), "A2": ("source", {}), "B": ("scale", {})},
                          [("A", "out", "B", "x"), ("A2", "out", "B", "x")])
        with pytest.raises(PlanError, match="two incoming edges"):
            plan_pipeline(doubled, "p")
        with pytest.raises(PlanError, match="no pipeline"):
            plan_pipeline(doubled, "missing")

    def test_settings_are_read_and_checked(self) -> None:
        gpu = project({"A": ("source", {}, {}, {"num_gpus": 1, "always_recompute": True})}, [])
        settings = plan_pipeline(gpu, "p").jobs["A"].settings
        assert (settings.num_cpus, settings.num_gpus, settings.always_recompute) == (1, 1, True)
        bad = project({"A": ("source", {}, {}, {"num_cpus": "lots"})}, [])
        with pytest.raises(PlanError, match="must be numbers"):
            plan_pipeline(bad, "p")


class TestCacheKey:
    def test_comments_and_formatting_do_not_change_the_key(self) -> None:
        reformatted = "# a comment\ndef scale(x: Tensor, /, *, factor: float=2.0)->Tensor:\n" \
                      "\n    return x*factor   # doubled\n"
        assert normalize_code(reformatted) == normalize_code(SCALE)
        plain = plan_pipeline(chain_project(), "p").jobs["B"]
        edited = project({"B": ("scale", {})}, [])
        edited["operations"]["scale"]["code"] = reformatted
        assert cache_key(plan_pipeline(edited, "p").jobs["B"], {"x": "h"}) == cache_key(
            plain, {"x": "h"})

    def test_attributes_inputs_code_and_references_change_the_key(self) -> None:
        job = plan_pipeline(chain_project(), "p").jobs["B"]
        key = cache_key(job, {"x": "h1"})
        assert cache_key(job, {"x": "h2"}) != key
        other = plan_pipeline(chain_project(factor=3.0), "p").jobs["B"]
        assert cache_key(other, {"x": "h1"}) != key
        changed = chain_project()
        changed["operations"]["scale"]["code"] = SCALE.replace("x * factor", "x * factor + 1")
        assert cache_key(plan_pipeline(changed, "p").jobs["B"], {"x": "h1"}) != key
        arch = project({"A": ("source", {}, {"net": "a1"})}, [])
        arch["architectures"] = {"a1": {"name": "net", "layers": {}, "edges": {}}}
        before = cache_key(plan_pipeline(arch, "p").jobs["A"], {})
        arch["architectures"]["a1"]["layers"] = {"l": {"type": "Linear", "attributes": {}}}
        assert cache_key(plan_pipeline(arch, "p").jobs["A"], {}) != before

    def test_the_device_class_is_part_of_the_key(self) -> None:
        def key(settings: dict[str, Any]) -> str:
            gpu = project({"B": ("scale", {}, {}, settings)}, [])
            return cache_key(plan_pipeline(gpu, "p").jobs["B"], {"x": "h"})

        cpu = key({})
        assert key({"num_gpus": 0}) == cpu == key({"num_cpus": 4})  # CPUs do not change numbers
        assert key({"num_gpus": 1}) != cpu
        assert key({"num_gpus": 2}) not in (cpu, key({"num_gpus": 1}))
        # CPU jobs keep the keys they had before the device was keyed (caches stay warm).
        plain = plan_pipeline(chain_project(), "p").jobs["B"]
        material = {"code": normalize_code(plain.code), "attributes": plain.attributes,
                    "references": plain.reference_content, "runtime": runtime_versions(),
                    "inputs": {"x": "h"}}
        assert cache_key(plain, {"x": "h"}) == hashlib.sha256(
            canonical_json(material).encode()).hexdigest()

    def test_jobs_are_ordered_as_graphlib_orders_them(self) -> None:
        # The plan's order is the snapshot's and the execution document's job order: jobs
        # ready together keep graphlib's order (the order it first met them), not node order.
        def node(name: str) -> dict[str, Any]:
            return {"operation": "op", "name": name, "attributes": {}, "references": {},
                    "settings": {}}

        def edge(src: str, dst: str) -> dict[str, str]:
            return {"src": src, "src_port": "out", "dst": dst, "dst_port": "x"}

        plain = project({}, [])
        plain["operations"] = {"op": {"name": "Op", "code": "def op(x=None):\n    return x\n",
                                      "builtin": False}}
        plain["pipelines"]["p"]["nodes"] = {n: node(n.upper()) for n in ("n1", "n2", "n3", "n4")}
        plain["pipelines"]["p"]["edges"] = {"e1": edge("n3", "n1"), "e2": edge("n2", "n4")}
        assert plan_pipeline(plain, "p").order == ("n3", "n2", "n1", "n4")

    def test_a_reference_to_a_published_artifact_keys_on_its_hash(self) -> None:
        # Artifacts are keyed by their name and have no "name" field; a reference naming one
        # (not an architecture or layer) resolves to its hash.
        uses = project({"A": ("source", {}, {"net": "weights"})}, [])
        uses["artifacts"] = {"weights": {"hash": "h1", "kind": "model", "shape": None,
                                         "dtype": None, "bytes": 1, "produced_by": None,
                                         "created": "2026-01-01T00:00:00"}}
        before = cache_key(plan_pipeline(uses, "p").jobs["A"], {})
        uses["artifacts"]["weights"]["hash"] = "h2"
        assert cache_key(plan_pipeline(uses, "p").jobs["A"], {}) != before
        # A value that names nothing in the project (a torch.nn loss, say) stays a value.
        uses["pipelines"]["p"]["nodes"]["A"]["references"] = {"net": "CrossEntropyLoss"}
        assert plan_pipeline(uses, "p").jobs["A"].reference_content == {
            "net": {"value": "CrossEntropyLoss"}}


class TestRunning:
    def test_chain_runs_and_outputs_load_back(self, engine: Engine, store: ArtifactStore,
                                              recorder: Recorder) -> None:
        result = engine.run(plan_pipeline(chain_project(factor=3.0), "p"), recorder)
        assert result.status is JobStatus.SUCCEEDED
        assert store.get(result.jobs["C"].outputs["out"]) == {"total": 30.0}
        assert store.get(result.jobs["D"].outputs["out"]) == {"total": 10.0}
        assert recorder.statuses("B") == ["queued", "running", "succeeded"]
        assert "making 5" in recorder.lines("A")
        provenance = store.provenance(result.jobs["B"].outputs["out"])
        assert (provenance[0].execution, provenance[0].job) == (result.execution, "B")
        assert result.to_plain()["jobs"]["C"]["status"] == "succeeded"
        assert result.jobs["B"].inputs == {"x": result.jobs["A"].outputs["out"]}

    def test_failure_keeps_user_traceback_and_independent_branches_finish(
            self, engine: Engine) -> None:
        failing = project(
            {"A": ("source", {}), "Bad": ("boom", {}), "After": ("total", {}),
             "Other": ("total", {})},
            [("A", "out", "Bad", "x"), ("Bad", "out", "After", "x"), ("A", "out", "Other", "x")])
        result = engine.run(plan_pipeline(failing, "p"))
        assert result.status is JobStatus.FAILED
        bad = result.jobs["Bad"]
        assert bad.status is JobStatus.FAILED
        assert bad.error == "ZeroDivisionError: float division by zero"
        assert 'File "<operation Bad>", line 4, in boom' in bad.traceback
        assert "forge_ops" not in bad.traceback  # only the user's frames
        assert result.jobs["After"].status is JobStatus.CANCELLED
        assert "upstream job Bad failed" in result.jobs["After"].error
        assert result.jobs["Other"].status is JobStatus.SUCCEEDED

    def test_missing_output_port_fails_the_reader_with_advice(self, engine: Engine) -> None:
        wrong = project({"A": ("source", {}), "B": ("scale", {})}, [("A", "nope", "B", "x")])
        result = engine.run(plan_pipeline(wrong, "p"))
        assert result.jobs["B"].status is JobStatus.FAILED
        assert "reads output 'nope' of A, which produced only ['out']" in result.jobs["B"].error


class TestCache:
    def test_unchanged_rerun_is_fully_cached_with_zero_tasks(self, engine: Engine) -> None:
        plan = plan_pipeline(chain_project(), "p")
        first = engine.run(plan)
        second = engine.run(plan)
        assert first.tasks_launched == 4
        assert second.tasks_launched == 0
        assert set(statuses(second).values()) == {"cached"}
        assert all(r.cached_from == first.execution for r in second.jobs.values())
        assert second.outputs() == first.outputs()

    def test_changed_attribute_reruns_only_that_job_and_downstream(self, engine: Engine) -> None:
        engine.run(plan_pipeline(chain_project(factor=2.0), "p"))
        changed = engine.run(plan_pipeline(chain_project(factor=5.0), "p"))
        assert statuses(changed) == {"A": "cached", "B": "succeeded", "C": "succeeded",
                                     "D": "cached"}
        assert changed.tasks_launched == 2

    def test_failures_are_never_cached(self, engine: Engine) -> None:
        failing = plan_pipeline(project({"A": ("source", {}), "Bad": ("boom", {})},
                                        [("A", "out", "Bad", "x")]), "p")
        engine.run(failing)
        again = engine.run(failing)
        assert statuses(again) == {"A": "cached", "Bad": "failed"}
        assert again.tasks_launched == 1

    def test_always_recompute_and_no_cache(self, engine: Engine) -> None:
        nodes = {"A": ("source", {}), "B": ("scale", {}, {}, {"always_recompute": True})}
        plan = plan_pipeline(project(nodes, [("A", "out", "B", "x")]), "p")
        first = engine.run(plan)
        second = engine.run(plan)
        assert statuses(second) == {"A": "cached", "B": "succeeded"}
        third = engine.run(plan, use_cache=False)
        assert statuses(third) == {"A": "succeeded", "B": "succeeded"}
        assert third.outputs() == first.outputs()  # deterministic: same hashes

    def test_a_finished_job_is_recorded_while_the_run_goes_on(self, engine: Engine,
                                                              store: ArtifactStore) -> None:
        started = threading.Event()
        plan = plan_pipeline(project({"A": ("source", {}), "Slow": ("sleepy", {})},
                                     [("A", "out", "Slow", "x")]), "p")
        handle = engine.start(plan, Recorder(lambda e: started.set() if isinstance(
            e, JobFeedback) and "started" in e.lines else None))
        try:
            assert started.wait(60)  # A finished before Slow began
            done = handle.records()["A"]
            deadline = time.monotonic() + 10
            while not store.provenance(done.outputs["out"]) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert [p.job for p in store.provenance(done.outputs["out"])] == ["A"]
            assert done.cache_key is not None
            entry = CacheIndex(store).lookup(done.cache_key)
            assert entry is not None and entry.job == "A"
        finally:
            handle.cancel()
            handle.wait(30)

    def test_a_damaged_record_index_fails_the_run_saying_what_to_do(
            self, engine: Engine, store: ArtifactStore) -> None:
        Path(store.location).mkdir(parents=True)
        Path(store.location, "index.sqlite").write_bytes(b"not a database" * 100)
        result = engine.run(plan_pipeline(chain_project(), "p"))
        assert result.status is JobStatus.FAILED
        assert "index.sqlite" in str(result.jobs["A"].error)
        assert "move it aside" in str(result.jobs["A"].error)

    def test_records_that_cannot_be_written_are_logged_not_raised(
            self, store: ArtifactStore, caplog: pytest.LogCaptureFixture) -> None:
        import logging

        from forge_ops.execution._recording import RunRecorder

        output = store.put([1]).hash
        Path(store.location, "index.sqlite").write_bytes(b"not a database" * 100)
        recorder = RunRecorder(store, CacheIndex(store), execution="e1", commit=None,
                               log=logging.getLogger("forge.test"))
        recorder.succeeded("A", {"out": output}, "k" * 64)
        with caplog.at_level(logging.WARNING, logger="forge.test"):
            recorder.flush()
        assert "the records of 1 jobs could not be written" in caplog.text
        assert "index.sqlite" in caplog.text
        assert recorder.deadline() is None  # nothing left pending
        assert store.get(output) == [1]


class TestRestart:
    def test_restart_reruns_the_job_and_its_downstream_only(self, engine: Engine,
                                                            recorder: Recorder) -> None:
        plan = plan_pipeline(chain_project(), "p")
        first = engine.run(plan)
        restarted = engine.restart(plan, first, "B", recorder).wait(60)
        assert restarted.execution == first.execution
        assert statuses(restarted) == {"A": "succeeded", "B": "succeeded", "C": "succeeded",
                                       "D": "succeeded"}
        assert restarted.tasks_launched == 2
        assert {e.job for e in recorder.events if hasattr(e, "job")} == {"B", "C"}
        assert restarted.jobs["A"] == first.jobs["A"]


class TestCancel:
    def test_cancel_mid_job_stops_it_and_skips_downstream(self, engine: Engine) -> None:
        started = threading.Event()
        recorder = Recorder(lambda e: started.set() if isinstance(e, JobFeedback)
                            and "started" in e.lines else None)
        plan = plan_pipeline(project(
            {"A": ("source", {}), "Slow": ("sleepy", {}), "After": ("total", {})},
            [("A", "out", "Slow", "x"), ("Slow", "out", "After", "x")]), "p")
        handle = engine.start(plan, recorder)
        assert started.wait(60)
        begun = time.monotonic()
        handle.cancel()
        result = handle.wait(30)
        assert time.monotonic() - begun < 5
        assert result.status is JobStatus.CANCELLED
        assert statuses(result) == {"A": "succeeded", "Slow": "cancelled", "After": "cancelled"}

    def test_cancel_one_job_lets_independent_jobs_finish(self, engine: Engine) -> None:
        started = threading.Event()
        plan = plan_pipeline(project(
            {"A": ("source", {}), "Slow": ("sleepy", {}), "Quick": ("sleepy", {"seconds": 1.0})},
            [("A", "out", "Slow", "x"), ("A", "out", "Quick", "x")]), "p")
        handle = engine.start(plan, Recorder(
            lambda e: started.set() if isinstance(e, JobFeedback) and e.job == "Slow" else None))
        assert started.wait(60)
        handle.cancel("Slow")
        result = handle.wait(30)
        assert statuses(result) == {"A": "succeeded", "Slow": "cancelled", "Quick": "succeeded"}

    def test_job_ignoring_interrupts_is_killed_after_the_grace_period(
            self, engine: Engine) -> None:
        started = threading.Event()
        recorder = Recorder(lambda e: started.set() if isinstance(e, JobFeedback)
                            and "ignoring interrupts" in e.lines else None)
        plan = plan_pipeline(project({"A": ("source", {}), "S": ("stubborn", {})},
                                     [("A", "out", "S", "x")]), "p")
        handle = engine.start(plan, recorder)
        assert started.wait(60)
        handle.cancel()
        result = handle.wait(30)
        assert result.jobs["S"].status is JobStatus.CANCELLED
        assert any("killing its worker" in line for line in recorder.lines("S"))


class TestFeedback:
    def test_feedback_is_batched_to_about_ten_writes_per_second(self, engine: Engine,
                                                                recorder: Recorder) -> None:
        plan = plan_pipeline(project({"A": ("source", {}), "Chat": ("chatty", {})},
                                     [("A", "out", "Chat", "x")]), "p")
        result = engine.run(plan, recorder)
        record = result.jobs["Chat"]
        assert record.status is JobStatus.SUCCEEDED
        batches = recorder.feedback("Chat")
        lines = recorder.lines("Chat")
        assert lines == [f"line {i}" for i in range(3000)]  # all of them, in order
        points = [p for b in batches for p in b.points.get("progress", {}).get("i", [])]
        assert points == [(float(i), float(i * 2)) for i in range(3000)]
        assert record.duration is not None
        assert len(batches) <= record.duration * 10 + 3


    def test_images_are_stored_as_artifacts(self, engine: Engine, store: ArtifactStore,
                                            recorder: Recorder) -> None:
        plan = plan_pipeline(project({"A": ("source", {}), "P": ("picture", {})},
                                     [("A", "out", "P", "x")]), "p")
        result = engine.run(plan, recorder)
        assert result.jobs["P"].status is JobStatus.SUCCEEDED
        images = {name: h for f in recorder.feedback("P") for name, h in f.images.items()}
        assert set(images) == {"sample"}
        picture = store.get(images["sample"])
        assert picture.shape == (4, 5)
        assert int(picture[0, 0]) == 200
        assert store.provenance(images["sample"])[0].job == "P"

    def test_batcher_caps_console_and_respects_the_interval(self) -> None:
        batcher = FeedbackBatcher("e", interval=0.1, console_cap=4, batch_lines=3,
                                  trickle_lines=1)
        batcher.add("j", [("console", "stdout", f"l{i}") for i in range(5)])
        batcher.note("j", "retrying")  # engine notes are never dropped
        batcher.add("j", [("graph", "g", "line", 1, 2.5), ("image", "im", "h")])
        assert batcher.due(now=100.0) == ["j"]
        first = batcher.flush("j", now=100.0)
        assert first is not None
        assert first.lines == ["l2", "l3", "l4", "retrying"]  # a batch keeps its last lines
        assert first.console_dropped == 2
        assert first.points == {"g": {"line": [(1.0, 2.5)]}}
        assert first.images == {"im": "h"}
        batcher.add("j", [("console", "stdout", f"late{i}") for i in range(3)])
        assert batcher.due(now=100.05) == []  # within the interval: held back
        assert batcher.next_due() == pytest.approx(100.1)
        later = batcher.flush("j", now=100.2)
        # Past the job's cap of 4 forwarded lines: only the last line of each batch.
        assert later is not None and later.lines == ["late2"] and later.console_dropped == 2

    def test_batcher_thins_long_lines_of_points_and_keeps_their_span(self) -> None:
        batcher = FeedbackBatcher("e", line_points=100)
        batcher.add("j", [("graph", "g", "loss", i, -i) for i in range(1000)])
        event = batcher.flush("j", now=1.0)
        assert event is not None
        xs = [x for x, _ in event.points["g"]["loss"]]
        assert xs[:100] == list(range(100))  # whole up to line_points
        assert xs[100:102] == [100.0, 102.0]  # then every 2nd point, then every 4th, ...
        assert xs[199:202] == [298.0, 300.0, 304.0]
        assert len(xs) < 400 and xs[-1] >= 900  # the run's whole span, more coarsely


class TestCrashes:
    def test_killed_worker_is_retried(self, store: ArtifactStore,
                                      local_executor: LocalExecutor, tmp_path: Path) -> None:
        engine = Engine(store, local_executor, max_retries=1)
        plan = plan_pipeline(project(
            {"A": ("source", {}), "K": ("suicide", {"marker": str(tmp_path / "m")})},
            [("A", "out", "K", "x")]), "p")
        result = engine.run(plan)
        assert result.jobs["K"].status is JobStatus.SUCCEEDED
        assert result.jobs["K"].attempts == 2

    def test_killed_worker_without_retries_fails_the_job(self, store: ArtifactStore,
                                                         local_executor: LocalExecutor,
                                                         tmp_path: Path) -> None:
        engine = Engine(store, local_executor, max_retries=0)
        plan = plan_pipeline(project(
            {"A": ("source", {}), "K": ("suicide", {"marker": str(tmp_path / "m")}),
             "After": ("total", {})},
            [("A", "out", "K", "x"), ("K", "out", "After", "x")]), "p")
        result = engine.run(plan)
        assert result.status is JobStatus.FAILED
        assert "worker process died (exit code -9)" in result.jobs["K"].error
        assert result.jobs["After"].status is JobStatus.CANCELLED


class _UnreachableExecutor:
    """An executor whose cluster is gone: every submission raises."""

    name = "unreachable"

    def start(self) -> None:
        pass

    def submit(self, task: Any, report: Any) -> Any:
        raise ConnectionError("the cluster at ray://gone:10001 does not answer")

    def shutdown(self) -> None:
        pass


def test_a_submission_error_fails_the_job_with_the_reason(store: ArtifactStore) -> None:
    engine = Engine(store, _UnreachableExecutor())
    handle = engine.start(plan_pipeline(chain_project(), "p"))
    with pytest.raises(KeyError, match="no job 'nope'"):
        handle.cancel("nope")
    result = handle.wait(30)
    assert result.status is JobStatus.FAILED
    assert "could not start the job: the cluster at ray://gone:10001" in result.jobs["A"].error
    assert result.jobs["B"].status is JobStatus.CANCELLED
    assert result.tasks_launched == 0
