"""End to end: a real `forge serve` and two real `forge tui` processes driven through tmux."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed"),
]


class Terminal:
    """One tmux session running a command in a fixed-size terminal, on a private tmux server
    (its own socket), so nobody else's tmux settings change its size."""

    def __init__(self, name: str, command: str, env: dict[str, str], size: tuple[int, int]) -> None:
        self.name = name
        self.tmux = ["tmux", "-L", name, "-f", "/dev/null"]
        # Textual trusts COLUMNS/LINES over the terminal; pytest's may be inherited.
        env = {**env, "COLUMNS": str(size[0]), "LINES": str(size[1])}
        exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
        subprocess.run(
            [
                *self.tmux,
                "new-session",
                "-d",
                "-s",
                name,
                "-x",
                str(size[0]),
                "-y",
                str(size[1]),
                f"env {exports} {command}",
            ],
            check=True,
        )

    def keys(self, *keys: str, pause: float = 0.3) -> None:
        for key in keys:
            subprocess.run([*self.tmux, "send-keys", "-t", self.name, key], check=True)
            time.sleep(pause)

    def type(self, text: str) -> None:
        subprocess.run([*self.tmux, "send-keys", "-t", self.name, "-l", text], check=True)
        time.sleep(0.3)

    def screen(self) -> str:
        result = subprocess.run(
            [*self.tmux, "capture-pane", "-p", "-t", self.name], capture_output=True, text=True
        )
        return result.stdout

    def wait_for(self, condition: Callable[[str], bool], what: str, timeout: float = 30) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            screen = self.screen()
            if condition(screen):
                return screen
            time.sleep(0.2)
        raise AssertionError(f"{self.name}: never showed {what}; screen was:\n{self.screen()}")

    def close(self) -> None:
        subprocess.run([*self.tmux, "kill-server"], capture_output=True)


@pytest.fixture
def terminals() -> Iterator[Callable[..., Terminal]]:
    opened: list[Terminal] = []

    def open_terminal(
        command: str, env: dict[str, str], size: tuple[int, int] = (120, 32)
    ) -> Terminal:
        terminal = Terminal(f"forge-e2e-{uuid.uuid4().hex[:8]}", command, env, size)
        opened.append(terminal)
        return terminal

    yield open_terminal
    for terminal in opened:
        terminal.close()


