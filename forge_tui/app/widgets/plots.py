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


def _point(point: Sequence[float]) -> tuple[float, float]:
    return float(point[0]), float(point[1])


def thin(points: Sequence[tuple[float, float]], limit: int) -> list[tuple[float, float]]:
    """At most about ``limit`` points of a line, evenly spaced, the last one always kept: a
    chart ``w`` cells wide draws 2·w braille columns, so more points only cost time."""
    count = len(points)
    if count <= limit or limit < 2:
        return list(points)
    step = count / (limit - 1)
    kept = [points[int(i * step)] for i in range(limit - 1)]
    kept.append(points[-1])
    return kept


class Chart(PlotextPlot):
    """One graph: every line of it, a legend, the title."""

    DEFAULT_CSS = "Chart { height: 12; min-height: 8; }"

    def __init__(self, title: str) -> None:
        super().__init__()
        self.title = title
        self.note = ""
        self.lines: dict[str, list[tuple[float, float]]] = {}
        self._counts: dict[str, int] = {}

    def show(self, lines: Mapping[str, Points], note: str = "") -> None:
        counts = {name: len(pts) for name, pts in lines.items()}
        if counts == self._counts and note == self.note and self._same_ends(lines):
            return  # points are only ever appended: same counts and last points, same lines
        self._counts = counts
        self.note = note
        plain: dict[str, list[tuple[float, float]]] = {}
        for name, pts in lines.items():
            known = self.lines.get(name, [])
            if len(known) <= len(pts) and (not known or _point(pts[len(known) - 1]) == known[-1]):
                # Points arrive at the end: convert only the new ones.
                known.extend(_point(p) for p in pts[len(known) :])
                plain[name] = known
            else:
                plain[name] = [_point(p) for p in pts]
        self.lines = plain
        self._draw()

    def _same_ends(self, lines: Mapping[str, Points]) -> bool:
        return all(
            not pts or self.lines.get(name, [None])[-1] == _point(pts[-1])
            for name, pts in lines.items()
        )

    def _draw(self) -> None:
        plt = self.plt
        plt.clear_data()
        plt.title(f"{self.title} ({self.note})" if self.note else self.title)
        limit = max(16, 2 * (self.size.width or 80))
        for name, points in sorted(self.lines.items()):
            if points:
                xs, ys = zip(*thin(points, limit), strict=True)
                plt.plot(list(xs), list(ys), label=name, marker="braille")
        self.refresh()

    def on_resize(self) -> None:
        if self.lines:
            self._draw()

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

    def show(self, graphs: Graphs, note: str = "") -> None:
        """One chart per graph of ``graphs``; ``note`` goes in each title (e.g. cached)."""
        charts = self.charts()
        for title, chart in charts.items():
            if title not in graphs:
                chart.remove()
        for title in sorted(graphs):
            existing = charts.get(title)
            chart = existing if existing is not None else Chart(title)
            if existing is None:
                self.mount(chart)
            chart.show(graphs[title], note)
        self.query_one("#plots-empty").display = not graphs
