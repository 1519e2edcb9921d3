"""The paper's pipeline on both executors, and what only Ray does: resources, crashes, cancel.

All Ray tests share one runtime (``ray_runtime``, 2 CPUs) for the session.
"""

from __future__ import annotations

import itertools
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from engine_helpers import Recorder, build_project

from forge_ops.artifacts import ArtifactStore
from forge_ops.execution import (
    Engine,
    JobFeedback,
    LocalExecutor,
    RayExecutor,
    plan_pipeline,
)
from forge_ops.execution._feedback_link import FeedbackListener, make_route, parse_route
from forge_ops.schema import JobStatus

PID_THEN_WAIT = '''
def wait_for_kill(*, marker: str = "", seconds: float = 60.0) -> Tensor:
    import os, time, torch
    print("pid", os.getpid(), flush=True)
    if not os.path.exists(marker):
        open(marker, "w").close()
        time.sleep(seconds)
    return torch.ones(3)
'''
SLEEPY = '''
def sleepy(*, seconds: float = 60.0) -> Tensor:
    import time, torch
    print("started", flush=True)
    end = time.time() + seconds
    while time.time() < end:
        time.sleep(0.05)
    return torch.zeros(1)
'''
CONSUME = '''
def consume(x: Tensor, /) -> Metrics:
    return {"n": int(x.numel())}
'''
BLOCKED = '''
def blocked(*, seconds: float = 60.0) -> Tensor:
    import os, time, torch
    print("started", os.getpid(), flush=True)
    time.sleep(seconds)  # one blocking call: an interrupt lands only when it returns
    return torch.zeros(1)
'''
TALK = '''
def talk(*, lines: int = 10, pause: float = 0.0) -> Tensor:
    import time, torch
    for i in range(lines):
        print("line", i, flush=True)
        time.sleep(pause)
    return torch.zeros(1)
'''
CONSTANT = '''
def constant(*, value: int = 1) -> Tensor:
    import torch
    return torch.full((2,), value)
'''
BOOM = '''
def boom(x: Tensor, /) -> Tensor:
    raise ValueError("no good")
'''
THREADS = '''
def threads(x: Metrics = None, /, *, step: int = 0) -> Metrics:
    import os, torch
    seen = torch.get_num_threads()
    torch.set_num_threads(1)  # careless user code: the next job must not inherit this
    return {"pid": os.getpid(), "threads": seen}
'''
DOUBLE = '''
def double(x: Tensor, /) -> Tensor:
    return x * 2
'''
PRELOADED = '''
def preloaded() -> Metrics:
    import sys
    return {"dynamo": "torch._dynamo" in sys.modules}
'''
OPS = {"wait": PID_THEN_WAIT, "sleepy": SLEEPY, "consume": CONSUME, "blocked": BLOCKED,
       "talk": TALK, "constant": CONSTANT, "boom": BOOM, "double": DOUBLE, "threads": THREADS,
       "preloaded": PRELOADED}


def statuses(result: Any) -> dict[str, str]:
    return {job: record.status.value for job, record in result.jobs.items()}


def check_paper_run(result: Any, store: ArtifactStore, recorder: Recorder) -> None:
    assert result.status is JobStatus.SUCCEEDED, {
        j: (r.status, r.error, r.traceback) for j, r in result.jobs.items()}
    metrics = store.get(result.jobs["Test"].outputs["out"])
    assert metrics["accuracy"] > 0.3  # ten classes: chance is 0.1
    losses = [p for f in recorder.feedback("Train")
              for p in f.points.get("Training Error", {}).get("error", [])]
    assert len(losses) == 50
    assert losses[-1][1] < losses[0][1]
    # The two Outputs publish what they were given: the trained model and the metrics.
    assert result.jobs["ModelOut"].inputs["data"] == result.jobs["Train"].outputs["out"]
    assert result.jobs["MetricsOut"].inputs["data"] == result.jobs["Test"].outputs["out"]
    model = store.get(result.jobs["Train"].outputs["out"])
    assert sum(p.numel() for p in model.parameters()) > 0
    provenance = store.provenance(result.jobs["Train"].outputs["out"])
    assert provenance[0].execution == result.execution
    assert provenance[0].job == "Train"