def test_two_users_edit_together(serve_process, terminals, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    server = serve_process(tmp_path / "data", "--no-auth")
    env = {
        "FORGE_CONFIG_DIR": str(tmp_path / "config"),
        "PATH": os.environ.get("PATH", ""),
        "TERM": "xterm-256color",
    }
    forge = f"{shlex.quote(sys.executable)} -m forge_tui"
    ada = terminals(f"{forge} tui --server {server.url} --name Ada", env)
    # Ada starts on the projects screen and creates the project there.
    ada.wait_for(lambda s: "No projects yet" in s, "the empty project list")
    ada.keys("n")
    ada.type("demo")
    ada.keys("Enter")
    ada.wait_for(lambda s: "Pipelines (0)" in s and "connected" in s, "the new project")
    bob = terminals(f"{forge} tui --server {server.url} --project demo --name Bob", env)
    bob.wait_for(lambda s: "Pipelines (0)" in s, "the project")
    ada.wait_for(lambda s: "Bob" in s, "Bob in the presence bar")
    bob.wait_for(lambda s: "Ada" in s, "Ada in the presence bar")
    # Ada creates an operation from the template; Bob sees it and opens it.
    ada.keys("n")
    ada.type("Operation")
    ada.keys("Enter")
    ada.type("Scale")
    ada.keys("Enter")
    ada.wait_for(lambda s: "def scale(data: Tensor" in s, "the template in the code editor")
    bob.wait_for(lambda s: "Operations (1)" in s, "the new operation in the sidebar")
    bob.keys("Down", "Down", "Enter")
    bob.wait_for(lambda s: "def scale(data: Tensor" in s, "the operation's code")
    # Ada types at the top of the code; Bob's editor shows it, and where Ada's cursor is.
    ada.type("# edited by Ada")
    ada.keys("Enter")
    screen = bob.wait_for(lambda s: "# edited by Ada" in s, "Ada's edit")
    assert "def scale" in screen
    bob.wait_for(lambda s: "Ada at 2:1" in s, "Ada's cursor")


CURVE = '''
import time

from forge_ops.runtime import Graph


def emit(*, steps: int = 40, pause: float = 0.25) -> int:
    line = Graph("Loss").line("loss")
    for step in range(steps):
        print("step", step)
        line.add(step, 1 / (step + 1))
        time.sleep(pause)
    return steps
'''


def seed_curve_project(url: str, name: str) -> None:
    """Project ``name`` with pipeline "curve": one job plotting a loss for about 10 s."""
    import asyncio
    import json
    import urllib.request

    from forge_ops.schema import ProjectDoc
    from forge_server.client import open_document

    request = urllib.request.Request(
        f"{url}/api/projects",
        data=json.dumps({"name": name}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        assert answer.status == 201

    async def fill() -> None:
        async with open_document(url, None, f"{name}/main") as client:
            project = ProjectDoc(client.doc)
            project.add_node(project.add_pipeline("curve"), project.add_operation("Emit", CURVE))

    asyncio.run(fill())


def test_one_user_runs_a_pipeline_the_other_watches_its_plot(  # type: ignore[no-untyped-def]
    serve_process, terminals, tmp_path: Path
) -> None:
    server = serve_process(tmp_path / "data", "--no-auth", "--executor", "local")
    seed_curve_project(server.url, "live")
    env = {
        "FORGE_CONFIG_DIR": str(tmp_path / "config"),
        "PATH": os.environ.get("PATH", ""),
        "TERM": "xterm-256color",
    }
    forge = f"{shlex.quote(sys.executable)} -m forge_tui"
    ada = terminals(f"{forge} tui --server {server.url} --project live --name Ada", env)
    bob = terminals(f"{forge} tui --server {server.url} --project live --name Bob", env)
    ada.wait_for(lambda s: "└── curve" in s and "connected" in s, "the project")
    bob.wait_for(lambda s: "Ada" in s, "Ada in the presence bar")
    # Ada opens the pipeline and runs it (ctrl+r); her monitor opens.
    ada.keys("Down", "Enter")
    ada.wait_for(lambda s: "steps=40" in s, "the pipeline diagram")
    ada.keys("C-r")
    ada.wait_for(lambda s: "live · curve" in s and "running" in s, "her monitor")
    # Bob opens the executions list, then the running execution's monitor.
    bob.keys("E")
    bob.wait_for(lambda s: "curve" in s and ("running" in s or "queued" in s), "the new run")
    bob.keys("Enter")
    # While the job runs (the play glyph in its heavy box), its plot and console fill in.
    live = bob.wait_for(
        lambda s: "┃ ▶ Emit ┃" in s and "Loss" in s and re.search(r"│step \d+ ", s) is not None,
        "the live plot while the job runs",
    )
    assert "▶ running" in live and "step 39" not in live
    done = bob.wait_for(lambda s: "✓ succeeded" in s and "step 39" in s, "the finished run")
    assert "✓ Emit" in done and "Loss" in done
    braille = [c for c in done if "\u2800" < c <= "\u28ff"]
    assert len(braille) > 20, "the chart shows the plotted points"
    ada.wait_for(lambda s: "✓ succeeded" in s, "the finished run on Ada's screen too")


def test_at_80x24_the_monitor_follows_the_run_to_its_last_line(  # type: ignore[no-untyped-def]
    serve_process, terminals, tmp_path: Path
) -> None:
    server = serve_process(tmp_path / "data", "--no-auth", "--executor", "local")
    seed_curve_project(server.url, "small")
    env = {
        "FORGE_CONFIG_DIR": str(tmp_path / "config"),
        "PATH": os.environ.get("PATH", ""),
        "TERM": "xterm-256color",
    }
    forge = f"{shlex.quote(sys.executable)} -m forge_tui"
    ada = terminals(f"{forge} tui --server {server.url} --project small --name Ada", env, (80, 24))
    ada.wait_for(lambda s: "└── curve" in s and "connected" in s, "the project")
    ada.keys("Down", "Enter")
    ada.wait_for(lambda s: "steps=40" in s, "the pipeline diagram")
    ada.keys("C-r")
    # The monitor follows the running job: its console, newest line at the bottom, while it runs…
    ada.wait_for(
        lambda s: "▶ running" in s and re.search(r"│step [1-9]\d? ", s) is not None,
        "the console of the running job",
    )
    # …and after it finished, the last line, not one from the middle of the run.
    done = ada.wait_for(lambda s: "✓ succeeded" in s and "step 39" in s, "the last line", 60)
    assert all(len(row) <= 80 for row in done.splitlines())
    ada.keys("2")  # the plot pane
    ada.wait_for(lambda s: "Loss" in s and "step 39" not in s, "the plot")


AFTER = '''
def after(value: int, /) -> int:
    print("got", value)
    return value + 1
'''


def test_at_80x24_the_palette_opens_a_pipeline_and_escape_leaves_code_for_the_diagram(  # type: ignore[no-untyped-def]
    serve_process, terminals, tmp_path: Path
) -> None:
    import asyncio

    from forge_ops.schema import ProjectDoc
    from forge_server.client import open_document

    server = serve_process(tmp_path / "data", "--no-auth")
    seed_curve_project(server.url, "keys")

    async def add_pipeline() -> None:  # "chain": Emit → After, one above the other
        async with open_document(server.url, None, "keys/main") as client:
            project = ProjectDoc(client.doc)
            emit = project.find("operations", "Emit")
            after = project.add_operation("After", AFTER)
            pid = project.add_pipeline("chain")
            first, second = project.add_node(pid, emit), project.add_node(pid, after)
            project.connect(pid, first, "out", second, "value")

    asyncio.run(add_pipeline())
    env = {
        "FORGE_CONFIG_DIR": str(tmp_path / "config"),
        "PATH": os.environ.get("PATH", ""),
        "TERM": "xterm-256color",
    }
    forge = f"{shlex.quote(sys.executable)} -m forge_tui"
    ada = terminals(f"{forge} tui --server {server.url} --project keys --name Ada", env, (80, 24))
    ada.wait_for(lambda s: "└── curve" in s and "connected" in s, "the project")
    ada.keys("C-p")
    ada.type("chain")
    ada.wait_for(lambda s: "Pipeline: chain" in s, "the pipeline in the palette")
    ada.keys("Enter")
    ada.wait_for(lambda s: "│ Emit" in s and "│ After" in s, "the diagram")
    ada.keys("Down")  # selects the top box: Emit, drawn heavy
    ada.wait_for(lambda s: "┃ Emit" in s, "Emit selected")
    ada.keys("o")
    ada.wait_for(lambda s: "def emit(" in s, "Emit's code")
    ada.keys("Escape")  # back to the diagram, where Down moves the selection on
    ada.wait_for(lambda s: "┃ Emit" in s and "def emit(" not in s, "the diagram again")
    ada.keys("Down")
    screen = ada.wait_for(lambda s: "┃ After" in s, "After selected")
    assert "┃ Emit" not in screen


FIT = '''
from forge_ops.runtime import Graph, Metrics


def fit(*, learning_rate: float = 0.01) -> Metrics:
    line = Graph("Loss").line("loss")
    for step in range(4):
        line.add(step, learning_rate * (4 - step))
    accuracy = 1 - learning_rate * 10
    return {"accuracy": accuracy, "accuracy/cat": accuracy / 2}
'''
OUTPUT = '''
from forge_ops.runtime import Any


def output(data: Any, /, *, name: str = "output") -> None:
    pass
'''


def test_at_80x24_compare_shows_what_differed_and_the_accuracies(  # type: ignore[no-untyped-def]
    serve_process, terminals, tmp_path: Path
) -> None:
    import asyncio

    from forge_ops.schema import ProjectDoc
    from forge_server.client import open_document
    from forge_tui.app.api import ForgeApi

    server = serve_process(tmp_path / "data", "--no-auth", "--executor", "local")
    server.create_project("runs")

    async def two_runs() -> None:
        api = ForgeApi(server.url, None, "runs")
        async with open_document(server.url, None, "runs/main") as client:
            project = ProjectDoc(client.doc)
            pid = project.add_pipeline("fit")
            fit = project.add_node(pid, project.add_operation("Fit", FIT))
            out = project.add_node(pid, project.add_operation("Output", OUTPUT, True))
            project.set_attribute(pid, out, "name", "metrics")
            project.connect(pid, fit, "out", out, "data")
            for rate in (0.01, 0.003):
                project.set_attribute(pid, fit, "learning_rate", rate)
                await asyncio.sleep(0.5)  # the server has the edit before the run
                execution = (await api.run("fit"))["execution"]
                for _ in range(240):
                    if (await api.execution(execution))["status"] == "succeeded":
                        break
                    await asyncio.sleep(0.25)

    asyncio.run(two_runs())
    env = {
        "FORGE_CONFIG_DIR": str(tmp_path / "config"),
        "PATH": os.environ.get("PATH", ""),
        "TERM": "xterm-256color",
    }
    forge = f"{shlex.quote(sys.executable)} -m forge_tui"
    ada = terminals(f"{forge} tui --server {server.url} --project runs --name Ada", env, (80, 24))
    ada.wait_for(lambda s: "└── fit" in s and "connected" in s, "the project")
    ada.keys("E")
    # The key metric is the published accuracy (not the last loss), for both runs.
    ada.wait_for(lambda s: "accuracy" in s and "0.9 " in s and "0.97 " in s, "the accuracies", 60)
    ada.keys("Space", "Down", "Space", "c")
    screen = ada.wait_for(lambda s: "Comparing 2 executions" in s and "learning_rate" in s,
                          "the compare table", 60)
    row = next(line for line in screen.splitlines() if "learning_rate" in line)
    assert "0.003" in row and "0.01" in row
    accuracy = next(line for line in screen.splitlines() if re.search(r"\baccuracy\s+0", line))
    assert "0.97" in accuracy and "0.9" in accuracy
    assert "accuracy/cat" in screen
    ada.keys("2")
    ada.wait_for(lambda s: "Loss" in s, "the overlaid plots")
