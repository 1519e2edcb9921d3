"""`forge serve` confines jobs (issue 18): a writer's job cannot read the server's owner token,
database or environment; a server with accounts that cannot confine jobs refuses to start
unless ``--unconfined-jobs`` allows it. Real `forge serve` subprocesses, local executor."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from forge_ops.artifacts import ArtifactStore
from forge_ops.execution import Confinement, confinement
from forge_ops.schema import ProjectDoc
from forge_server.auth import AuthStore
from forge_server.client import open_document

SPY = '''
def spy(*, paths: str = "") -> Metrics:
    found = {}
    for path in paths.split("|"):
        try:
            with open(path, "rb") as secret:
                found[path] = secret.read().decode(errors="replace")
        except OSError as exc:
            found[path] = type(exc).__name__
    return found
'''

#: A job's output whose loading (``forge artifact show``) copies the owner token into the
#: artifact store, where the job's author could read it back.
PLANT = '''
def plant(*, secret: str = "", leak: str = "") -> Any:
    class Loader:
        def __reduce__(self):
            copy = f"(lambda token: open({leak!r}, 'w').write(token))(open({secret!r}).read())"
            return (eval, (copy,))
    return Loader()
'''


async def call(url: str, token: str, method: str = "GET", body: Any = None) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession(headers=headers) as session, session.request(
        method, url, json=body
    ) as response:
        return response.status, await response.json()


async def a_writers_job_tries_to_steal(data: Path, server: Any, refused: str) -> None:
    """A writer runs a job that reads the server's secrets, and another whose output, loaded
    by ``forge artifact show``, would copy the owner token into the store: ``refused`` is the
    error every attempt must meet."""
    owner_token = server.token  # written at the first start, beside the data directory
    assert owner_token
    with AuthStore.open(data) as auth:
        auth.add_user("mallory")
        auth.create_project("heist", "mallory")
        token, _ = auth.create_token("mallory")
    secrets = [str(server.owner_credentials), str(data / "forge.db"),
               f"/proc/{server.proc.pid}/environ"]
    leak = data / "artifacts" / "leak.txt"
    project = ProjectDoc.create("heist")
    pipeline = project.add_pipeline("spy")
    project.add_node(pipeline, project.add_operation("Spy", SPY), "Spy",
                     attributes={"paths": "|".join(secrets)})
    project.add_node(pipeline, project.add_operation("Plant", PLANT), "Plant",
                     attributes={"secret": secrets[0], "leak": str(leak)})
    async with open_document(server.url, token, "heist/main") as client:
        client.doc.apply_update(project.doc.get_update())
    status, record = await call(f"{server.url}/api/projects/heist/runs", token, "POST",
                                {"pipeline": "spy"})
    assert status == 201, record
    async with asyncio.timeout(120):
        while record["status"] not in ("succeeded", "failed", "cancelled"):
            await asyncio.sleep(0.2)
            _, record = await call(f"{server.url}/api/executions/{record['execution']}", token)
    jobs = {job["name"]: job for job in record["jobs"].values()}
    assert record["status"] == "succeeded", jobs
    # The job's output was saved in the store inside the data directory, and says it found
    # none of the server's secrets (which exist: the owner token was written at start).
    found = ArtifactStore(data / "artifacts").get(jobs["Spy"]["outputs"]["out"])
    assert found == {path: refused for path in secrets}
    assert owner_token not in str(found)
    # Showing the planted artifact loads it in a child of the server, confined as jobs are.
    planted = jobs["Plant"]["outputs"]["out"]
    status, shown = await call(
        f"{server.url}/api/executions/{record['execution']}/artifacts/{planted}", token)
    assert status >= 400 and refused in shown["error"], shown
    assert not leak.exists()


@pytest.mark.skipif(shutil.which("bwrap") is None, reason="needs bubblewrap")
async def test_a_writers_job_cannot_read_the_owner_token_database_or_server_environment(
    tmp_path: Path, serve_process: Callable[..., Any]
) -> None:
    data = tmp_path / "data"
    server = serve_process(data, "--executor", "local", "--log-level", "WARNING")
    assert any("Jobs run in a bubblewrap sandbox" in line for line in server.output)
    await a_writers_job_tries_to_steal(data, server, "FileNotFoundError")


@pytest.mark.skipif(os.geteuid() != 0, reason="jobs run as another user only for a root server")
async def test_without_bubblewrap_a_root_servers_jobs_run_as_an_unprivileged_user(
    tmp_path: Path, serve_process: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FORGE_BWRAP", str(tmp_path / "no-bwrap"))
    method, reason = confinement(required=True)
    if method is not Confinement.USER:  # e.g. Python lives under /root, which it cannot read
        pytest.skip(f"no user here that jobs could run as: {reason}")
    # Where the jobs user can reach the data directory (pytest's folders are closed to it).
    reachable = Path(tempfile.mkdtemp())
    reachable.chmod(0o711)
    try:
        data = reachable / "data"
        server = serve_process(data, "--executor", "local", "--log-level", "WARNING")
        assert any("Jobs run as an unprivileged user" in line for line in server.output)
        await a_writers_job_tries_to_steal(data, server, "PermissionError")
        server.stop()
    finally:
        shutil.rmtree(reachable)


def serve_command(data: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "forge_tui", "serve", "--port", "0", "--data-dir", str(data),
            "--executor", "local", *extra]


class TestWithoutASandbox:
    @pytest.fixture(autouse=True)
    def no_sandbox_here(self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
        monkeypatch.setenv("FORGE_BWRAP", str(tmp_path / "no-bwrap"))  # not installed
        monkeypatch.setenv("FORGE_JOBS_USER", "")  # and no user to run jobs as

    def test_a_server_with_accounts_refuses_to_start_and_says_why(self, tmp_path: Path
                                                                   ) -> None:
        done = subprocess.run(serve_command(tmp_path / "data"), capture_output=True, text=True,
                              timeout=120, check=False)
        assert done.returncode != 0
        assert "jobs cannot be confined" in done.stderr
        assert "apt-get install bubblewrap" in done.stderr and "--unconfined-jobs" in done.stderr
        assert not (tmp_path / "data").exists()  # nothing written, no owner token made

    def test_unconfined_jobs_when_allowed_or_without_accounts(
        self, tmp_path: Path, serve_process: Callable[..., Any]
    ) -> None:
        for extra in (["--unconfined-jobs"], ["--no-auth"]):
            server = serve_process(tmp_path / extra[0].strip("-"), "--executor", "local", *extra)
            assert any("WARNING: jobs run unconfined" in line for line in server.output)
