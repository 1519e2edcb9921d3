"""The sweep view: a sweep's latest run, trials as rows (settings, status, objective, duration),
the best starred and in bold, sortable; the overlay of the trials' curves; a compact importance
summary. Enter opens a trial's execution in the monitor; ``a`` applies the best settings to the
pipeline (a committed edit); ``r`` starts a run, ``x`` cancels it, ``u`` resumes it.

The run's record comes from the server's HTTP API, polled while the run goes on; the curves come
from the trials' execution documents (see ``executions.load_execution``).
"""

from __future__ import annotations

from typing import Any, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Label, Static

from forge_ops.schema import FINISHED_STATUSES, Execution
from forge_tui.api_client import quote
from forge_tui.app._sweep_view import (
    COLUMNS,
    SORTS,
    importance,
    sorted_trials,
    summary,
    trial_cells,
)
from forge_tui.app._workspace import Workspace
from forge_tui.app.api import ApiError, ForgeApi
from forge_tui.app.widgets.plots import Graphs, PlotPanel, overlay

_POLL_S = 1.0
_DONE = ("succeeded", "failed", "pruned", "cancelled", "interrupted")


class SweepsScreen(Screen[None]):
    """The latest run of one of the project's sweeps (``[`` and ``]`` switch sweeps)."""

    DEFAULT_CSS = """
    SweepsScreen #trials { height: 1fr; min-height: 5; }
    SweepsScreen #sweep-plots { max-height: 14; }
    SweepsScreen #sweep-importance, SweepsScreen #sweep-message { color: $text-muted; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "open", "Monitor"),
        Binding("a", "apply_best", "Apply best"),
        Binding("s", "sort", "Sort"),
        Binding("r", "start", "Run sweep"),
        Binding("x", "cancel", "Cancel run"),
        Binding("u", "resume", "Resume run", show=False),
        Binding("right_square_bracket", "switch(1)", "Next sweep", show=False),
        Binding("left_square_bracket", "switch(-1)", "Previous sweep", show=False),
        Binding("escape,q", "close", "Back"),
    ]

    def __init__(self, workspace: Workspace, api: ForgeApi, *, branch: str = "main",
                 sweep: str | None = None) -> None:
        super().__init__()
        self.workspace = workspace
        self.api = api
        self.branch = branch
        self.sweep = sweep
        self.record: dict[str, Any] | None = None
        self.sort = SORTS[0]
        self.rows: list[int] = []
        self.curves: dict[int, Graphs] = {}
        self._loaded: set[int] = set()

    def compose(self) -> ComposeResult:
        yield Label(f" {self.workspace.project_name} · sweeps", id="sweeps-title")
        yield Static("", id="sweep-summary")
        table: DataTable[Any] = DataTable(id="trials", cursor_type="row", zebra_stripes=True)
        yield table
        yield Static("", id="sweep-importance")
        yield PlotPanel(id="sweep-plots")
        yield Static("", id="sweep-message")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#trials", DataTable)
        for column in COLUMNS:
            table.add_column(column, key=column or "best")
        names = self.sweep_names()
        if self.sweep is None and names:
            self.sweep = names[0]
        if self.sweep is None:
            self.say("This project has no sweeps: define one with `forge sweep PROJECT NAME "
                     "--define FILE` (see docs/concepts.md, Sweeps)")
        else:
            self.refresh_record()
        self.set_interval(_POLL_S, self._poll)
        table.focus()

    # ----- data ---------------------------------------------------------------------------

    def sweep_names(self) -> list[str]:
        sweeps = self.workspace.snapshot().get("sweeps", {})
        return sorted(sweep["name"] for sweep in sweeps.values())

    def say(self, message: str) -> None:
        self.query_one("#sweep-message", Static).update(message)

    def _poll(self) -> None:
        if self.sweep is not None and (self.record is None or self.record.get("running")):
            self.refresh_record()

    @work(group="sweep-record", exclusive=True)
    async def refresh_record(self) -> None:
        if self.sweep is None:
            return
        try:
            record = await self.api.call("GET", f"sweeps/{quote(self.sweep)}/runs/latest",
                                         query={"branch": self.branch})
        except ApiError as exc:
            self.record = None
            self.show()
            self.say(f"{self.sweep}: {exc.message}" + (
                "; press r to run it" if "has not run yet" in exc.message else ""))
            return
        if self.record is not None and self.record.get("run") != record.get("run"):
            self.curves.clear()
            self._loaded.clear()
        self.record = record
        self.show()
        self._load_curves()

    @work(group="sweep-curves", exclusive=True)
    async def _load_curves(self) -> None:
        from forge_tui.app._compare import execution_graphs
        from forge_tui.app._execution_data import load_execution

        record = self.record
        if record is None:
            return
        changed = False
        for trial in record["trials"]:
            number, execution = trial["number"], trial.get("execution")
            if not execution or number in self._loaded:
                continue
            backend = self.app.backend  # type: ignore[attr-defined]
            try:
                detail: Execution = await load_execution(backend, self.workspace.project_name,
                                                         execution)
            except Exception as exc:  # a dropped link: the next poll tries again
                self.say(f"could not read execution {execution} yet: {exc}")
                continue
            self.curves[number] = execution_graphs(detail)
            changed = True
            if trial["status"] in _DONE and detail["meta"]["status"] in FINISHED_STATUSES:
                self._loaded.add(number)
        if changed and self.is_attached:
            self.query_one("#sweep-plots", PlotPanel).show(
                overlay({f"#{n}": graphs for n, graphs in sorted(self.curves.items())}))

    # ----- rendering ----------------------------------------------------------------------

    def show(self) -> None:
        if not self.is_attached:
            return
        table = self.query_one("#trials", DataTable)
        current = self.current()
        table.clear()
        self.rows = []
        record = self.record
        self.query_one("#sweep-summary", Static).update(
            summary(record) if record else f"{self.sweep or 'no sweep'} · not run yet")
        lines = importance(record) if record else []
        self.query_one("#sweep-importance", Static).update(
            "importance: " + "; ".join(lines) if lines else "")
        if record is None:
            return
        for trial in sorted_trials(record, self.sort):
            style = "bold green" if trial.get("best") else ""
            table.add_row(*(Text(cell, style=style) for cell in trial_cells(trial)),
                          key=str(trial["number"]))
            self.rows.append(trial["number"])
        if current in self.rows:
            table.move_cursor(row=self.rows.index(current))

    def current(self) -> int | None:
        table = self.query_one("#trials", DataTable)
        if not self.rows or table.cursor_row >= len(self.rows):
            return None
        return self.rows[table.cursor_row]

    def trial(self, number: int | None) -> dict[str, Any] | None:
        if self.record is None or number is None:
            return None
        return next((t for t in self.record["trials"] if t["number"] == number), None)

    # ----- actions ------------------------------------------------------------------------

    @on(DataTable.RowSelected)
    def _row_selected(self, event: DataTable.RowSelected) -> None:
        self.action_open()

    def action_open(self) -> None:
        trial = self.trial(self.current())
        if trial is None or not trial.get("execution"):
            self.say("Pick a trial that has an execution")
            return
        from forge_tui.app.screens.monitor import open_monitor

        self.run_worker(open_monitor(self.app, self.workspace.project_name, trial["execution"]))

    def action_sort(self) -> None:
        self.sort = SORTS[(SORTS.index(self.sort) + 1) % len(SORTS)]
        self.show()
        self.say(f"sorted by {self.sort}")

    def action_switch(self, step: int) -> None:
        names = self.sweep_names()
        if not names:
            return
        index = names.index(self.sweep) if self.sweep in names else -step
        self.sweep = names[(index + step) % len(names)]
        self.record = None
        self.curves.clear()
        self._loaded.clear()
        self.query_one("#sweep-plots", PlotPanel).show({})
        self.refresh_record()

    def action_start(self) -> None:
        self._post("runs", "started run {run}")

    def action_cancel(self) -> None:
        self._post("runs/latest/cancel", "cancelling run {run}")

    def action_resume(self) -> None:
        self._post("runs/latest/resume", "resumed run {run}")

    def action_apply_best(self) -> None:
        self._post("runs/latest/apply", "applied trial {trial} (objective {objective}): "
                                        "{message}")

    @work(group="sweep-action", exclusive=True)
    async def _post(self, path: str, said: str) -> None:
        if self.sweep is None:
            self.say("No sweep to act on")
            return
        try:
            answer = await self.api.call("POST", f"sweeps/{quote(self.sweep)}/{path}",
                                         body={"branch": self.branch})
        except ApiError as exc:
            self.say(exc.message)
            return
        commit = answer.get("commit")
        message = commit.get("message") if isinstance(commit, dict) else \
            "the pipeline already has these settings"
        self.say(said.format(message=message, **{k: v for k, v in answer.items()
                                                 if k != "message"}))
        self.refresh_record()

    def action_close(self) -> None:
        self.dismiss(None)