class TestPaperPipelineLocal:
    def test_runs_caches_reruns_restarts_and_reproduces(
            self, paper_project: dict[str, Any], store: ArtifactStore,
            local_executor: LocalExecutor) -> None:
        engine = Engine(store, local_executor)
        plan = plan_pipeline(paper_project, "p")
        recorder = Recorder()
        first = engine.run(plan, recorder)
        check_paper_run(first, store, recorder)

        # An unchanged pipeline: everything cached, no task launched.
        cached = engine.run(plan)
        assert set(statuses(cached).values()) == {"cached"}
        assert cached.tasks_launched == 0

        # A new learning rate re-runs Train and what depends on it, nothing else.
        paper_project["pipelines"]["p"]["nodes"]["Train"]["attributes"]["learning_rate"] = 0.002
        changed = engine.run(plan_pipeline(paper_project, "p"))
        ran = {job for job, status in statuses(changed).items() if status == "succeeded"}
        assert ran == {"Train", "Test", "ModelOut", "MetricsOut"}
        assert statuses(changed)["Synthetic"] == statuses(changed)["Normalize"] == "cached"

        # Restarting Test re-runs Test (and the Output reading it) only.
        restarted = engine.restart(plan, first, "Test").wait(120)
        assert restarted.tasks_launched == 2
        assert restarted.jobs["Train"] == first.jobs["Train"]
        assert restarted.jobs["Test"].outputs == first.jobs["Test"].outputs

        # --no-cache reproduces every output hash bit for bit on the CPU.
        again = engine.run(plan, use_cache=False)
        assert again.tasks_launched == len(plan.jobs)
        assert again.outputs() == first.outputs()


def test_local_jobs_find_what_optimizers_import_already_loaded(
        store: ArtifactStore, local_executor: LocalExecutor) -> None:
    # torch's optimizers import torch._dynamo on first use (about a second); the fork server
    # imports it once instead of every Train job.
    result = Engine(store, local_executor).run(plan_pipeline(
        build_project(OPS, {"P": ("preloaded", {})}, []), "p"), use_cache=False)
    assert store.get(result.jobs["P"].outputs["out"]) == {"dynamo": True}


ORPHAN = """
import sys, time
sys.path.insert(0, sys.argv[2])
from engine_helpers import build_project
from forge_ops.artifacts import ArtifactStore
from forge_ops.execution import Engine, LocalExecutor, plan_pipeline
OP = (
    "def pid_then_sleep() -> Tensor:\\n"
    "    import os, time\\n"
    f"    open({sys.argv[1]!r}, 'w').write(str(os.getpid()))\\n"
    "    time.sleep(120)\\n"
)
executor = LocalExecutor()
executor.start()
plan = plan_pipeline(build_project({"o": OP}, {"J": ("o", {})}, []), "p")
Engine(ArtifactStore(sys.argv[1] + ".store"), executor).start(plan, use_cache=False)
time.sleep(120)
"""


def test_a_job_ends_when_the_executors_process_is_killed(tmp_path: Path) -> None:
    # A server killed with SIGKILL cannot stop its jobs; the kernel must, or they would train
    # for nobody (or hold a GPU) until they finish.
    import subprocess
    import sys

    pid_file = tmp_path / "job.pid"
    server = subprocess.Popen([sys.executable, "-c", ORPHAN, str(pid_file),
                               str(Path(__file__).parent)])
    try:
        deadline = time.monotonic() + 60
        while not (pid_file.exists() and pid_file.read_text()):
            assert time.monotonic() < deadline and server.poll() is None, "the job never started"
            time.sleep(0.05)
        job = int(pid_file.read_text())
        assert _alive(job)
    finally:
        server.kill()
        server.wait()
    deadline = time.monotonic() + 10
    while _alive(job):
        assert time.monotonic() < deadline, f"job {job} outlived the killed executor"
        time.sleep(0.05)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has ended
    except FileNotFoundError:
        return False


