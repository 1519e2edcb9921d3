"""Per-job batching of feedback: at most one JobFeedback per interval per job."""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from ._events import JobFeedback


@dataclass
class _Line:
    """A plotted line's thinning: every ``stride``-th point is forwarded."""

    seen: int = 0
    forwarded: int = 0
    stride: int = 1


@dataclass
class _Pending:
    console: deque[tuple[str, str]]
    notes: list[tuple[str, str]] = field(default_factory=list)
    dropped: int = 0
    points: dict[str, dict[str, list[tuple[float, float]]]] = field(default_factory=dict)
    lines: dict[tuple[str, str], _Line] = field(default_factory=dict)
    images: dict[str, str] = field(default_factory=dict)
    last_flush: float = -math.inf
    forwarded_lines: int = 0

    def empty(self) -> bool:
        return not (self.console or self.notes or self.dropped or self.points or self.images)


class FeedbackBatcher:
    """Gathers worker feedback items and releases them as batched events.

    Items are tuples sent by workers: ``("console", stream, text)``, ``("graph", graph, line, x,
    y)``, ``("image", name, hash)``. What a job may flood is bounded, keeping what matters:

    - console: a batch keeps its last ``batch_lines`` lines (the execution document keeps a
      ring of recent lines anyway), and once ``console_cap`` lines of a job went out, its last
      ``trickle_lines``; the lines left out are counted. So the end of the output, where the
      summary and the error are, always arrives.
    - points: a line forwards every point up to ``line_points``, then every 2nd point, after
      as many again every 4th, and so on: a long run stays whole, more coarsely.
    """

    def __init__(self, execution: str, interval: float = 0.1, console_cap: int = 100_000, *,
                 batch_lines: int = 2000, trickle_lines: int = 200,
                 line_points: int = 20_000) -> None:
        self.execution = execution
        self.interval = interval
        self.console_cap = console_cap
        self.batch_lines = batch_lines
        self.trickle_lines = trickle_lines
        self.line_points = line_points
        self._jobs: dict[str, _Pending] = {}

    def _pending(self, job: str) -> _Pending:
        pending = self._jobs.get(job)
        if pending is None:
            pending = self._jobs[job] = _Pending(deque(maxlen=self._batch_size(0)))
        return pending

    def _batch_size(self, forwarded: int) -> int:
        return max(self.trickle_lines, min(self.batch_lines, self.console_cap - forwarded))

    def add(self, job: str, items: list[Any]) -> None:
        pending = self._pending(job)
        console = pending.console
        for item in items:
            kind = item[0]
            if kind == "console":
                if len(console) == console.maxlen:
                    pending.dropped += 1  # the oldest line of the batch makes way
                console.append((str(item[1]), str(item[2])))
            elif kind == "graph":
                _, graph, name, x, y = item
                key = (str(graph), str(name))
                line = pending.lines.get(key)
                if line is None:
                    line = pending.lines[key] = _Line()
                line.seen += 1
                if (line.seen - 1) % line.stride:
                    continue
                line.forwarded += 1
                if line.forwarded % self.line_points == 0:
                    line.stride *= 2
                pending.points.setdefault(key[0], {}).setdefault(key[1], []).append(
                    (float(x), float(y)))
            elif kind == "image":
                pending.images[str(item[1])] = str(item[2])

    def note(self, job: str, text: str) -> None:
        """An engine note in the job's console (retries, forced cancellation): never dropped."""
        self._pending(job).notes.append(("forge", text))

    def due(self, now: float) -> list[str]:
        """Jobs with pending feedback whose interval has passed."""
        return [job for job, p in self._jobs.items()
                if not p.empty() and now - p.last_flush >= self.interval]

    def next_due(self) -> float | None:
        """When the next batch may go out (monotonic time), or None if nothing is pending."""
        times = [p.last_flush + self.interval for p in self._jobs.values() if not p.empty()]
        return min(times) if times else None

    def flush(self, job: str, now: float) -> JobFeedback | None:
        """Release the job's pending feedback as one event (None if there is none)."""
        pending = self._jobs.get(job)
        if pending is None or pending.empty():
            return None
        event = JobFeedback(self.execution, job, (*pending.console, *pending.notes),
                            pending.dropped, pending.points, pending.images)
        pending.forwarded_lines += len(pending.console)
        pending.console = deque(maxlen=self._batch_size(pending.forwarded_lines))
        pending.notes, pending.dropped, pending.points, pending.images = [], 0, {}, {}
        pending.last_flush = now
        return event
