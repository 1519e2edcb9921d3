"""An execution document read for a live view: the run and its jobs in full at each change
(a few fields each), consoles and plot points incrementally.

Consoles and points only grow at their end (a console also loses lines at its start once it
reaches its cap, and says how many); so a job printing a thousand lines and plotting a thousand
points a second costs each redraw only what is new, not a copy of the whole document.
"""

from __future__ import annotations

from typing import Any

from pycrdt import Array, Map

from forge_ops.schema import Execution, ExecutionDoc

__all__ = ["LiveExecution"]


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _points(items: list[Any]) -> list[list[float]]:
    return [
        [float(p[0]), float(p[1])]
        for p in items
        if isinstance(p, list) and len(p) == 2 and _number(p[0]) and _number(p[1])
    ]


class LiveExecution:
    """:meth:`read` gives what ``ExecutionDoc.to_plain()`` gives, reading only what changed
    since the previous call for the consoles and the graphs."""

    def __init__(self, execution: ExecutionDoc) -> None:
        self.execution = execution
        self.console: dict[str, list[str]] = {}
        self.dropped: dict[str, int] = {}
        self.graphs: dict[str, dict[str, dict[str, list[list[float]]]]] = {}
        self._read: dict[tuple[str, str, str], int] = {}
        """Points read so far per line (a malformed point is read, not kept)."""

    def read(self) -> Execution:
        doc = self.execution
        plain = doc.to_plain(content=False)
        with doc.doc.transaction():
            for job_id, value in doc.console.items():
                if isinstance(value, Array):
                    self._console(job_id, value, doc.console_dropped.get(job_id, 0))
            for job_id, graphs in doc.graphs.items():
                if isinstance(graphs, Map):
                    self._graphs(job_id, graphs)
            images = {
                job_id: {str(k): str(v) for k, v in names.items() if isinstance(v, str)}
                for job_id, names in doc.images.items()
                if isinstance(names, Map)
            }
        plain["console"] = {job_id: list(lines) for job_id, lines in self.console.items()}
        plain["console_dropped"] = {j: n for j, n in self.dropped.items() if n}
        plain["graphs"] = {
            job_id: {title: dict(lines) for title, lines in graphs.items()}
            for job_id, graphs in self.graphs.items()
        }
        plain["images"] = images
        return plain

    def _console(self, job_id: str, array: Array[Any], dropped_value: Any) -> None:
        dropped = int(dropped_value) if _number(dropped_value) else 0
        lines = self.console.setdefault(job_id, [])
        before = self.dropped.get(job_id, 0)
        total, known = dropped + len(array), before + len(lines)
        if dropped < before or total < known:  # rewritten, not appended to: read it again
            lines[:] = [str(line) for line in array]
        else:
            new = total - known
            if new:
                lines.extend(str(line) for line in array[len(array) - new :])
            del lines[: dropped - before]
        self.dropped[job_id] = dropped

    def _graphs(self, job_id: str, graphs: Map) -> None:
        known = self.graphs.setdefault(job_id, {})
        for title, lines in graphs.items():
            if not isinstance(lines, Map):
                continue
            kept = known.setdefault(str(title), {})
            for line, array in lines.items():
                if not isinstance(array, Array):
                    continue
                points = kept.setdefault(str(line), [])
                where = (job_id, str(title), str(line))
                done = self._read.get(where, 0)
                if len(array) < done:  # rewritten: read it again
                    points[:] = _points(list(array))
                elif len(array) > done:
                    points.extend(_points(array[done:]))
                self._read[where] = len(array)