def test_a_ray_address_where_nothing_listens_fails_in_seconds() -> None:
    # ray.init waits minutes for such a cluster; the executor must say so at once. In a child
    # process: this one may already share a Ray runtime with other tests.
    import socket
    import subprocess
    import sys

    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    script = ("from forge_ops.execution import RayExecutor\n"
              f"RayExecutor('127.0.0.1:{port}').start()\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=120, check=False)  # ray.init alone would wait past this
    assert result.returncode == 1
    assert (f"ConnectionError: no Ray cluster answers at 127.0.0.1:{port} (Connection refused)"
            in result.stderr)


CUDA_SPY = """
import json, sys, traceback
import torch.cuda
touched = []
for name in ("is_available", "device_count", "init", "_lazy_init", "current_device",
             "get_device_properties", "get_device_capability", "set_device", "synchronize",
             "mem_get_info", "is_bf16_supported"):
    def spy(*args, _name=name, **kwargs):
        touched.append(_name + ": " + traceback.format_stack(limit=3)[0].strip())
        raise RuntimeError("CUDA touched while preloading")
    setattr(torch.cuda, name, spy)
from forge_ops.execution._local import FORK_SERVER_PRELOAD
for module in FORK_SERVER_PRELOAD:
    __import__(module)
print(json.dumps({"touched": touched, "dynamo": "torch._dynamo" in sys.modules}))
"""


def test_the_fork_server_preload_leaves_cuda_alone() -> None:
    # A fork server that had asked CUDA anything (even is_available) would hand every GPU job a
    # process in which CUDA cannot start; the GPU is not here, so watch torch.cuda's entry points.
    import json
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", CUDA_SPY], capture_output=True, text=True,
                         check=True, timeout=120).stdout
    seen = json.loads(out)
    assert seen == {"touched": [], "dynamo": True}


def test_a_gpu_job_on_the_local_executor_without_a_gpu_fails_instead_of_using_the_cpu(
        store: ArtifactStore, local_executor: LocalExecutor) -> None:
    from forge_ops.execution._devices import local_gpu_count

    if local_gpu_count() > 0:
        pytest.skip("this machine has a GPU")
    cpu = build_project(OPS, {"Job": ("constant", {"value": 7})}, [])
    engine = Engine(store, local_executor)
    assert statuses(engine.run(plan_pipeline(cpu, "p"))) == {"Job": "succeeded"}
    # The same job asking for a GPU: the CPU run is not its cached result, and it is refused.
    gpu = build_project(OPS, {"Job": ("constant", {"value": 7}, {}, {"num_gpus": 1})}, [])
    result = engine.run(plan_pipeline(gpu, "p"))
    assert statuses(result) == {"Job": "failed"}
    assert result.jobs["Job"].cached_from is None
    error = result.jobs["Job"].error or ""
    assert error.startswith("infeasible: Job asks for num_gpus=1 but this machine has 0 GPU(s)")
    assert "set the node's num_gpus to 0" in error
    assert result.tasks_launched == 1


