"""Box geometry (size, where each port sits on the border) and drawing a box into the grid."""

from __future__ import annotations

from dataclasses import dataclass

from forge_tui.render._model import STATUS_GLYPHS, NodeSpec, RenderOptions, Status

# Border sets: (horizontal, vertical, ┌, ┐, └, ┘, input junction, output junction).
LIGHT = ("─", "│", "┌", "┐", "└", "┘", "┴", "┬")
HEAVY = ("━", "┃", "┏", "┓", "┗", "┛", "┻", "┳")
DOUBLE = ("═", "║", "╔", "╗", "╚", "╝", "╨", "╥")
DASHED = ("┄", "┆", "┌", "┐", "└", "┘", "┴", "┬")


def border_for(node: NodeSpec) -> tuple[str, ...]:
    """Selection is heavy; failure double; waiting or cancelled dashed (legible in monochrome)."""
    if node.selected:
        return HEAVY
    if node.status is Status.FAILED:
        return DOUBLE
    if node.status in (Status.QUEUED, Status.CANCELLED):
        return DASHED
    return LIGHT


def clip(text: str, width: int) -> str:
    if width <= 0:
        return ""
    return text if len(text) <= width else text[: max(width - 1, 0)] + "…"


@dataclass
class BoxGeometry:
    node: NodeSpec
    width: int
    height: int
    body: list[tuple[str, str]]  # (text, style) rows between the borders
    inputs: list[str]  # port order along the top border (may be reordered)
    outputs: list[str]
    input_names: dict[str, str]  # port -> clipped label
    output_names: dict[str, str]
    input_at: dict[str, int]  # port -> column offset of its junction
    output_at: dict[str, int]

    def place_ports(self) -> None:
        self.input_at = _spread(self.inputs, self.input_names, self.width)
        self.output_at = _spread(self.outputs, self.output_names, self.width)


def _ports_width(names: list[str]) -> int:
    return 4 + sum(len(n) + 3 for n in names) - 2 if names else 0


def _spread(order: list[str], names: dict[str, str], width: int) -> dict[str, int]:
    """Ports packed at an even pitch and centred on the border; each is a junction + its name.

    A fixed pitch (not stretching with the box) lets two boxes with the same ports line up, so
    the edges between them run straight.
    """
    if not order:
        return {}
    sizes = [len(names[p]) + 1 for p in order]
    total = sum(sizes) + 2 * (len(order) - 1)
    col = max(2, (width - total) // 2)
    starts = {}
    for port, size in zip(order, sizes, strict=True):
        starts[port] = col
        col += size + 2
    return starts


def measure(node: NodeSpec, options: RenderOptions) -> BoxGeometry:
    glyph = STATUS_GLYPHS[node.status] + " " if node.status is not None else ""
    marks = " ".join(m.initials for m in node.marks)
    title = glyph + node.title
    body: list[tuple[str, str]] = [(title, "title")]
    if node.subtitle and node.subtitle != node.title and options.show_subtitle:
        body.append((node.subtitle, "subtitle"))
    lines = list(node.lines[: options.max_lines])
    if lines and len(node.lines) > options.max_lines:
        lines[-1] = f"… {len(node.lines) - options.max_lines + 1} more"
    body.extend((line, "attr") for line in lines)
    if node.extra:
        body.append((node.extra, "extra"))
    title_room = len(title) + (len(marks) + 1 if marks else 0)
    inner = max([title_room, *(len(t) for t, _ in body[1:]), 6])
    inner = min(inner, options.max_inner_width)
    in_names = {p: clip(p, options.max_port_name) for p in node.inputs}
    out_names = {p: clip(p, options.max_port_name) for p in node.outputs}
    width = max(
        inner + 4,
        _ports_width(list(in_names.values())),
        _ports_width(list(out_names.values())),
    )
    box = BoxGeometry(
        node=node,
        width=width,
        height=len(body) + 2,
        body=body,
        inputs=list(node.inputs),
        outputs=list(node.outputs),
        input_names=in_names,
        output_names=out_names,
        input_at={},
        output_at={},
    )
    box.place_ports()
    return box


def draw(box: BoxGeometry, x: int, y: int, chars: list[list[str]], styles: list[list[str]]) -> None:
    node = box.node
    h, v, tl, tr, bl, br, jin, jout = border_for(node)
    style = "box.selected" if node.selected else f"box.{node.status}" if node.status else "box"
    w = box.width

    def put(row: int, col: int, text: str, tag: str) -> None:
        end = col + len(text)
        chars[row][col:end] = text
        styles[row][col:end] = [tag] * len(text)

    put(y, x, tl + h * (w - 2) + tr, style)
    bottom = y + box.height - 1
    put(bottom, x, bl + h * (w - 2) + br, style)
    for port, col in box.input_at.items():
        put(y, x + col, jin, "edge")
        put(y, x + col + 1, box.input_names[port], "port")
    for port, col in box.output_at.items():
        put(bottom, x + col, jout, "edge")
        put(bottom, x + col + 1, box.output_names[port], "port")
    inner = w - 4
    for i, (text, tag) in enumerate(box.body, start=1):
        row = y + i
        put(row, x, v + " " * (w - 2) + v, style)
        if i == 1 and node.marks:
            marks_len = sum(len(m.initials) + 1 for m in node.marks) - 1
            put(row, x + 2, clip(text, inner - marks_len - 1), tag)
            col = x + w - 2 - marks_len
            for mark in node.marks:
                put(row, col, mark.initials, f"mark.{mark.colour % 8}")
                col += len(mark.initials) + 1
        else:
            put(row, x + 2, clip(text, inner), tag)
        if i == 1 and node.status is not None:
            put(row, x + 2, STATUS_GLYPHS[node.status], f"status.{node.status}")
