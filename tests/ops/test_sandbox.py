"""Jobs in the sandbox (issue 18): real operations on the real local and Ray executors, with
the server's data directory beside the artifact store, as ``forge serve`` lays them out.

A job cannot read the data directory's ``forge.db`` or ``owner-credentials.json``, nor this
process's ``/proc/<pid>/environ``, yet saves its outputs in the store inside that directory;
with ``network: false`` it cannot connect anywhere; cancels, feedback and crash retries work
as for unconfined jobs. The sandboxes start once per module (a second or more each).
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
import uuid
from collections.abc import Iterator
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
    SandboxPolicy,
    SandboxUnavailable,
    plan_pipeline,
)
from forge_ops.schema import JobStatus

pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None,
                                reason="needs bubblewrap (scripts/setup.sh installs it)")

SPY = '''
def spy(*, paths: str = "") -> Metrics:
    import os
    found = {}
    for path in paths.split("|"):
        try:
            with open(path, "rb") as secret:
                found[path] = f"read {len(secret.read())} bytes"
        except OSError as exc:
            found[path] = type(exc).__name__
    return {"found": found, "home": os.environ.get("HOME", ""), "env": sorted(os.environ)}
'''
CONNECT = '''
def connect(*, port: int = 0) -> Metrics:
    import socket
    interfaces = [name for _, name in socket.if_nameindex()]
    try:
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
    except OSError as exc:
        return {"connected": False, "interfaces": interfaces, "error": type(exc).__name__}
    return {"connected": True, "interfaces": interfaces, "error": ""}
'''
SLEEPY = '''
def sleepy(*, seconds: float = 60.0) -> Metrics:
    import time
    print("started", flush=True)
    end = time.time() + seconds
    while time.time() < end:
        time.sleep(0.05)
    return {"slept": seconds}
'''
TALK = '''
def talk(*, lines: int = 10, pause: float = 0.0) -> Metrics:
    import time
    for i in range(lines):
        print("line", i, flush=True)
        time.sleep(pause)
    return {"lines": lines}
'''
CRASH_ONCE = '''
def crash_once(*, marker: str = "") -> Metrics:
    import os
    path = os.path.join(os.environ["HOME"], marker)
    if not os.path.exists(path):
        open(path, "w").close()
        os._exit(3)
    return {"attempt": 2}
'''
OPS = {"spy": SPY, "connect": CONNECT, "sleepy": SLEEPY, "talk": TALK, "crash_once": CRASH_ONCE}
#: Set before the sandboxes start: no job may see the server's environment.
SECRET_VARIABLE = "FORGE_TEST_SERVER_SECRET"


class Layout:
    """A server's data directory with its secrets, and the artifact store inside it."""

    def __init__(self, root: Path) -> None:
        self.data = root / "data"
        self.data.mkdir()
        self.database = self.data / "forge.db"
        self.database.write_text("token hashes")
        self.credentials = self.data / "owner-credentials.json"
        self.credentials.write_text('{"token": "owner-secret"}')
        self.store = ArtifactStore(self.data / "artifacts")
        self.policy = SandboxPolicy(hidden=(str(self.data),), home=str(self.data / "job-home"),
                                    required=True)


@pytest.fixture(scope="module")
def layout(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Layout]:
    os.environ[SECRET_VARIABLE] = "do not leak"
    yield Layout(tmp_path_factory.mktemp("sandbox"))
    os.environ.pop(SECRET_VARIABLE, None)


@pytest.fixture(scope="module")
def sandboxed_local(layout: Layout) -> Iterator[LocalExecutor]:
    executor = LocalExecutor(max_workers=2, sandbox=layout.policy)
    executor.start()
    yield executor
    executor.shutdown()


@pytest.fixture(scope="module")
def sandboxed_ray(layout: Layout, ray_runtime: Any) -> Iterator[RayExecutor]:
    executor = RayExecutor(sandbox=layout.policy)
    executor.start()
    yield executor
    executor.shutdown()


@pytest.fixture(params=["local", pytest.param("ray", marks=pytest.mark.ray)])
def executor(request: pytest.FixtureRequest) -> Any:
    return request.getfixturevalue(f"sandboxed_{request.param}")


def run(layout: Layout, executor: Any, nodes: dict[str, tuple[Any, ...]],
        recorder: Recorder | None = None) -> Any:
    project = build_project(OPS, nodes, [])
    return Engine(layout.store, executor).run(
        plan_pipeline(project, "p"), recorder, use_cache=False)


def output(layout: Layout, result: Any, job: str) -> Any:
    record = result.jobs[job]
    assert record.status is JobStatus.SUCCEEDED, (record.error, record.traceback)
    return layout.store.get(record.outputs["out"])  # saved in the store in the data directory


