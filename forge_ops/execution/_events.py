"""What the engine reports while an execution runs (to its ``on_event`` callback).

Events map one to one onto execution-document writes: a status change of the execution or of a
job, and per job at most one ``JobFeedback`` per feedback interval (0.1 s by default) carrying
the console lines, graph points and images gathered since the last one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from forge_ops.schema import JobStatus


@dataclass(frozen=True)
class ExecutionStatusChanged:
    """The execution as a whole started (``running``) or finished."""

    execution: str
    status: JobStatus
    time: str


@dataclass(frozen=True)
class JobStatusChanged:
    """A job moved to ``status``; on success or cache hit ``outputs`` holds its artifacts."""

    execution: str
    job: str
    status: JobStatus
    time: str
    started: str | None = None
    finished: str | None = None
    error: str | None = None
    traceback: str | None = None
    cache_key: str | None = None
    cached_from: str | None = None
    outputs: dict[str, str] = field(default_factory=dict)
    attempt: int = 0


@dataclass(frozen=True)
class JobFeedback:
    """Feedback gathered from a running job since the previous one (one batched write)."""

    execution: str
    job: str
    #: (stream, line) in arrival order; stream is "stdout", "stderr" or "forge" (engine notes).
    console: tuple[tuple[str, str], ...] = ()
    #: Lines dropped because the job exceeded the console cap, since the previous event.
    console_dropped: int = 0
    #: graph title -> line name -> points.
    points: dict[str, dict[str, list[tuple[float, float]]]] = field(default_factory=dict)
    #: image name -> artifact hash (the latest image under that name).
    images: dict[str, str] = field(default_factory=dict)

    @property
    def lines(self) -> list[str]:
        """The console lines without their streams."""
        return [text for _, text in self.console]


Event = ExecutionStatusChanged | JobStatusChanged | JobFeedback
