"""Compare runs: a table of what differs between them (attributes, references, code), their
results (published metrics, durations), and their plots overlaid.

On a terminal under 32 rows the table and the plots take turns behind a pane bar (1, 2);
from 32 rows the table sits above the plots.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Label

from forge_tui.app._compare import CompareRow, RunDetails, compare_rows, execution_graphs
from forge_tui.app.widgets.pane_bar import PaneBar
from forge_tui.app.widgets.plots import Graphs, PlotPanel, overlay

PANES = (("table", "Differences"), ("plots", "Plots"))
STACKED_FROM_ROWS = 32
STYLE = {"run": "dim", "setting": "bold yellow", "metric": "bold"}


def run_label(details: RunDetails) -> str:
    """A run's name in the table's header and the charts' legends (its time is a row)."""
    return details.execution_id[:8]


class CompareScreen(Screen[None]):
    """Several runs side by side: one column per run in the table, one line per run and
    plotted line in each chart."""

    DEFAULT_CSS = """
    CompareScreen #compare-title { height: 1; background: $primary-background; width: 1fr; }
    CompareScreen #compare-table { height: auto; max-height: 50%; }
    CompareScreen #compare-plots { height: 1fr; max-height: 100%; }
    CompareScreen.-tabbed #compare-table { height: 1fr; max-height: 100%; }
    CompareScreen #compare-table:focus { border-left: thick $accent; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("1", "pane('table')", "Differences", show=False),
        Binding("2", "pane('plots')", "Plots", show=False),
        Binding("escape,q", "close", "Back"),
    ]

    def __init__(
        self, runs: Sequence[RunDetails], summaries: Mapping[str, Mapping[str, Any]]
    ) -> None:
        super().__init__()
        self.runs = list(runs)
        self.summaries = summaries
        self.rows: list[CompareRow] = compare_rows(self.runs, summaries)
        self.tabbed = True
        self.pane = "table"

    @property
    def graphs(self) -> dict[str, Graphs]:
        return {
            run_label(d): execution_graphs(d.execution)
            for d in self.runs
            if d.execution is not None
        }

    def compose(self) -> ComposeResult:
        yield Label(f" Comparing {len(self.runs)} executions", id="compare-title")
        yield PaneBar(PANES, id="compare-panes")
        table: DataTable[Any] = DataTable(id="compare-table", cursor_type="row", zebra_stripes=True)
        yield table
        yield PlotPanel(id="compare-plots")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_column("", key="what")
        for details in self.runs:
            table.add_column(run_label(details), key=details.execution_id)
        for row in self.rows:
            style = STYLE.get(row.kind, "")
            table.add_row(Text(row.label, style=style), *row.cells, key=row.label)
        graphs = self.graphs
        self.query_one(PlotPanel).show(overlay(graphs))
        self._layout()
        table.focus()

    def on_resize(self, event: events.Resize) -> None:
        tabbed = event.size.height < STACKED_FROM_ROWS
        if tabbed != self.tabbed:
            self.tabbed = tabbed
            self._layout()

    def _layout(self) -> None:
        self.set_class(self.tabbed, "-tabbed")
        bar = self.query_one(PaneBar)
        bar.display = self.tabbed
        bar.active = self.pane
        self.query_one(DataTable).display = not self.tabbed or self.pane == "table"
        self.query_one(PlotPanel).display = not self.tabbed or self.pane == "plots"

    def on_pane_bar_chosen(self, event: PaneBar.Chosen) -> None:
        self.action_pane(event.pane)

    def action_pane(self, pane: str) -> None:
        self.pane = pane
        self._layout()
        target = self.query_one(DataTable) if pane == "table" else self.query_one(PlotPanel)
        target.focus()

    def row(self, label: str) -> tuple[str, ...] | None:
        """The cells of the table's row ``label`` (tests read it), or None."""
        return next((row.cells for row in self.rows if row.label == label), None)

    def action_close(self) -> None:
        self.dismiss(None)
