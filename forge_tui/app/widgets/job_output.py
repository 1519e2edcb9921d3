"""What one job produced: status and elapsed time, its error traceback, outputs, live plots,
image names and the console; the execution monitor shows it beside the job's code."""

from __future__ import annotations

import datetime as dt
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static

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


class JobOutput(Vertical):
    """Output of the selected job; :meth:`show` takes the job and the execution's plain data."""

    DEFAULT_CSS = """
    JobOutput { height: 1fr; }
    JobOutput > #job-header { height: auto; padding: 0 1; }
    JobOutput > #job-error { height: auto; max-height: 14; padding: 0 1; color: $error;
                             border: round $error; display: none; }
    JobOutput.-failed > #job-error { display: block; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.job_id: str | None = None

    def compose(self) -> ComposeResult:
        yield Static("Select a job (arrows) to see its output.", id="job-header")
        yield Static("", id="job-error")
        yield PlotPanel(id="job-plots")
        yield ImageView(id="job-images")
        yield ConsoleView(id="job-console")

    @property
    def console(self) -> ConsoleView:
        return self.query_one(ConsoleView)

    @property
    def images(self) -> ImageView:
        return self.query_one(ImageView)

    @property
    def plots(self) -> PlotPanel:
        return self.query_one(PlotPanel)

    def show(self, job_id: str | None, name: str, execution: Any) -> None:
        """Show job ``job_id`` of ``execution`` (``ExecutionDoc.to_plain()``)."""
        job = execution["jobs"].get(job_id) if job_id else None
        if job_id != self.job_id:
            self.console.reset()
            self.job_id = job_id
        header = self.query_one("#job-header", Static)
        if job is None:
            header.update("Select a job (arrows) to see its output.")
            self.set_class(False, "-failed")
            self.plots.show({})
            self.images.show(None, {})
            return
        text = Text()
        text.append(f"{name}  ", style="bold")
        text.append_text(status_text(job["status"]))
        took = format_elapsed(elapsed_seconds(job["started"], job["finished"]))
        if took:
            text.append(f"  {took}")
        if job.get("cached_from"):
            text.append(f"  (cached from {job['cached_from']})", style="cyan")
        for port, digest in sorted(job["outputs"].items()):
            text.append(f"\n  output {port} → {digest[:16]}", style="dim")
        header.update(text)
        failed = job["status"] == "failed"
        self.set_class(failed, "-failed")
        self.query_one("#job-error", Static).update(
            Text(job.get("error") or "failed without an error message") if failed else ""
        )
        self.plots.show(execution["graphs"].get(job_id, {}))
        self.images.show(job_id, execution["images"].get(job_id, {}))
        self.console.show(
            execution["console"].get(job_id, []), execution["console_dropped"].get(job_id, 0)
        )
