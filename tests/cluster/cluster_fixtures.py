"""Fixtures and helpers of the cluster tests (marker ``cluster``): a real multi-node Ray
cluster and a real S3-compatible store, started by the tests on loopback, stopped by process id.

- ``ray_cluster``: one for the session (a test that kills a node adds its own first): a head
  node (1 CPU, custom resource ``head``, the Ray Client server) and a worker node (1 CPU,
  resource ``worker``), each started with ``ray start`` in a temporary folder the test owns
  and with ports of its own, in its own process group (so the node, its raylet and its
  processes stop together: ``node.kill()``). Never ``ray stop``: that would end every Ray
  runtime on the machine. ``.add_node(...)`` adds a node (stopped with the cluster); ``.env``
  is what a process joining it needs (the cluster's token).
- ``moto_s3``: moto's S3 server on a free loopback port (``.endpoint``, ``.stop()``,
  ``.start()`` again on the same port), with a fresh bucket per test (``.bucket``).
- ``forge(url, *argv)``: the ``forge`` command line in this process, (exit code, stdout,
  stderr); ``run_detached``, ``wait_finished`` and ``get_json`` drive a ``--no-auth`` server.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from forge_tui.cli import main as forge_main

RAY = str(Path(sys.executable).with_name("ray"))
#: Ray notices a dead node after about this long (health checks every 0.5 s, 4 misses).
NODE_DEATH_SECONDS = 2.0
CLUSTER_SETTINGS = {
    "RAY_health_check_initial_delay_ms": "500",
    "RAY_health_check_period_ms": "500",
    "RAY_health_check_failure_threshold": "4",
    # The Ray Client proxy forks its per-client server while gRPC threads run; with gRPC's
    # fork handlers that child sometimes dies at start ("epoll_wait error: Bad file descriptor").
    "GRPC_ENABLE_FORK_SUPPORT": "0",
}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class RayNode:
    """One ``ray start`` node: its processes share the process group ``pgid``."""

    def __init__(self, pgid: int, temp_dir: Path, resources: dict[str, float]) -> None:
        self.pgid = pgid
        self.temp_dir = temp_dir
        self.resources = resources

    def alive(self) -> bool:
        try:
            os.killpg(self.pgid, 0)
        except ProcessLookupError:
            return False
        return True

    def kill(self) -> None:
        """SIGKILL every process of the node: the machine lost."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pgid, signal.SIGKILL)

    def stop(self, timeout: float = 10.0) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pgid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while self.alive() and time.monotonic() < deadline:
            time.sleep(0.1)
        self.kill()


