"""Live plots: one chart per graph with all its lines (textual-plotext), redrawn as points arrive.

:func:`overlay` merges the graphs of several executions into one set of charts whose lines are
named by run, which is how the executions list compares runs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static
from textual_plotext import PlotextPlot

Points = Sequence[Sequence[float]]
Graphs = Mapping[str, Mapping[str, Points]]
"""graph title → line name → [[x, y], …] (the execution document's ``graphs`` of one job)."""


def overlay(runs: Mapping[str, Graphs]) -> dict[str, dict[str, Points]]:
    """Graphs of several runs (label → graphs) as one: lines become ``"{label} {line}"``."""
    merged: dict[str, dict[str, Points]] = {}
    for label, graphs in runs.items():
        for title, lines in graphs.items():
            for line, points in lines.items():
                merged.setdefault(title, {})[f"{label} {line}"] = points
    return merged


class Chart(PlotextPlot):
    """One graph: every line of it, a legend, the title."""

    DEFAULT_CSS = "Chart { height: 12; min-height: 8; }"

    def __init__(self, title: str) -> None:
        super().__init__()
        self.title = title
        self.lines: dict[str, list[tuple[float, float]]] = {}

    def show(self, lines: Mapping[str, Points]) -> None:
        plain = {name: [(float(p[0]), float(p[1])) for p in pts] for name, pts in lines.items()}
        if plain == self.lines:
            return
        self.lines = plain
        plt = self.plt
        plt.clear_data()
        plt.title(self.title)
        for name, points in sorted(plain.items()):
            if points:
                xs, ys = zip(*points, strict=True)
                plt.plot(list(xs), list(ys), label=name, marker="braille")
        self.refresh()

    @property
    def point_count(self) -> int:
        return sum(len(points) for points in self.lines.values())


class PlotPanel(VerticalScroll):
    """A chart per graph title, in title order; charts are kept and updated, not rebuilt."""

    DEFAULT_CSS = """
    PlotPanel { height: auto; max-height: 30; }
    PlotPanel > #plots-empty { color: $text-muted; }
    """

    def compose(self) -> ComposeResult:
        yield Static("No plots.", id="plots-empty")

    def charts(self) -> dict[str, Chart]:
        return {chart.title: chart for chart in self.query(Chart)}

    def show(self, graphs: Graphs) -> None:
        charts = self.charts()
        for title, chart in charts.items():
            if title not in graphs:
                chart.remove()
        for title in sorted(graphs):
            existing = charts.get(title)
            chart = existing if existing is not None else Chart(title)
            if existing is None:
                self.mount(chart)
            chart.show(graphs[title])
        self.query_one("#plots-empty").display = not graphs
