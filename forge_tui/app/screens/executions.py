"""The executions list (status, pipeline, who, when, duration, key metric), sorted as the user
chooses, and compare runs.

Rows come live from the project document's ``executions`` summaries; durations and metrics come
from each finished execution's record (published metrics) or document (plots), read in the
background for the rows on screen, a few at a time, so that a list of thousands opens at once.
The key metric is the first published one (e.g. the test accuracy) until the user picks
another (``k``). Marking two or more runs compares them (:mod:`.compare`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import Footer, Label, Static

from forge_ops.schema import FINISHED_STATUSES
from forge_tui.app._compare import (
    SORT_KEYS,
    RunDetails,
    default_metric,
    format_metric,
    metric_names,
    metric_value,
    sort_runs,
)
from forge_tui.app._execution_data import read_details
from forge_tui.app._workspace import Workspace
from forge_tui.app.api import ApiError, api_for
from forge_tui.app.screens.modals import FuzzyPicker, if_chosen
from forge_tui.app.widgets.job_output import format_elapsed, status_text
from forge_tui.app.widgets.run_table import RunTable

COLUMNS = ("mark", "status", "pipeline", "metric", "duration", "when", "by", "id")
"""The key metric comes early: it is what a list of runs is read for (80 columns hold all)."""
READERS = 4
"""Executions read at the same time (each is a request, or a room joined and left)."""


class ExecutionsScreen(Screen[None]):
    """A branch's executions, newest first; enter opens the monitor, space marks for compare."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("space,m", "mark", "Mark"),
        Binding("c", "compare", "Compare"),
        Binding("s", "sort", "Sort"),
        Binding("M", "key_metric", "Metric"),
        Binding("escape,q", "close", "Back"),
    ]

    def __init__(self, workspace: Workspace) -> None:
        super().__init__()
        self.workspace = workspace
        self.marked: list[str] = []
        self.details: dict[str, RunDetails] = {}
        self.rows: list[str] = []
        self.sort_key = "when"
        self.descending = True
        self.chosen_metric: str | None = None
        self._shown: dict[str, tuple[Any, ...]] = {}
        self._labels: tuple[str, ...] = ()
        self._created: dict[str, str] = {}
        self._statuses: dict[str, Text] = {}
        self._pending: set[str] = set()
        self._readers = asyncio.Semaphore(READERS)

    def compose(self) -> ComposeResult:
        yield Label(f" {self.workspace.project_name} · executions", id="executions-title")
        yield RunTable(id="executions")
        yield Static("", id="executions-message")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(RunTable)
        self.workspace.on_change(self._changed)
        self.refresh_rows()
        table.focus()
        # Details are read once the list is on screen (a frame first), then as it scrolls.
        self.call_after_refresh(self._read_visible)
        self.set_interval(0.3, self._read_visible)

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

    # ----- rows ---------------------------------------------------------------------------

    @property
    def metric(self) -> str | None:
        """The key metric shown and sorted by: the user's choice, else the first published."""
        if self.chosen_metric is not None:
            return self.chosen_metric
        newest_first = sorted(
            self.details.values(), key=lambda d: self._created.get(d.execution_id, ""),
            reverse=True,
        )
        return default_metric(newest_first)

    def _summaries(self) -> dict[str, Any]:
        return dict(self.workspace.snapshot()["executions"])

    def _cells(
        self, xid: str, summary: Mapping[str, Any], pipeline: str, metric: str | None
    ) -> tuple[Any, ...]:
        details = self.details.get(xid)
        duration = format_elapsed(details.duration) if details is not None else ""
        value = format_metric(metric_value(details, metric)) if metric else ""
        status = summary["status"]
        if status not in self._statuses:
            self._statuses[status] = status_text(status)
        return (
            "●" if xid in self.marked else " ",
            self._statuses[status],
            pipeline,
            value,
            duration,
            summary["created"].replace("T", " ")[5:16],  # month-day hour:minute
            summary.get("by") or "-",
            xid,
        )

    def refresh_rows(self) -> None:
        """Rebuild the table when its rows or their order change; else update the cells that
        changed (a run that finished, details that arrived)."""
        project = self.workspace.snapshot()
        summaries = dict(project["executions"])
        pipelines = project["pipelines"]
        self._created = {xid: summary["created"] for xid, summary in summaries.items()}
        metric = self.metric

        def pipeline_name(xid: str) -> str:
            pipeline = pipelines.get(summaries[xid]["pipeline"])
            return pipeline["name"] if pipeline else str(summaries[xid]["pipeline"])

        ordered = sort_runs(
            list(summaries), self.sort_key, descending=self.descending, summaries=summaries,
            details=self.details, metric=metric, pipeline_name=pipeline_name,
        )
        table = self.query_one(RunTable)
        arrow = "↓" if self.descending else "↑"
        labels = tuple(
            "" if key == "mark" else f"{label} {arrow}" if key == self.sort_key else label
            for key in COLUMNS
            for label in [(metric or "metric") if key == "metric" else key]
        )
        cells = {
            xid: self._cells(xid, summaries[xid], pipeline_name(xid), metric) for xid in ordered
        }
        if ordered != self.rows or labels != self._labels:
            table.set_content(
                list(zip(COLUMNS, labels, strict=True)), [(xid, cells[xid]) for xid in ordered]
            )
            self.rows, self._labels = ordered, labels
        else:
            for xid in ordered:
                if cells[xid] != self._shown.get(xid):
                    table.update_row(xid, cells[xid])
        self._shown = cells

    def cells_of(self, xid: str) -> dict[str, str]:
        """The row of execution ``xid`` as shown, by column (tests read it)."""
        row = self.query_one(RunTable).get_row(xid)
        return {key: str(cell) for key, cell in zip(COLUMNS, row, strict=True)}

    # ----- details, read in the background ------------------------------------------------

    def _read_visible(self) -> None:
        """Read the details of the rows on screen (and the marked ones) that lack them."""
        if not self.rows:
            return
        table = self.query_one(RunTable)
        top = max(0, int(table.scroll_y) - 2)
        wanted = self.rows[top : top + table.size.height + 4] + self.marked
        if self.sort_key in ("metric", "duration"):
            wanted = self.rows  # sorting by a value needs every row's
        self._read(wanted)

    def _read(self, xids: list[str]) -> None:
        summaries = self._summaries()
        for xid in xids:
            summary = summaries.get(xid)
            if summary is None or xid in self._pending:
                continue
            known = self.details.get(xid)
            if known is not None and (known.finished or summary["status"] not in FINISHED_STATUSES):
                continue
            if summary["status"] not in FINISHED_STATUSES and known is not None:
                continue
            self._pending.add(xid)
            self._load(xid)

    def _kinds(self) -> dict[str, str]:
        """The kind of each named artifact of the project (only JSON ones hold metrics)."""
        return {
            name: str(artifact.get("kind") or "")
            for name, artifact in self.workspace.snapshot()["artifacts"].items()
        }

    @work(group="execution-details")
    async def _load(self, xid: str, document: bool = False) -> None:
        api = api_for(self._backend, self._project)
        try:
            async with self._readers:
                self.details[xid] = await read_details(
                    self._backend, api, self._project, xid, kinds=self._kinds(),
                    document=document,
                )
        except (ApiError, OSError, TimeoutError, ValueError) as exc:
            self.say(f"could not read execution {xid}: {exc}")
            return
        finally:
            self._pending.discard(xid)
        if self.is_attached:
            self.refresh_rows()

    # ----- actions ------------------------------------------------------------------------

    def _current(self) -> str | None:
        return self.query_one(RunTable).current_key

    @on(RunTable.RowSelected)
    def _row_selected(self, event: RunTable.RowSelected) -> None:
        self.action_open()

    @on(RunTable.HeaderSelected)
    def _header_selected(self, event: RunTable.HeaderSelected) -> None:
        if event.column in SORT_KEYS:
            self.sort_by(event.column)

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

    def sort_by(self, key: str) -> None:
        """Sort by ``key``; the same key again turns the order round."""
        if key == self.sort_key:
            self.descending = not self.descending
        else:
            self.sort_key = key
            self.descending = key in ("when", "metric")
        self.refresh_rows()
        order = "descending" if self.descending else "ascending"
        label = self.metric if key == "metric" else key
        self.say(f"sorted by {label}, {order} (s again: the other way)")

    def action_sort(self) -> None:
        options = [(f"{key} (now)" if key == self.sort_key else key, key) for key in SORT_KEYS]
        self.app.push_screen(FuzzyPicker("Sort by", options), if_chosen(self.sort_by))

    def choose_metric(self, name: str) -> None:
        self.chosen_metric = name
        self.refresh_rows()
        self.say(f"key metric: {name}")

    def action_key_metric(self) -> None:
        names = metric_names([self.details[x] for x in self.rows if x in self.details])
        if not names:
            self.say("No metrics yet: runs publish them through Output operations, or plot them")
            return
        options = [(f"{name} (now)" if name == self.metric else name, name) for name in names]
        self.app.push_screen(FuzzyPicker("Key metric", options), if_chosen(self.choose_metric))

    def action_compare(self) -> None:
        if len(self.marked) < 2:
            self.say("Mark two or more executions (space), then press c to compare them")
            return
        self._compare(list(self.marked))

    @work(group="compare", exclusive=True)
    async def _compare(self, xids: list[str]) -> None:
        from forge_tui.app.screens.compare import CompareScreen

        self.say(f"reading {len(xids)} executions…")
        api = api_for(self._backend, self._project)
        runs = []
        for xid in xids:
            known = self.details.get(xid)
            if known is None or known.execution is None or not known.finished:
                try:
                    known = self.details[xid] = await read_details(
                        self._backend, api, self._project, xid, kinds=self._kinds(),
                        document=True,
                    )
                except (ApiError, OSError, TimeoutError, ValueError) as exc:
                    self.say(f"could not read execution {xid}: {exc}")
                    return
            runs.append(known)
        self.say("")
        await self.app.push_screen(CompareScreen(runs, self._summaries()))

    def action_close(self) -> None:
        self.dismiss(None)
