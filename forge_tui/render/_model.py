"""What the renderer draws: plain descriptions of boxes and edges, independent of the documents."""

from __future__ import annotations

from dataclasses import dataclass, field

from forge_ops.schema import JobStatus

Status = JobStatus
"""Job states, as in the execution document: boxes of the monitor are coloured by them."""


# A glyph per status so that status is readable without colour.
STATUS_GLYPHS: dict[Status, str] = {
    Status.QUEUED: "·",
    Status.RUNNING: "▶",
    Status.SUCCEEDED: "✓",
    Status.FAILED: "✗",
    Status.CACHED: "≡",
    Status.CANCELLED: "⊘",
}


@dataclass(frozen=True)
class Mark:
    """Someone else's presence on a box: their initials and a colour slot (0-7)."""

    initials: str
    colour: int = 0


@dataclass(frozen=True)
class NodeSpec:
    """One box: the node's name, its operation, key attribute lines and its ports."""

    id: str
    title: str
    subtitle: str = ""
    lines: tuple[str, ...] = ()
    inputs: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()
    extra: str = ""
    status: Status | None = None
    selected: bool = False
    marks: tuple[Mark, ...] = ()


@dataclass(frozen=True)
class EdgeSpec:
    """A connection from an output port to an input port (ports may be "" for layers)."""

    src: str
    src_port: str
    dst: str
    dst_port: str
    label: str = ""


@dataclass(frozen=True)
class GraphSpec:
    nodes: tuple[NodeSpec, ...] = ()
    edges: tuple[EdgeSpec, ...] = ()


@dataclass(frozen=True)
class RenderOptions:
    """Knobs for compact (80×24) or roomy drawing."""

    max_inner_width: int = 24
    max_port_name: int = 10
    max_lines: int = 3
    show_subtitle: bool = True
    box_gap: int = 3
    dummy_gap: int = 2
    sweeps: int = 6


COMPACT = RenderOptions(max_inner_width=18, max_lines=0, show_subtitle=False, box_gap=2)
"""Name and ports only: more of the graph fits an 80×24 terminal."""


@dataclass(frozen=True)
class Rect:
    x: int
    y: int
    width: int
    height: int

    @property
    def right(self) -> int:
        return self.x + self.width

    @property
    def bottom(self) -> int:
        return self.y + self.height

    @property
    def centre(self) -> tuple[float, float]:
        return (self.x + self.width / 2, self.y + self.height / 2)

    def contains(self, x: int, y: int) -> bool:
        return self.x <= x < self.right and self.y <= y < self.bottom

    def overlaps(self, other: Rect) -> bool:
        return (
            self.x < other.right
            and other.x < self.right
            and self.y < other.bottom
            and other.y < self.bottom
        )


@dataclass
class Rendered:
    """The drawing: a grid of characters with a style tag per cell, and where each box landed."""

    width: int
    height: int
    chars: list[list[str]]
    styles: list[list[str]]
    boxes: dict[str, Rect] = field(default_factory=dict)
    skipped_edges: list[EdgeSpec] = field(default_factory=list)

    def lines(self) -> list[str]:
        return ["".join(row) for row in self.chars]

    def text(self) -> str:
        return "\n".join(line.rstrip() for line in self.lines())
