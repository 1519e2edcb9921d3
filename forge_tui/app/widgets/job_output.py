"""What one job produced: status and elapsed time, its error traceback, outputs, live plots,
image names and the console; the execution monitor shows it beside the job's code."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static

from forge_ops.schema import Execution, Job
from forge_tui.app.widgets.console_view import ConsoleView
from forge_tui.app.widgets.image_view import ImageView
from forge_tui.app.widgets.plots import PlotPanel
from forge_tui.render import STATUS_GLYPHS, Status

STATUS_STYLE = {
    "queued": "dim",
    "running": "yellow bold",
    "succeeded": "green bold",
    "failed": "red bold",
    "cached": "cyan",
    "cancelled": "magenta",
}


def _parse(iso: str | None) -> dt.datetime | None:
    if not iso:
        return None
    try:
        moment = dt.datetime.fromisoformat(iso)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def elapsed_seconds(
    started: str | None, finished: str | None, now: dt.datetime | None = None
) -> float | None:
    """Seconds from start to finish, or to ``now`` while still running; None if not started."""
    start = _parse(started)
    if start is None:
        return None
    end = _parse(finished) or now or dt.datetime.now(dt.UTC)
    return max(0.0, (end - start).total_seconds())


def format_elapsed(seconds: float | None) -> str:
    if seconds is None:
        return ""
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def status_text(status: str) -> Text:
    glyph = STATUS_GLYPHS.get(Status(status), "?") if status in Status.__members__.values() else "?"
    return Text(f"{glyph} {status}", style=STATUS_STYLE.get(status, ""))


@dataclass(frozen=True)
class Borrowed:
    """What a cached job shows instead of its own (empty) output: the console, plots and
    images of the job in the run its result came from."""

    execution_id: str
    execution: Execution
    job_id: str


def job_summary(name: str, job: Job | None) -> Text:
    """One line about a job: name, status, elapsed time, and where a cached result came from."""
    text = Text()
    if job is None:
        return text
    text.append(f"{name}  ", style="bold")
    text.append_text(status_text(job["status"]))
    took = format_elapsed(elapsed_seconds(job["started"], job["finished"]))
    if took:
        text.append(f"  {took}")
    if job.get("cached_from"):
        text.append(f"  cached from {job['cached_from']}", style="cyan")
    return text


PANES = ("console", "plot", "outputs")
"""The panes of a job's output that :meth:`JobOutput.set_pane` can show alone."""


class JobOutput(Vertical):
    """Output of the selected job; :meth:`show` takes the job and the execution's plain data.

    All of it at once (``set_pane(None)``, when there is room) or one pane of it: the console,
    the plots, or the outputs (status, error, output hashes and images)."""

    DEFAULT_CSS = """
    JobOutput { height: 1fr; }
    JobOutput > #job-header { height: auto; padding: 0 1; }
    JobOutput > #job-error { height: auto; max-height: 14; padding: 0 1; color: $error;
                             border: round $error; }
    JobOutput PlotPanel { max-height: 60%; }
    JobOutput.-pane-plot PlotPanel { height: 1fr; max-height: 100%; }
    JobOutput.-pane-plot Chart { height: 1fr; min-height: 8; }
    JobOutput.-pane-console > #job-error { max-height: 40%; }
    JobOutput.-pane-outputs > #job-error { max-height: 100%; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.job_id: str | None = None
        self.pane: str | None = None
        self.failed = False
        self._shown_header: Text | None = None
        self._shown_error = ""

    def compose(self) -> ComposeResult:
        yield Static("Select a job (arrows) to see its output.", id="job-header")
        yield Static("", id="job-error")
        yield PlotPanel(id="job-plots")
        yield ImageView(id="job-images")
        yield ConsoleView(id="job-console")

    def on_mount(self) -> None:
        self.set_pane(self.pane)

    @property
    def console(self) -> ConsoleView:
        return self.query_one(ConsoleView)

    @property
    def images(self) -> ImageView:
        return self.query_one(ImageView)

    @property
    def plots(self) -> PlotPanel:
        return self.query_one(PlotPanel)

    def set_pane(self, pane: str | None) -> None:
        """Show one pane (``console``, ``plot``, ``outputs``) or, with None, all of them."""
        self.pane = pane
        for name in PANES:
            self.set_class(pane == name, f"-pane-{name}")
        if not self.is_mounted and not self.children:
            return
        every = pane is None
        self.query_one("#job-header").display = every or pane == "outputs"
        self.query_one("#job-error").display = self.failed and pane != "plot"
        self.plots.display = every or pane == "plot"
        self.images.allow(every or pane == "outputs")
        self.console.display = every or pane == "console"

    def show(
        self, job_id: str | None, name: str, execution: Any, borrowed: Borrowed | None = None
    ) -> None:
        """Show job ``job_id`` of ``execution`` (``ExecutionDoc.to_plain()``); a cached job's
        console, plots and images come from ``borrowed`` when given."""
        job = execution["jobs"].get(job_id) if job_id else None
        if job_id != self.job_id:
            self.console.reset()
            self.job_id = job_id
        if job is None:
            self._header(Text("Select a job (arrows) to see its output."))
            self._set_failed(False, "")
            self.plots.show({})
            self.images.show(None, {})
            return
        text = job_summary(name, job)
        for port, digest in sorted(job["outputs"].items()):
            text.append(f"\n  output {port} → {digest[:16]}", style="dim")
        if borrowed is not None:
            text.append(
                f"\n  console, plots and images below are from execution "
                f"{borrowed.execution_id}, which computed this result",
                style="cyan",
            )
        self._header(text)
        failed = job["status"] == "failed"
        self._set_failed(failed, job.get("error") or "failed without an error message")
        source, source_job, note = execution, job_id, ""
        if borrowed is not None:
            source, source_job = borrowed.execution, borrowed.job_id
            note = f"cached: from {borrowed.execution_id}"
        self.plots.show(source["graphs"].get(source_job, {}), note)
        self.images.show(
            source_job,
            source["images"].get(source_job, {}),
            borrowed.execution_id if borrowed is not None else None,
        )
        self.console.show(
            source["console"].get(source_job, []),
            source["console_dropped"].get(source_job, 0),
            note,
        )

    def _header(self, text: Text) -> None:
        """Show ``text`` above the output; a redraw of the same text costs nothing, and only
        a change in its number of lines costs a layout (it changes ten times a second)."""
        if text == self._shown_header:
            return
        lines = text.plain.count("\n")
        resized = self._shown_header is None or lines != self._shown_header.plain.count("\n")
        self._shown_header = text
        self.query_one("#job-header", Static).update(text, layout=resized)

    def _set_failed(self, failed: bool, error: str) -> None:
        shown = error if failed else ""
        if failed == self.failed and shown == self._shown_error:
            return
        self.failed = failed
        self._shown_error = shown
        self.set_class(failed, "-failed")
        error_view = self.query_one("#job-error", Static)
        error_view.update(Text(error) if failed else "")
        error_view.display = failed and self.pane != "plot"
