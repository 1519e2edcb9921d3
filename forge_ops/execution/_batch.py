"""Per-job batching of feedback: at most one JobFeedback per interval per job."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from ._events import JobFeedback


@dataclass
class _Pending:
    console: list[tuple[str, str]] = field(default_factory=list)
    dropped: int = 0
    points: dict[str, dict[str, list[tuple[float, float]]]] = field(default_factory=dict)
    images: dict[str, str] = field(default_factory=dict)
    last_flush: float = -math.inf
    forwarded_lines: int = 0

    def empty(self) -> bool:
        return not (self.console or self.dropped or self.points or self.images)


class FeedbackBatcher:
    """Gathers worker feedback items and releases them as batched events.

    Items are tuples sent by workers: ``("console", stream, text)``, ``("graph", graph, line, x,
    y)``, ``("image", name, hash)``. Console lines beyond ``console_cap`` per job are counted, not
    forwarded (the execution document keeps its own, smaller ring of recent lines).
    """

    def __init__(self, execution: str, interval: float = 0.1, console_cap: int = 100_000) -> None:
        self.execution = execution
        self.interval = interval
        self.console_cap = console_cap
        self._jobs: dict[str, _Pending] = {}

    def add(self, job: str, items: list[Any]) -> None:
        pending = self._jobs.setdefault(job, _Pending())
        for item in items:
            kind = item[0]
            if kind == "console":
                if pending.forwarded_lines < self.console_cap:
                    pending.console.append((str(item[1]), str(item[2])))
                    pending.forwarded_lines += 1
                else:
                    pending.dropped += 1
            elif kind == "graph":
                _, graph, line, x, y = item
                pending.points.setdefault(str(graph), {}).setdefault(str(line), []).append(
                    (float(x), float(y)))
            elif kind == "image":
                pending.images[str(item[1])] = str(item[2])

    def note(self, job: str, text: str) -> None:
        """An engine note in the job's console (retries, forced cancellation)."""
        self._jobs.setdefault(job, _Pending()).console.append(("forge", text))

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
        event = JobFeedback(self.execution, job, tuple(pending.console), pending.dropped,
                            pending.points, pending.images)
        pending.console, pending.dropped, pending.points, pending.images = [], 0, {}, {}
        pending.last_flush = now
        return event
