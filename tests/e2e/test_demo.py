"""End to end: `forge demo` as a real process (its own `forge serve`, local executor, real jobs).

The headless runs train the offline twin (as the demo does, or for a few iterations where only
failures are checked), so CI needs no internet and finishes in well under a minute per run.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from forge_ops.schema import ProjectDoc

pytestmark = pytest.mark.e2e

FORGE = [sys.executable, "-m", "forge_tui"]
FAST = ["--offline", "--executor", "local", "--iterations", "3"]
#: The twin as the demo runs it (its own 150 iterations): the result a new user sees.
TWIN = ["--offline", "--executor", "local"]


def demo(data_dir: Path, *args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "FORGE_CONFIG_DIR": str(data_dir / "config")}
    return subprocess.run(
        [*FORGE, "demo", "--headless", "--data-dir", str(data_dir), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
    )


def owner_token(server) -> str:  # type: ignore[no-untyped-def]
    """The server's owner token. The serve fixture returns on the relay's first "listening"
    log line, which can come just before the credentials file is written: wait for it."""
    deadline = time.monotonic() + 15
    while server.token is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert server.token is not None, "forge serve wrote no owner credentials"
    return str(server.token)


def server_port(output: str) -> int:
    match = re.search(r"Demo server listening on http://127\.0\.0\.1:(\d+)", output)
    assert match, output
    return int(match.group(1))


def port_closed(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def accuracies(output: str) -> dict[str, float]:
    section = output.split("Test accuracies (synthetic-accuracies):", 1)[1]
    return {
        m.group(1): float(m.group(2))
        for m in re.finditer(r"^\s+(overall|pattern \d): +([\d.]+)%$", section, re.MULTILINE)
    }


class TestHeadless:
    def test_offline_demo_trains_the_twin_then_reuses_the_project(self, tmp_path: Path) -> None:
        started = time.monotonic()
        first = demo(tmp_path, *TWIN)
        took = time.monotonic() - started
        out = first.stdout
        assert first.returncode == 0, out + first.stderr
        assert "--offline: using train-synthetic" in out
        assert "Created project cifar10 from the example cifar10." in out
        assert "Train settings: batch_size=16, criterion=CrossEntropyLoss" in out
        assert "net=SlimVGG11" in out and "max_iterations=150" in out
        # It says how the twin differs from the paper's setting.
        differences = out.split("Differs from the paper's setting (train-cifar10):", 1)[1]
        for expected in ("data from SyntheticImages", "instead of DownloadCIFAR10",
                         "max_iterations 150 instead of 50", "net SlimVGG11 instead of VGG16"):
            assert expected in differences, out
        assert re.search(r"Train \| iteration 150/150: loss \d", out), out
        for job in ("SyntheticImages", "NormalizeData", "Train", "Test", "Save model",
                    "Save accuracies"):
            assert re.search(rf"\] {job}: succeeded", out), f"{job} did not succeed:\n{out}"
        scores = accuracies(out)
        assert set(scores) == {"overall", *(f"pattern {i}" for i in range(10))}
        # A convincing result: well above chance overall and on every class (chance is 10%).
        assert scores["overall"] >= 70, out
        assert all(value > 10 for value in scores.values()), out
        assert took < 120, f"the demo took {took:.0f}s; it should take about a minute at most"
        assert out.rstrip().endswith("Demo server stopped.")
        assert port_closed(server_port(out))
        assert (tmp_path / "server.log").exists()

        # Again: the project is reused and every job comes from the cache.
        second = demo(tmp_path, *TWIN)
        assert second.returncode == 0, second.stdout + second.stderr
        assert "Reusing the existing project cifar10." in second.stdout
        assert len(re.findall(r"\] [\w ]+: cached \(from cache ", second.stdout)) == 6
        assert accuracies(second.stdout) == scores
        assert port_closed(server_port(second.stdout))

    def test_failing_job_makes_the_demo_fail(self, tmp_path: Path, serve_process) -> None:  # type: ignore[no-untyped-def]
        """Break NormalizeData in the project, as a collaborator could: exit 1, error shown."""
        import asyncio

        import aiohttp

        from forge_server.client import open_document

        server = serve_process(tmp_path, "--executor", "local")
        token = owner_token(server)

        async def break_project() -> None:
            headers = {"Authorization": f"Bearer {token}"}
            async with aiohttp.ClientSession(headers=headers) as http:
                body = {"name": "cifar10", "example": "cifar10"}
                async with http.post(server.url + "/api/projects", json=body) as response:
                    assert response.status == 201, await response.text()
            async with open_document(server.url, token, "cifar10/main") as client:
                doc = ProjectDoc(client.doc)
                op = doc.find("operations", "NormalizeData")
                assert op is not None
                code = doc.to_plain()["operations"][op]["code"]
                # Same interface (so the run is valid), but the body fails.
                broken = code.replace('    x = _as_float(train["x"])\n',
                                      '    raise ValueError("broken on purpose by the test")\n')
                assert broken != code
                doc.set_code(op, broken)

        asyncio.run(break_project())
        server.stop()

        result = demo(tmp_path, *FAST)
        assert result.returncode == 1, result.stdout + result.stderr
        assert "Reusing the existing project cifar10." in result.stdout
        assert re.search(r"\] NormalizeData: failed", result.stdout), result.stdout
        assert "broken on purpose by the test" in result.stdout
        assert "Test accuracies" not in result.stdout
        assert port_closed(server_port(result.stdout))

    def test_project_without_the_pipeline_is_a_clear_error(
        self, tmp_path: Path, serve_process  # type: ignore[no-untyped-def]
    ) -> None:
        server = serve_process(tmp_path, "--executor", "local")
        import urllib.request

        request = urllib.request.Request(
            server.url + "/api/projects",
            data=json.dumps({"name": "mine"}).encode(),
            headers={"Authorization": f"Bearer {owner_token(server)}"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 201
        server.stop()
        result = demo(tmp_path, *FAST, "--project", "mine")
        assert result.returncode == 1
        assert "has no pipeline 'train-synthetic'" in result.stderr
        assert "pass --project NEW_NAME" in result.stderr
        assert port_closed(server_port(result.stdout))


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
class TestInteractive:
    def test_quitting_the_tui_stops_the_demo(self, tmp_path: Path) -> None:
        name = f"forge-demo-{uuid.uuid4().hex[:8]}"
        tmux = ["tmux", "-L", name, "-f", "/dev/null"]
        env = {
            "FORGE_CONFIG_DIR": str(tmp_path / "config"),
            "PATH": os.environ.get("PATH", ""),
            "TERM": "xterm-256color",
            "HOME": os.environ.get("HOME", str(tmp_path)),
        }
        exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
        command = " ".join(shlex.quote(part) for part in [
            *FORGE, "demo", "--offline", "--executor", "local", "--data-dir", str(tmp_path)
        ])
        script = f"{command}; echo demo exited $?; sleep 60"
        subprocess.run([*tmux, "new-session", "-d", "-s", name, "-x", "120", "-y", "36",
                        f"env {exports} sh -c {shlex.quote(script)}"], check=True)

        def screen() -> str:
            return subprocess.run([*tmux, "capture-pane", "-p", "-t", name],
                                  capture_output=True, text=True, check=False).stdout

        def wait_for(condition: Callable[[str], bool], what: str, timeout: float = 60) -> str:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if condition(shown := screen()):
                    return shown
                time.sleep(0.3)
            raise AssertionError(f"never showed {what}; screen was:\n{screen()}")

        try:
            wait_for(lambda s: "Pipelines (3)" in s, "the example project in the TUI")
            subprocess.run([*tmux, "send-keys", "-t", name, "C-q"], check=True)
            shown = wait_for(lambda s: "demo exited" in s, "the demo exiting")
            assert "Demo server stopped." in shown
            assert "demo exited 0" in shown
            log = (tmp_path / "server.log").read_text()
            port = int(re.findall(r"--port (\d+)", log)[-1])
            assert port_closed(port)
        finally:
            subprocess.run([*tmux, "kill-server"], capture_output=True, check=False)
