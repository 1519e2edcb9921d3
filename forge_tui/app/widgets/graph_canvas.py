"""A scrollable view of a rendered graph; colours come from the renderer's style tags."""

from __future__ import annotations

from dataclasses import dataclass

from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.geometry import Region, Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from forge_tui.app._presence import PALETTE
from forge_tui.render import Rendered

# Only the 16 ANSI colours, so the drawing reads the same in a plain terminal.
STYLES: dict[str, Style] = {
    "": Style(),
    "box": Style(),
    "box.selected": Style(color="bright_white", bold=True),
    "box.queued": Style(dim=True),
    "box.running": Style(color="yellow"),
    "box.succeeded": Style(color="green"),
    "box.failed": Style(color="red", bold=True),
    "box.cached": Style(color="cyan"),
    "box.cancelled": Style(color="magenta"),
    "edge": Style(color="blue"),
    "title": Style(bold=True),
    "subtitle": Style(italic=True, dim=True),
    "attr": Style(),
    "port": Style(color="yellow"),
    "label": Style(color="green"),
    "extra": Style(color="magenta"),
    "status.queued": Style(dim=True),
    "status.running": Style(color="yellow", bold=True),
    "status.succeeded": Style(color="green", bold=True),
    "status.failed": Style(color="red", bold=True),
    "status.cached": Style(color="cyan"),
    "status.cancelled": Style(color="magenta"),
}
for _slot, _colour in enumerate(PALETTE):
    STYLES[f"mark.{_slot}"] = Style(color="black", bgcolor=_colour, bold=True)


def row_strip(chars: list[str], styles: list[str]) -> Strip:
    segments: list[Segment] = []
    start = 0
    for col in range(1, len(chars) + 1):
        if col == len(chars) or styles[col] != styles[start]:
            segments.append(Segment("".join(chars[start:col]), STYLES.get(styles[start], Style())))
            start = col
    return Strip(segments, len(chars))


class GraphCanvas(ScrollView, can_focus=True, inherit_bindings=False):
    """Draws a :class:`Rendered` grid; clicking a box posts :class:`BoxClicked`.

    It has no keys of its own: arrows and hjkl belong to the screen or editor that owns it,
    where they move the selection (and the view follows it), rather than scroll the view."""

    DEFAULT_CSS = """
    GraphCanvas { background: $surface; border-left: tall $surface; }
    GraphCanvas:focus { background: $surface-lighten-1; border-left: tall $accent; }
    """

    @dataclass
    class BoxClicked(Message):
        canvas: GraphCanvas
        node_id: str

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.rendered = Rendered(0, 0, [], [])
        self._strips: dict[int, Strip] = {}  # rows drawn so far (a big diagram is drawn lazily)
        self.empty_text = ""

    def show(self, rendered: Rendered, empty_text: str = "", keep: str | None = None) -> None:
        """Draw ``rendered``; the box ``keep`` (if it was drawn before) stays where it was on
        screen, so an edit elsewhere does not make the view jump."""
        before, after = self.rendered.boxes.get(keep or ""), rendered.boxes.get(keep or "")
        if before is not None and after is not None and before != after:
            target = (
                self.scroll_x + after.x - before.x,
                self.scroll_y + after.y - before.y,
            )
            self.call_after_refresh(self.scroll_to, *target, animate=False, force=True)
        self.rendered = rendered
        self.empty_text = empty_text
        self._strips = {}
        self.virtual_size = Size(rendered.width, rendered.height)
        self.refresh()

    def follow(self, node_id: str | None) -> None:
        """Scroll so that a box is visible (the view follows the selection), once the next
        refresh is done: a view still being laid out would scroll by its provisional size."""
        self.call_after_refresh(self._show_box, node_id)

    def _show_box(self, node_id: str | None) -> None:
        rect = self.rendered.boxes.get(node_id or "")
        if rect is not None:
            self.scroll_to_region(
                Region(rect.x, rect.y, rect.width, rect.height), animate=False, force=True
            )

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        row = y + scroll_y
        width = self.size.width
        if not self.rendered.height:
            text = self.empty_text if y == 0 else ""
            return Strip([Segment(text[:width].ljust(width))], width)
        if row >= self.rendered.height:
            return Strip.blank(width)
        strip = self._strips.get(row)
        if strip is None:
            strip = row_strip(self.rendered.chars[row], self.rendered.styles[row])
            self._strips[row] = strip
        return strip.crop_extend(scroll_x, scroll_x + width, None)

    def on_click(self, event: events.Click) -> None:
        scroll_x, scroll_y = self.scroll_offset
        x, y = event.x + scroll_x, event.y + scroll_y
        for node_id, rect in self.rendered.boxes.items():
            if rect.contains(x, y):
                self.post_message(self.BoxClicked(self, node_id))
                return