class RayCluster:
    """A head node with the Ray Client server, and the nodes added to it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.token = secrets.token_hex(32)
        self.env = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": self.token,
                    **CLUSTER_SETTINGS}
        self.nodes: list[RayNode] = []
        self.port = free_port()
        self.client_port = free_port()

    def start_head(self, timeout: float = 60.0) -> RayNode:
        head = self._start(["--head", "--port", str(self.port), "--include-dashboard", "false",
                            "--dashboard-port", str(free_port()),
                            "--ray-client-server-port", str(self.client_port)], {"head": 1})
        # `ray start` returns before the Ray Client server listens (seconds on a busy box).
        deadline = time.monotonic() + timeout
        while True:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", self.client_port)) == 0:
                    return head
            if time.monotonic() > deadline:
                raise RuntimeError(f"the head's Ray Client server did not listen on port "
                                   f"{self.client_port} within {timeout:g} s")
            time.sleep(0.2)

    @property
    def address(self) -> str:
        """The GCS address, for processes on a node of the cluster."""
        return f"127.0.0.1:{self.port}"

    @property
    def client_address(self) -> str:
        return f"ray://127.0.0.1:{self.client_port}"

    def add_node(self, resources: dict[str, float], cpus: int = 1) -> RayNode:
        return self._start(["--address", self.address], resources, cpus)

    def _start(self, role: list[str], resources: dict[str, float], cpus: int = 1) -> RayNode:
        temp_dir = Path(tempfile.mkdtemp(prefix="node-", dir=self.root))
        ports = ["--node-manager-port", "--object-manager-port", "--runtime-env-agent-port",
                 "--dashboard-agent-listen-port", "--dashboard-agent-grpc-port",
                 "--metrics-export-port"]
        args = [RAY, "start", *role, "--node-ip-address", "127.0.0.1", "--num-cpus", str(cpus),
                "--num-gpus", "0", "--resources", json.dumps(resources), "--temp-dir",
                str(temp_dir), "--disable-usage-stats",
                *[arg for flag in ports for arg in (flag, str(free_port()))]]
        process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   text=True, start_new_session=True,
                                   env={**os.environ, **self.env})
        node = RayNode(process.pid, temp_dir, resources)
        self.nodes.append(node)
        output, _ = process.communicate(timeout=120)
        if process.returncode != 0:
            raise RuntimeError(f"ray start failed:\n{output[-3000:]}")
        return node

    def stop(self) -> None:
        for node in reversed(self.nodes):
            node.stop()


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[RayCluster]:
    root = Path(tempfile.mkdtemp(prefix="forge-cluster-", dir="/tmp"))  # short socket paths
    cluster = RayCluster(root)
    try:
        cluster.start_head()
        cluster.add_node({"worker": 1})
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)  # the nodes' logs and sockets


def forge(url: str, *argv: str) -> tuple[int, str, str]:
    """Run ``forge ARGV --server URL`` in this process: (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = forge_main([*argv, "--server", url])
        except SystemExit as exc:
            code = int(exc.code or 0)
    return code, out.getvalue(), err.getvalue()


def get_json(url: str, path: str) -> Any:
    """``GET {url}/api/{path}`` from a ``--no-auth`` server."""
    with urllib.request.urlopen(f"{url}/api/{path}", timeout=30) as response:
        return json.load(response)


def run_detached(url: str, project: str, pipeline: str, *options: str) -> str:
    """Start a run with ``forge run --detach``; its execution id."""
    code, out, err = forge(url, "run", project, pipeline, "--detach", *options)
    assert code == 0, err
    return out.split()[0]


def wait_finished(url: str, execution: str, timeout: float = 120.0) -> dict[str, Any]:
    """The execution's record once it finished (fails after ``timeout`` s: a run that never
    ends must fail the test, not hang it)."""
    deadline = time.monotonic() + timeout
    while True:
        record = get_json(url, f"executions/{execution}")
        if record["status"] not in ("queued", "running"):
            return dict(record)
        assert time.monotonic() < deadline, f"execution {execution} still running: {record}"
        time.sleep(0.3)


async def add_pipeline(url: str, project: str, pipeline: str, operations: dict[str, str],
                       edges: tuple[tuple[str, str, str, str], ...] = (),
                       attributes: dict[str, dict[str, Any]] | None = None) -> None:
    """Create ``project`` on a ``--no-auth`` server with a pipeline of one node per operation
    (``{name: code}``; a code of ``None``: the built-in of that name), ``edges`` as ``(src,
    src_port, dst, dst_port)`` between operation names, and node ``attributes`` by name."""
    import asyncio

    from forge_ops.operations import builtin_code
    from forge_ops.schema import ProjectDoc
    from forge_server.client import SyncClient, room_url

    code, _, err = await asyncio.to_thread(forge, url, "project", "create", project)
    assert code == 0, err
    async with SyncClient(room_url(url, f"{project}/main")) as client:
        await client.synced(30)
        doc = ProjectDoc(client.doc)
        pipeline_id = doc.add_pipeline(pipeline)
        nodes = {}
        for name, text in operations.items():
            operation = doc.add_operation(name, text or builtin_code(name),
                                          builtin=text is None)
            nodes[name] = doc.add_node(pipeline_id, operation,
                                       attributes=(attributes or {}).get(name))
        for src, src_port, dst, dst_port in edges:
            doc.connect(pipeline_id, nodes[src], src_port, nodes[dst], dst_port)
        await client.flush(30)


@pytest.fixture
def cli_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No stored credentials: commands talk to the test's server only."""
    monkeypatch.setenv("FORGE_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.delenv("FORGE_SERVER", raising=False)
    monkeypatch.delenv("FORGE_TOKEN", raising=False)


class MotoS3:
    """moto's S3 server on loopback; ``stop()`` is an outage, ``start()`` ends it."""

    def __init__(self) -> None:
        from moto.server import ThreadedMotoServer

        self.port = free_port()
        self._make: Callable[[], Any] = lambda: ThreadedMotoServer(ip_address="127.0.0.1",
                                                                   port=self.port, verbose=False)
        self.server: Any = None
        self.bucket = ""

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def env(self) -> dict[str, str]:
        """Credentials (moto takes any) for processes that use the store."""
        return {"AWS_ACCESS_KEY_ID": "forge-test", "AWS_SECRET_ACCESS_KEY": "forge-test",
                "AWS_DEFAULT_REGION": "us-east-1"}

    def start(self) -> None:
        self.server = self._make()
        self.server.start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None

    def new_bucket(self) -> str:
        import boto3

        self.bucket = f"forge-{uuid.uuid4().hex[:12]}"
        client = boto3.client("s3", endpoint_url=self.endpoint, **_boto_credentials(self.env))
        client.create_bucket(Bucket=self.bucket)
        return self.bucket


def _boto_credentials(env: dict[str, str]) -> dict[str, str]:
    return {"aws_access_key_id": env["AWS_ACCESS_KEY_ID"],
            "aws_secret_access_key": env["AWS_SECRET_ACCESS_KEY"],
            "region_name": env["AWS_DEFAULT_REGION"]}


@pytest.fixture(scope="module")
def moto_s3() -> Iterator[MotoS3]:
    pytest.importorskip("moto.server")
    pytest.importorskip("s3fs")
    server = MotoS3()
    server.start()
    try:
        yield server
    finally:
        server.stop()
