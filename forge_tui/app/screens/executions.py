"""The executions list (status, pipeline, who, when, duration, key metric) and compare runs.

Rows come live from the project document's ``executions`` summaries; durations and the key
metric come from each execution's own document, read once it is finished. Marking two or more
runs overlays their graphs in one chart per graph title.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Label, Static

from forge_ops.schema import FINISHED_STATUSES, Execution
from forge_tui.app._execution_data import load_execution
from forge_tui.app._workspace import Workspace
from forge_tui.app.widgets.job_output import elapsed_seconds, format_elapsed, status_text
from forge_tui.app.widgets.plots import Graphs, PlotPanel, overlay


def execution_graphs(execution: Execution) -> dict[str, dict[str, Any]]:
    """All jobs' graphs of one execution merged; a line two jobs share is named by job."""
    specs = execution["meta"]["pipeline"].get("jobs") or {}
    merged: dict[str, dict[str, Any]] = {}
    for job_id, graphs in sorted(execution["graphs"].items()):
        for title, lines in graphs.items():
            target = merged.setdefault(title, {})
            for line, points in lines.items():
                name = line
                if name in target:
                    name = f"{(specs.get(job_id) or {}).get('name', job_id)}.{line}"
                target[name] = points
    return merged


def key_metric(execution: Execution) -> str:
    """The last value of the first line of the first graph (e.g. the final training error)."""
    graphs = execution_graphs(execution)
    for title in sorted(graphs):
        for line in sorted(graphs[title]):
            points = graphs[title][line]
            if points:
                return f"{line}={points[-1][1]:.4g}"
    return ""


class CompareScreen(Screen[None]):
    """Graphs of several runs overlaid: one chart per graph title, a line per run and line."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,q", "close", "Back")]

    def __init__(self, runs: Mapping[str, Graphs]) -> None:
        super().__init__()
        self.runs = dict(runs)

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(f" Comparing {', '.join(self.runs)}", id="compare-title")
            yield PlotPanel(id="compare-plots")
        yield Footer()

    def on_mount(self) -> None:
        panel = self.query_one(PlotPanel)
        panel.styles.max_height = None
        panel.show(overlay(self.runs))

    def action_close(self) -> None:
        self.dismiss(None)


class ExecutionsScreen(Screen[None]):
    """A branch's executions, newest first; enter opens the monitor, space marks for compare."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "open", "Monitor"),
        Binding("space,m", "mark", "Mark"),
        Binding("c", "compare", "Compare marked"),
        Binding("escape,q", "close", "Back"),
    ]

    def __init__(self, workspace: Workspace) -> None:
        super().__init__()
        self.workspace = workspace
        self.marked: list[str] = []
        self.details: dict[str, Execution] = {}
        self.rows: list[str] = []

    def compose(self) -> ComposeResult:
        yield Label(f" {self.workspace.project_name} · executions", id="executions-title")
        table: DataTable[Any] = DataTable(id="executions", cursor_type="row", zebra_stripes=True)
        yield table
        yield Static("", id="executions-message")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        for column in ("", "status", "pipeline", "by", "when", "duration", "metric", "id"):
            table.add_column(column, key=column or "mark")
        self.workspace.on_change(self._changed)
        self.refresh_rows()
        table.focus()

    @property
    def _backend(self) -> Any:
        return getattr(self.app, "backend", None)

    @property
    def _project(self) -> str:
        return self.workspace.project_name

    def _changed(self) -> None:
        if self.is_attached:  # listeners outlive the screen; a closed one ignores changes
            self.call_later(self.refresh_rows)

    def say(self, message: str) -> None:
        self.query_one("#executions-message", Static).update(message)

    def _summaries(self) -> dict[str, Any]:
        return dict(self.workspace.snapshot()["executions"])

    def refresh_rows(self) -> None:
        project = self.workspace.snapshot()
        summaries = self._summaries()
        ordered = sorted(summaries, key=lambda x: (summaries[x]["created"], x), reverse=True)
        table = self.query_one(DataTable)
        cursor = (
            self.rows[table.cursor_row] if self.rows and table.cursor_row < len(self.rows) else None
        )
        table.clear()
        self.rows = ordered
        for xid in ordered:
            summary = summaries[xid]
            pipeline = project["pipelines"].get(summary["pipeline"])
            detail = self.details.get(xid)
            duration = metric = ""
            if detail is not None:
                meta = detail["meta"]
                duration = format_elapsed(elapsed_seconds(meta["started"], meta["finished"]))
                metric = key_metric(detail)
            table.add_row(
                "●" if xid in self.marked else " ",
                status_text(summary["status"]),
                pipeline["name"] if pipeline else summary["pipeline"],
                summary.get("by") or "-",
                summary["created"].replace("T", " ")[:16],
                duration,
                metric,
                xid,
                key=xid,
            )
            if detail is None or detail["meta"]["status"] not in FINISHED_STATUSES:
                if summary["status"] in FINISHED_STATUSES:
                    self._load(xid)
        if cursor in ordered:
            table.move_cursor(row=ordered.index(cursor))

    @work(group="execution-details")
    async def _load(self, xid: str) -> None:
        if xid in self.details and self.details[xid]["meta"]["status"] in FINISHED_STATUSES:
            return
        try:
            self.details[xid] = await load_execution(self._backend, self._project, xid)
        except Exception as exc:  # a missing room or a dropped link: the row says so
            self.say(f"could not read execution {xid}: {exc}")
            return
        self.refresh_rows()

    def _current(self) -> str | None:
        table = self.query_one(DataTable)
        if not self.rows or table.cursor_row >= len(self.rows):
            return None
        return self.rows[table.cursor_row]

    @on(DataTable.RowSelected)
    def _row_selected(self, event: DataTable.RowSelected) -> None:
        self.action_open()

    def action_open(self) -> None:
        xid = self._current()
        if xid is None:
            self.say("No executions yet: run a pipeline from its diagram (ctrl+r)")
            return
        from forge_tui.app.screens.monitor import open_monitor

        self.run_worker(open_monitor(self.app, self.workspace.project_name, xid))

    def action_mark(self) -> None:
        xid = self._current()
        if xid is None:
            return
        if xid in self.marked:
            self.marked.remove(xid)
        else:
            self.marked.append(xid)
        self.refresh_rows()
        self.say(f"{len(self.marked)} marked; c compares two or more")

    def action_compare(self) -> None:
        if len(self.marked) < 2:
            self.say("Mark two or more executions (space), then press c to compare them")
            return
        self._compare(list(self.marked))

    @work(group="compare", exclusive=True)
    async def _compare(self, xids: list[str]) -> None:
        runs: dict[str, Graphs] = {}
        for xid in xids:
            detail = self.details.get(xid)
            if detail is None or detail["meta"]["status"] not in FINISHED_STATUSES:
                detail = self.details[xid] = await load_execution(self._backend, self._project, xid)
            runs[xid[:8]] = execution_graphs(detail)
        if not any(runs.values()):
            self.say("None of the marked executions has plotted anything")
            return
        await self.app.push_screen(CompareScreen(runs))

    def action_close(self) -> None:
        self.dismiss(None)
