"""Parts 3 and 4 of ``scripts/bench_tui.py``: the monitor watching a fast job at 80×24, and the
executions list with 1,000 executions. Run them through ``bench_tui.py --only monitor list``.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

SIZE = (80, 24)

STREAM = '''
import time

from forge_ops.runtime import Graph


def stream(*, seconds: float = 10.0, rate: int = 1000) -> int:
    """Print ``rate`` lines and plot ``rate`` points a second for ``seconds``."""
    line = Graph("Loss").line("loss")
    start = time.time()
    done = 0
    while time.time() - start < seconds:
        due = int((time.time() - start) * rate)
        while done < due:
            print(f"line {done} t={time.time():.4f}")
            line.add(done, 1.0 / (done + 1))
            done += 1
        time.sleep(0.002)
    return done
'''
STAMP = re.compile(r"t=(\d+\.\d+)")


def screen_text(app: Any) -> str:
    """What the terminal shows now, as plain text."""
    from rich.console import Console

    width, height = app.size
    console = Console(width=width, height=height, file=io.StringIO(), record=True,
                      force_terminal=True, legacy_windows=False, safe_box=False)
    console.print(app.screen._compositor.render_update(full=True))
    return console.export_text()


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


class Serve:
    """``forge serve --no-auth --executor local`` in its own process, on a free port."""

    def __init__(self, data_dir: Path) -> None:
        args = [
            sys.executable, "-m", "forge_tui", "serve", "--host", "127.0.0.1", "--port", "0",
            "--data-dir", str(data_dir), "--no-auth", "--executor", "local",
        ]
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(
            args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
        )
        assert self.proc.stdout is not None
        deadline = time.monotonic() + 60
        for line in self.proc.stdout:
            found = re.search(r"Forge server listening on (http://[^\s]+)", line)
            if found:
                self.url = found.group(1).rstrip("/")
                break
            if time.monotonic() > deadline:
                raise RuntimeError("forge serve did not start in 60 s")
        else:
            raise RuntimeError("forge serve exited early")
        # Keep reading its output so that a chatty server never blocks on a full pipe.
        threading.Thread(target=self._read_rest, daemon=True).start()

    def _read_rest(self) -> None:
        assert self.proc.stdout is not None
        for _ in self.proc.stdout:
            pass

    def create_project(self, name: str) -> None:
        request = urllib.request.Request(
            f"{self.url}/api/projects", data=json.dumps({"name": name}).encode(),
            headers={"Content-Type": "application/json"}, method="POST",
        )
        with urllib.request.urlopen(request, timeout=30) as answer:
            assert answer.status == 201

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()


class Frames:
    """Times each screen update of a running app: the work since the previous update ended
    (handling the document change) plus the update itself (layout, widgets drawn, terminal
    output rendered, which a headless app otherwise skips)."""

    def __init__(self, app: Any, after_frame: Callable[[float], None] | None = None) -> None:
        from textual._compositor import CompositorUpdate

        self.samples: list[float] = []
        self.recording = True
        self.after_frame = after_frame
        self._handled = 0.0
        from textual.screen import Screen

        screen_type = Screen
        original_update = screen_type._on_timer_update
        original_display = type(app)._display
        frames = self

        def on_timer_update(screen: Any) -> None:
            start = time.perf_counter()
            original_update(screen)
            if screen is app.screen and frames.recording:
                frames.samples.append((time.perf_counter() - start) * 1000 + frames._handled)
                frames._handled = 0.0
                if frames.after_frame is not None:
                    frames.after_frame(time.time())

        def display(self_app: Any, screen: Any, renderable: Any) -> None:
            if isinstance(renderable, CompositorUpdate):
                renderable.render_segments(self_app.console)  # what a terminal would get
            original_display(self_app, screen, renderable)

        screen_type._on_timer_update = on_timer_update
        type(app)._display = display
        self._restore = lambda: (
            setattr(screen_type, "_on_timer_update", original_update),
            setattr(type(app), "_display", original_display),
        )

    def handled(self, milliseconds: float) -> None:
        """Work done for the next frame outside of it (the monitor's refresh)."""
        self._handled += milliseconds

    def stop(self) -> None:
        self._restore()


async def bench_monitor(seconds: float) -> None:
    from forge_ops.schema import ExecutionDoc, ProjectDoc
    from forge_server.client import open_document
    from forge_tui.app import ForgeApp, LinkState, ServerBackend
    from forge_tui.app.api import ForgeApi
    from forge_tui.app.screens.monitor import MonitorScreen
    from forge_tui.app.screens.project import ProjectScreen
    from forge_tui.app.widgets.job_output import JobOutput

    async def wait(condition: Callable[[], Any], timeout: float = 60.0) -> None:
        deadline = time.perf_counter() + timeout
        while not condition():
            if time.perf_counter() > deadline:
                raise TimeoutError("the monitor never got there")
            await asyncio.sleep(0.01)

    with tempfile.TemporaryDirectory() as data:
        serve = Serve(Path(data) / "data")
        try:
            serve.create_project("bench")
            async with open_document(serve.url, None, "bench/main") as client:
                project = ProjectDoc(client.doc)
                pid = project.add_pipeline("stream")
                node = project.add_node(pid, project.add_operation("Stream", STREAM))
                project.set_attribute(pid, node, "seconds", seconds)
                await asyncio.sleep(0.5)
            app = ForgeApp(ServerBackend(serve.url, None, "Ada"), "bench")
            async with app.run_test(size=SIZE):
                await wait(
                    lambda: isinstance(app.screen, ProjectScreen)
                    and app.workspace is not None
                    and app.workspace.link.state is LinkState.CONNECTED
                )
                ages: list[float] = []
                here: list[float] = []
                arrivals: dict[str, float] = {}

                def newest_line_age(now: float) -> None:
                    screen = app.screen
                    if not frames.recording:
                        return
                    if not isinstance(screen, MonitorScreen):
                        return
                    console = screen.query_one(JobOutput).console
                    if console.shown and console.following:
                        stamp = STAMP.search(console.shown[-1])
                        if stamp:
                            ages.append((now - float(stamp.group(1))) * 1000)
                        if console.shown[-1] in arrivals:
                            here.append((now - arrivals[console.shown[-1]]) * 1000)

                # Hooked before the monitor opens: a screen keeps the update method it had.
                frames = Frames(app, newest_line_age)
                frames.recording = False  # from the first streamed line to the end
                refresh = MonitorScreen.refresh_view

                def timed_refresh(self: MonitorScreen, *, reread: bool = True) -> None:
                    start = time.perf_counter()
                    refresh(self, reread=reread)
                    frames.handled((time.perf_counter() - start) * 1000)

                MonitorScreen.refresh_view = timed_refresh  # type: ignore[method-assign]
                record = await ForgeApi(serve.url, None, "bench").run("stream")
                await app.screen.open_now("execution", record["execution"])  # type: ignore[attr-defined]
                await wait(lambda: isinstance(app.screen, MonitorScreen))
                monitor = app.screen
                assert isinstance(monitor, MonitorScreen)
                console = monitor.query_one(JobOutput).console
                # When each console line reached this process (for the app's own share).
                document = ExecutionDoc(monitor.link.doc)

                loop = asyncio.get_running_loop()

                def note_newest(when: float) -> None:
                    for lines in document.console.values():
                        if len(lines):
                            arrivals.setdefault(str(lines[-1]), when)

                def arrived(_event: Any) -> None:  # the document cannot be read in here
                    loop.call_soon(note_newest, time.time())

                subscription = monitor.link.doc.observe(arrived)
                try:
                    await wait(lambda: console.shown, timeout=60)
                    frames.recording = True
                    ages.clear()
                    here.clear()
                    started = time.perf_counter()
                    await wait(
                        lambda: monitor.plain is not None
                        and monitor.plain["meta"]["status"] in ("succeeded", "failed"),
                        timeout=seconds + 60,
                    )
                    streamed = time.perf_counter() - started
                finally:
                    frames.stop()
                    monitor.link.doc.unobserve(subscription)
                    MonitorScreen.refresh_view = refresh  # type: ignore[method-assign]
                await asyncio.sleep(0.3)  # the last frame
                last = console.shown[-1] if console.shown else "(nothing)"
                visible = last in screen_text(app)
                charts = monitor.query_one(JobOutput).plots.charts().values()
                points = sum(chart.point_count for chart in charts)
                status = monitor.plain["meta"]["status"] if monitor.plain else "?"
        finally:
            serve.stop()
    print(f"monitor at 80×24, a job streaming 1,000 lines and 1,000 points/s for {seconds:g} s "
          f"({status}; last line {last.split(' t=')[0]!r}, {points} points plotted)")
    print(f"  frames drawn while it ran: {len(frames.samples)} in {streamed:.1f} s; "
          f"the last line on screen at the end: {'yes' if visible else 'NO'}")
    print("                                  p50      p95      max")
    samples = frames.samples
    print(f"  frame time (ms)             {percentile(samples, 0.5):7.1f}  "
          f"{percentile(samples, 0.95):7.1f}  {max(samples):7.1f}   target p95 ≤ 50")
    print(f"  newest line's age on screen {percentile(ages, 0.5):7.1f}  "
          f"{percentile(ages, 0.95):7.1f}  {max(ages):7.1f}   target ≤ 200 (ms)")
    print(f"    of which in this app      {percentile(here, 0.5):7.1f}  "
          f"{percentile(here, 0.95):7.1f}  {max(here):7.1f}   (from the update's arrival;")
    print("    the rest is the job's and the server's batching, about 0.1 s each by design)")


async def bench_list(count: int) -> None:
    from textual.app import App, ComposeResult
    from textual.screen import Screen
    from textual.widgets import DataTable, Footer, Label

    from forge_ops.schema import ExecutionDoc, ProjectDoc
    from forge_tui.app import ForgeApp, MemoryBackend, MemoryHub
    from forge_tui.app.screens.executions import ExecutionsScreen
    from forge_tui.app.screens.project import ProjectScreen
    from forge_tui.app.widgets.run_table import RunTable

    hub = MemoryHub()
    project = ProjectDoc.create("bench", hub.room_doc("bench/main"))
    op = project.add_operation("Op", "def op(*, k: int = 1) -> int:\n    return k\n")
    pid = project.add_pipeline("pipeline")
    project.add_node(pid, op)
    done = "2026-01-01T10:00:05+00:00"
    with project.doc.transaction():
        for i in range(count):
            xid = f"x{i:05d}"
            project.record_execution(pid, "c0ffee", "Ada", execution_id=xid, status="succeeded")
            clock = f"{i // 3600 % 24:02d}:{i // 60 % 60:02d}:{i % 60:02d}"
            project.executions[xid]["created"] = f"2026-01-01T{clock}+00:00"
    for i in range(count):  # documents for the details read in the background
        ExecutionDoc.from_plain(
            {"meta": {"pipeline": {"name": "pipeline", "jobs": {}}, "commit": "c0ffee",
                      "status": "succeeded", "executor": "local",
                      "started": "2026-01-01T10:00:00+00:00", "finished": done},
             "jobs": {}},
            hub.room_doc(f"bench/executions/x{i:05d}"),
        )

    async def until(condition: Callable[[], Any]) -> None:
        while not condition():
            await asyncio.sleep(0.0005)

    async def open_time(screen_for: Callable[[Any], Any], ready: Callable[[Any], bool]) -> float:
        """Milliseconds from pushing the screen to the first frame at which it is ready."""
        app = ForgeApp(MemoryBackend(hub, user="Ada"), "bench")
        async with app.run_test(size=SIZE) as pilot:
            await until(lambda: isinstance(app.screen, ProjectScreen) and app.screen.is_mounted)
            await pilot.pause()
            painted: list[float] = []
            frames = Frames(app, lambda now: painted.append(time.perf_counter()))
            start = time.perf_counter()
            screen = screen_for(app)
            await app.push_screen(screen)
            await until(lambda: app.screen is screen and ready(screen) and painted
                        and painted[-1] > start)
            frames.stop()
            return (painted[-1] - start) * 1000

    ours = [
        await open_time(lambda app: ExecutionsScreen(app.workspace),
                        lambda screen: len(screen.rows) == count)
        for _ in range(5)
    ]

    class Empty(Screen[None]):
        """What any screen costs to open: a title, an empty table, the footer."""

        def compose(self) -> ComposeResult:
            yield Label(" bench · executions")
            yield RunTable()
            yield Footer()

    floor = [await open_time(lambda app: Empty(), lambda screen: True) for _ in range(5)]

    rows = [("", "✓ succeeded", "pipeline", "Ada", "2026-01-01 10:00", "5.0s", "", f"x{i:05d}")
            for i in range(count)]

    class Bare(App[None]):
        def compose(self) -> ComposeResult:
            yield DataTable()

    bare: list[float] = []
    for _ in range(5):
        plain = Bare()
        async with plain.run_test(size=SIZE) as pilot:
            await pilot.pause()
            table = plain.query_one(DataTable)
            start = time.perf_counter()
            for column in ("", "status", "pipeline", "by", "when", "duration", "metric", "id"):
                table.add_column(column)
            table.add_rows(rows)
            await pilot.pause()
            bare.append((time.perf_counter() - start) * 1000)
    print(f"executions list with {count} executions, open → first frame with every row (ms)")
    print(f"  forge executions list   median {statistics.median(ours):6.1f}   "
          f"max {max(ours):6.1f}   target ≤ 100")
    print(f"  baseline: a bare Textual DataTable, same rows    median "
          f"{statistics.median(bare):6.1f}")
    print(f"  baseline: an empty screen (title, table, footer) median "
          f"{statistics.median(floor):6.1f}")