class TestWhatAJobSees:
    def test_not_the_data_directory_nor_the_servers_environment(
            self, layout: Layout, executor: Any) -> None:
        secrets = [str(layout.database), str(layout.credentials), f"/proc/{os.getpid()}/environ"]
        result = run(layout, executor, {"Spy": ("spy", {"paths": "|".join(secrets)})})
        seen = output(layout, result, "Spy")
        assert seen["found"] == {path: "FileNotFoundError" for path in secrets}
        # The process can read them: only the sandbox keeps the job out.
        assert layout.credentials.read_text() and Path(secrets[2]).read_bytes()
        assert seen["home"] == layout.policy.home
        assert SECRET_VARIABLE not in seen["env"]
        assert not [name for name in seen["env"] if name.startswith("RAY_")]

    def test_no_network_where_the_node_says_so(self, layout: Layout, executor: Any) -> None:
        with socket.socket() as listener:
            listener.bind(("127.0.0.1", 0))
            listener.listen(8)
            port = listener.getsockname()[1]
            result = run(layout, executor, {
                "Online": ("connect", {"port": port}),
                "Offline": ("connect", {"port": port}, {}, {"network": False})})
        online, offline = output(layout, result, "Online"), output(layout, result, "Offline")
        assert online["connected"] is True
        assert set(online["interfaces"]) == {name for _, name in socket.if_nameindex()}
        # Offline, the job has a loopback of its own and nothing else: the server's port
        # there is closed, and no interface leads anywhere.
        assert offline == {"connected": False, "interfaces": ["lo"],
                           "error": "ConnectionRefusedError"}


class TestJobsRunAsUnconfinedOnesDo:
    def test_feedback_arrives_whole_and_in_order(self, layout: Layout, executor: Any) -> None:
        recorder = Recorder()
        result = run(layout, executor, {"Talk": ("talk", {"lines": 12, "pause": 0.03})},
                     recorder)
        assert output(layout, result, "Talk") == {"lines": 12}
        assert recorder.lines("Talk") == [f"line {i}" for i in range(12)]

    def test_cancel_stops_a_running_job(self, layout: Layout, executor: Any) -> None:
        started = threading.Event()
        project = build_project(OPS, {"S": ("sleepy", {})}, [])
        handle = Engine(layout.store, executor, cancel_grace=3.0).start(
            plan_pipeline(project, "p"),
            Recorder(lambda e: started.set() if isinstance(e, JobFeedback) else None),
            use_cache=False)
        assert started.wait(120)
        begun = time.monotonic()
        handle.cancel()
        result = handle.wait(60)
        assert time.monotonic() - begun < 10
        assert result.jobs["S"].status is JobStatus.CANCELLED

    def test_a_crashed_job_is_retried(self, layout: Layout, executor: Any) -> None:
        result = run(layout, executor, {"C": ("crash_once", {"marker": uuid.uuid4().hex})})
        assert output(layout, result, "C") == {"attempt": 2}
        assert result.jobs["C"].attempts == 2


class TestWithoutASandbox:
    def test_network_false_needs_one(self, layout: Layout, local_executor: LocalExecutor
                                     ) -> None:
        result = run(layout, local_executor,
                     {"Offline": ("connect", {"port": 1}, {}, {"network": False})})
        record = result.jobs["Offline"]
        assert record.status is JobStatus.FAILED
        assert "network: false" in (record.error or "") and "unconfined" in record.error

    def test_a_required_sandbox_is_refused_where_there_is_none(
            self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
        monkeypatch.setenv("FORGE_BWRAP", str(tmp_path / "no-bwrap"))
        monkeypatch.setenv("FORGE_JOBS_USER", "")
        with pytest.raises(SandboxUnavailable, match="apt-get install bubblewrap"):
            LocalExecutor(sandbox=SandboxPolicy(required=True)).start()
        # Not required: jobs run unconfined (a --no-auth server, the demo).
        LocalExecutor(sandbox=SandboxPolicy()).start()


@pytest.mark.gpu
def test_a_sandboxed_gpu_job_sees_its_gpu(layout: Layout, sandboxed_local: LocalExecutor
                                         ) -> None:
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    code = '''
def gpu() -> Metrics:
    import torch
    return {"cuda": torch.cuda.is_available(), "sum": torch.ones(4, device="cuda").sum().item()}
'''
    project = build_project({"gpu": code}, {"G": ("gpu", {}, {}, {"num_gpus": 1})}, [])
    result = Engine(layout.store, sandboxed_local).run(plan_pipeline(project, "p"),
                                                       use_cache=False)
    assert output(layout, result, "G") == {"cuda": True, "sum": 4.0}
