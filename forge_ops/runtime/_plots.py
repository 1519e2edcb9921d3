"""Route matplotlib figures made by plain plotting code into the feedback sink.

While an operation runs, ``pyplot.show`` and ``pyplot.close`` are wrapped so that a figure is
routed when it is shown or closed, and figures still open when the operation ends are routed
then; ``show()`` closes the figures, ``show(block=False)`` and ``pause`` leave them to update.

A figure whose axes hold only lines becomes graph series (graph = axes title, else the
figure's title, else "Figure N" numbered per operation; line = its label, else "line N");
showing it again sends only the new points, and so does drawing a series' history again in a
new figure (the live-plot habit of redrawing every epoch). Reference lines (``axhline``,
``axvline``: not in data coordinates) are left out. Any other figure (images, scatter, bars...)
is rendered with Agg to an image.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ._sink import FeedbackSink

__all__ = ["FigureRouter", "route_matplotlib"]


class FigureRouter:
    """Sends figures to a sink, remembering how many points of each line were already sent."""

    def __init__(self, sink: FeedbackSink) -> None:
        self._sink = sink
        # The points last routed for each series (graph, line name), whichever figure drew them.
        self._series: dict[tuple[str, str], list[tuple[float, float]]] = {}
        # Untitled figures are numbered in the order they are first routed: pyplot reuses
        # figure numbers once figures are closed, which would overwrite earlier images.
        self._untitled: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()
        self._untitled_count = 0

    def route(self, figure: Any) -> None:
        name = _figure_name(figure)
        if name is None:
            if figure not in self._untitled:
                self._untitled_count += 1
                self._untitled[figure] = f"Figure {self._untitled_count}"
            name = self._untitled[figure]
        if _is_line_plot(figure):
            self._route_lines(figure, name)
        else:
            self._route_image(figure, name)

    def _route_lines(self, figure: Any, name: str) -> None:
        axes_list = [axes for axes in figure.get_axes() if axes.get_lines()]
        for index, axes in enumerate(axes_list):
            graph = axes.get_title() or name
            if len(axes_list) > 1 and not axes.get_title():
                graph = f"{name} ({index + 1})"
            for number, line in enumerate(axes.get_lines(), start=1):
                if line.get_transform() is not axes.transData:
                    continue  # axhline and the like: axes coordinates, not data
                label = str(line.get_label())
                series = label if label and not label.startswith("_") else f"line {number}"
                points = [(float(x), float(y)) for x, y in line.get_xydata()
                          if not (math.isnan(x) or math.isnan(y))]  # NaN marks a gap
                sent = self._series.get((graph, series), [])
                # The same data again, maybe extended (the line updated, or its history drawn
                # anew): only what is new. Other data under the same name: all of it.
                new = points[len(sent):] if points[:len(sent)] == sent else points
                for x, y in new:
                    self._sink.graph_point(graph, series, x, y)
                self._series[(graph, series)] = points

    def _route_image(self, figure: Any, name: str) -> None:
        import numpy

        figure.canvas.draw()
        pixels = numpy.asarray(figure.canvas.buffer_rgba())[:, :, :3].copy()
        self._sink.image(name, pixels)


def _figure_name(figure: Any) -> str | None:
    suptitle = getattr(figure, "_suptitle", None)
    if suptitle is not None and suptitle.get_text():
        return str(suptitle.get_text())
    for axes in figure.get_axes():
        if axes.get_title():
            return str(axes.get_title())
    label = figure.get_label()
    return str(label) if label else None


def _is_line_plot(figure: Any) -> bool:
    axes_list = figure.get_axes()
    has_lines = any(axes.get_lines() for axes in axes_list)
    others = any(axes.images or axes.collections or axes.patches for axes in axes_list)
    return has_lines and not others


def _figures_to_close(pyplot: Any, target: Any) -> list[Any]:
    from matplotlib.figure import Figure

    numbers = pyplot.get_fignums()
    if not numbers:
        return []
    if target is None:
        return [pyplot.gcf()]
    if isinstance(target, Figure):
        return [target]
    if target == "all":
        return [pyplot.figure(number) for number in numbers]
    if isinstance(target, int) and target in numbers:
        return [pyplot.figure(target)]
    if isinstance(target, str) and target in pyplot.get_figlabels():
        return [pyplot.figure(target)]
    return []


@contextmanager
def route_matplotlib(sink: FeedbackSink) -> Iterator[FigureRouter]:
    """Use the Agg backend and route figures (see module doc) for the duration of the block."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    router = FigureRouter(sink)
    original_show, original_close = pyplot.show, pyplot.close

    def show(*args: Any, **kwargs: Any) -> None:
        for number in pyplot.get_fignums():
            router.route(pyplot.figure(number))
        # show(block=False) (what plt.pause calls) keeps the figures for the code to update;
        # a plain show() is where a script's figures would end.
        if kwargs.get("block", args[0] if args else None) is not False:
            original_close("all")

    def close(fig: Any = None) -> None:
        for figure in _figures_to_close(pyplot, fig):
            router.route(figure)
        original_close(fig)

    pyplot.show, pyplot.close = show, close
    try:
        yield router
    finally:
        pyplot.show, pyplot.close = original_show, original_close
        for number in pyplot.get_fignums():
            try:
                router.route(pyplot.figure(number))
            except Exception as exc:  # a broken figure must not hide the operation's result
                sink.console("stderr", f"forge: could not route figure {number}: {exc!r}")
        original_close("all")