@pytest.mark.ray
class TestRay:
    def test_paper_pipeline_runs_on_ray(self, paper_project: dict[str, Any],
                                        store: ArtifactStore, ray_executor: RayExecutor,
                                        local_executor: LocalExecutor) -> None:
        recorder = Recorder()
        plan = plan_pipeline(paper_project, "p")
        result = Engine(store, ray_executor).run(plan, recorder)
        check_paper_run(result, store, recorder)
        assert result.executor == "ray"

    def test_infeasible_resources_fail_at_once_with_a_reason(
            self, store: ArtifactStore, ray_executor: RayExecutor) -> None:
        project = build_project(OPS, {
            "Big": ("sleepy", {"seconds": 0.0}, {}, {"num_gpus": 64}),
            "Small": ("sleepy", {"seconds": 0.0}),
        }, [])
        begun = time.monotonic()
        result = Engine(store, ray_executor).run(plan_pipeline(project, "p"))
        assert time.monotonic() - begun < 60
        assert statuses(result) == {"Big": "failed", "Small": "succeeded"}
        assert "infeasible" in result.jobs["Big"].error
        assert "num_gpus=64" in result.jobs["Big"].error
        assert "lower the node's settings" in result.jobs["Big"].error

    @pytest.mark.parametrize("retries", [1, 0])
    def test_killed_worker_is_retried_or_fails_consistently(
            self, store: ArtifactStore, ray_executor: RayExecutor, tmp_path: Path,
            retries: int) -> None:
        killed = threading.Event()

        def kill(event: Any) -> None:
            if isinstance(event, JobFeedback) and event.job == "K" and not killed.is_set():
                for line in event.lines:
                    if line.startswith("pid "):
                        killed.set()
                        time.sleep(0.3)  # let it reach its sleep
                        os.kill(int(line.split()[1]), signal.SIGKILL)

        # After and Last are submitted chained to K before it is killed: they must follow
        # K's retry (or be skipped), not count K's crash as theirs.
        project = build_project(OPS, {
            "K": ("wait", {"marker": str(tmp_path / "marker")}),
            "After": ("double", {}),
            "Last": ("consume", {}),
        }, [("K", "out", "After", "x"), ("After", "out", "Last", "x")])
        engine = Engine(store, ray_executor, max_retries=retries)
        result = engine.run(plan_pipeline(project, "p"), Recorder(kill))
        assert killed.is_set()
        if retries:
            assert statuses(result) == {"K": "succeeded", "After": "succeeded",
                                        "Last": "succeeded"}
            assert result.jobs["K"].attempts == 2
            assert result.jobs["After"].attempts == result.jobs["Last"].attempts == 1
            assert store.get(result.jobs["Last"].outputs["out"]) == {"n": 3}
            assert result.status is JobStatus.SUCCEEDED
        else:
            assert statuses(result) == {"K": "failed", "After": "cancelled",
                                        "Last": "cancelled"}
            assert "upstream job K failed" in result.jobs["After"].error
            assert "Ray worker running this job died" in result.jobs["K"].error
            assert result.status is JobStatus.FAILED

    def test_jobs_chained_to_a_failing_job_are_cancelled_and_others_finish(
            self, store: ArtifactStore, ray_executor: RayExecutor) -> None:
        project = build_project(OPS, {
            "A": ("sleepy", {"seconds": 0.3}), "Bad": ("boom", {}), "After": ("consume", {}),
            "Other": ("consume", {}), "Wrong": ("consume", {}),
        }, [("A", "out", "Bad", "x"), ("Bad", "out", "After", "x"), ("A", "out", "Other", "x"),
            ("A", "nope", "Wrong", "x")])
        result = Engine(store, ray_executor).run(plan_pipeline(project, "p"))
        assert statuses(result) == {"A": "succeeded", "Bad": "failed", "After": "cancelled",
                                    "Other": "succeeded", "Wrong": "failed"}
        assert "ValueError: no good" in result.jobs["Bad"].error
        assert result.jobs["After"].error == "not run: upstream job Bad failed"
        assert "reads output 'nope' of A, which produced only ['out']" in \
            result.jobs["Wrong"].error
        # Chained jobs report what they read: the record is the same as an unchained run's.
        assert result.jobs["Other"].inputs == {"x": result.jobs["A"].outputs["out"]}
        assert result.jobs["Other"].cache_key
        assert result.tasks_launched == 4  # After ran nothing

    def test_jobs_that_end_are_reported_while_a_long_job_runs(
            self, store: ArtifactStore, ray_executor: RayExecutor) -> None:
        # One completion thread watches every attempt in flight: a long job must not hold
        # back the report of short jobs (nor of the job chained to one).
        project = build_project(OPS, {
            "Long": ("sleepy", {"seconds": 4.0}), "Quick": ("constant", {"value": 3}),
            "Next": ("consume", {}),
        }, [("Quick", "out", "Next", "x")])
        begun = time.monotonic()
        reported: dict[str, float] = {}

        def note(event: Any) -> None:
            if getattr(event, "status", None) is JobStatus.SUCCEEDED:
                reported[event.job] = time.monotonic() - begun

        result = Engine(store, ray_executor).run(plan_pipeline(project, "p"), Recorder(note))
        assert statuses(result) == {"Long": "succeeded", "Quick": "succeeded",
                                    "Next": "succeeded"}
        assert reported["Long"] >= 4.0
        assert reported["Next"] < reported["Long"] - 2.0, reported

    def test_a_chained_job_found_in_the_cache_runs_nothing(
            self, store: ArtifactStore, ray_executor: RayExecutor) -> None:
        # Source always recomputes, so Use is submitted chained to it and finds its key in
        # the cache in the worker (the same inputs as the first run).
        project = build_project(OPS, {
            "Source": ("constant", {"value": 7}, {}, {"always_recompute": True}),
            "Use": ("consume", {}),
        }, [("Source", "out", "Use", "x")])
        plan = plan_pipeline(project, "p")
        engine = Engine(store, ray_executor)
        first = engine.run(plan)
        recorder = Recorder()
        second = engine.run(plan, recorder)
        assert statuses(second) == {"Source": "succeeded", "Use": "cached"}
        assert second.jobs["Use"].cached_from == first.execution
        assert second.jobs["Use"].outputs == first.jobs["Use"].outputs
        assert second.jobs["Use"].cache_key == first.jobs["Use"].cache_key
        assert second.tasks_launched == 1
        assert recorder.statuses("Use") == ["queued", "cached"]

    def test_each_job_trains_with_the_threads_it_asked_for(
            self, store: ArtifactStore, ray_executor: RayExecutor) -> None:
        # torch's thread count is per thread and operations run in a thread kept from job to
        # job: a two-CPU job after a one-CPU job (or after code that changed it) on the same
        # worker must still get two.
        nodes = {f"J{i}": ("threads", {"step": i}, {}, {"num_cpus": 2 if i % 2 else 1})
                 for i in range(8)}
        edges = [(f"J{i}", "out", f"J{i + 1}", "x") for i in range(7)]
        result = Engine(store, ray_executor).run(plan_pipeline(
            build_project(OPS, nodes, edges), "p"), use_cache=False)
        seen = {job: store.get(r.outputs["out"]) for job, r in result.jobs.items()}
        assert {job: value["threads"] for job, value in seen.items()} == {
            f"J{i}": 2 if i % 2 else 1 for i in range(8)}
        pids = [seen[f"J{i}"]["pid"] for i in range(8)]
        assert any(a == b for a, b in itertools.pairwise(pids))  # a worker was reused

    @pytest.mark.parametrize("path", ["link", "relay", "unreachable link"])
    def test_feedback_arrives_whole_and_in_order_before_the_outcome(
            self, store: ArtifactStore, ray_runtime: Any, path: str,
            caplog: pytest.LogCaptureFixture) -> None:
        # Slow: sent while it runs, over the direct link, or through the relay actor (with the
        # link turned off, or offered where no worker can reach it); the other path is cut, so
        # a lost or misrouted frame fails the test. Quick: ends within one feedback interval,
        # so its lines come back with its outcome.
        executor = RayExecutor(direct_feedback=path != "relay")
        executor.start()
        try:
            if path == "link":
                ray_runtime.kill(executor._feedback.relay)
            elif path == "relay":
                assert executor._feedback.listener is None
            else:  # the route names a port nothing listens on (a listener closed at once)
                closed = FeedbackListener("127.0.0.1", lambda *frame: None)
                closed.close()
                feedback = executor._feedback
                feedback.route = make_route(parse_route(feedback.route)[0], closed)
            self.check_feedback_order(store, executor)
        finally:
            executor.shutdown()
        relayed = [r for r in caplog.records
                   if "could not use the feedback link" in r.getMessage()]
        assert len(relayed) == (path == "unreachable link")
        if relayed:
            assert "Connection refused" in relayed[0].getMessage()

    def check_feedback_order(self, store: ArtifactStore, executor: RayExecutor) -> None:
        project = build_project(OPS, {
            "Slow": ("talk", {"lines": 40, "pause": 0.02}),
            "Quick": ("talk", {"lines": 5, "pause": 0.0}),
        }, [])
        recorder = Recorder()
        result = Engine(store, executor).run(plan_pipeline(project, "p"), recorder)
        assert statuses(result) == {"Slow": "succeeded", "Quick": "succeeded"}
        assert recorder.lines("Slow") == [f"line {i}" for i in range(40)]
        assert recorder.lines("Quick") == [f"line {i}" for i in range(5)]
        for job in ("Slow", "Quick"):
            assert recorder.statuses(job) == ["queued", "running", "succeeded"]
        # Nothing about a job is reported after its outcome.
        last = {job: max(i for i, e in enumerate(recorder.events)
                         if getattr(e, "job", None) == job) for job in ("Slow", "Quick")}
        for job, index in last.items():
            assert getattr(recorder.events[index], "status", None) is JobStatus.SUCCEEDED

    def test_cancel_in_the_middle_of_a_job(self, store: ArtifactStore,
                                           ray_executor: RayExecutor) -> None:
        started = threading.Event()
        project = build_project(OPS, {"S": ("sleepy", {}), "After": ("consume", {})},
                                [("S", "out", "After", "x")])
        handle = Engine(store, ray_executor, cancel_grace=3.0).start(
            plan_pipeline(project, "p"),
            Recorder(lambda e: started.set() if isinstance(e, JobFeedback) else None))
        assert started.wait(60)
        begun = time.monotonic()
        handle.cancel()
        result = handle.wait(60)
        assert time.monotonic() - begun < 10
        assert result.status is JobStatus.CANCELLED
        assert statuses(result) == {"S": "cancelled", "After": "cancelled"}

    def test_cancel_of_a_job_blocked_in_one_call_ends_its_worker(
            self, store: ArtifactStore, ray_executor: RayExecutor) -> None:
        started = threading.Event()
        project = build_project(OPS, {"B": ("blocked", {})}, [])
        recorder = Recorder(lambda e: started.set() if isinstance(e, JobFeedback) else None)
        handle = Engine(store, ray_executor, cancel_grace=20.0).start(
            plan_pipeline(project, "p"), recorder)
        assert started.wait(60)
        begun = time.monotonic()
        handle.cancel()
        result = handle.wait(60)
        assert time.monotonic() - begun < 15  # well before the 60 s sleep or the grace period
        assert statuses(result) == {"B": "cancelled"}, result.jobs["B"].error
        # The worker itself ended (it would otherwise sleep on, holding its CPU).
        worker = int(next(line for line in recorder.lines("B") if line.startswith("started"))
                     .split()[1])
        deadline = time.monotonic() + 10
        while Path(f"/proc/{worker}").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not Path(f"/proc/{worker}").exists()


@pytest.mark.gpu
@pytest.mark.ray
def test_gpu_jobs_reuse_their_worker(store: ArtifactStore, ray_executor: RayExecutor) -> None:
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    pid_op = '''
def pid(*, i: int = 0) -> Metrics:
    import os, torch
    return {"pid": os.getpid(), "cuda": torch.cuda.is_available(), "i": i}
'''
    project = build_project({"pid": pid_op}, {
        f"G{i}": ("pid", {"i": i}, {}, {"num_gpus": 1}) for i in range(3)}, [])
    result = Engine(store, ray_executor).run(plan_pipeline(project, "p"))
    values = [store.get(r.outputs["out"]) for r in result.jobs.values()]
    assert all(v["cuda"] for v in values)
    assert len({v["pid"] for v in values}) == 1  # max_calls=0: no worker restart per task
