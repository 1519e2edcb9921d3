"""A table that draws only the rows on screen: thousands of executions open at once.

Textual's ``DataTable`` measures every cell when rows are added (and every cell of a column
again when one cell narrows), which costs about half a second for 1,000 executions. Here a
column is as wide as its widest cell, measured once per change of that row, and a frame draws
the header and the visible rows only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding, BindingType
from textual.geometry import Region, Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

Cell = Text | str
GAP = 2  # blank cells between columns


def _width(cell: Cell) -> int:
    if isinstance(cell, Text):
        return cell.cell_len
    return len(cell) if cell.isascii() else cell_len(cell)


class RunTable(ScrollView, can_focus=True):
    """Rows keyed by id; ``cursor_row`` is the highlighted one. Posts :class:`RowSelected`
    (Enter, or a click on the highlighted row) and :class:`HeaderSelected` (a column's
    header clicked)."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "run-table--header", "run-table--cursor", "run-table--even-row",
    }
    DEFAULT_CSS = """
    RunTable { background: $surface; height: 1fr; border-left: tall $surface; }
    RunTable:focus { border-left: tall $accent; }
    RunTable > .run-table--header { text-style: bold; background: $panel; }
    RunTable > .run-table--even-row { background: $surface-lighten-1 50%; }
    RunTable > .run-table--cursor { background: $block-cursor-blurred-background; }
    RunTable:focus > .run-table--cursor {
        background: $block-cursor-background; color: $block-cursor-foreground;
    }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up,k", "cursor(-1)", "Up", show=False),
        Binding("down,j", "cursor(1)", "Down", show=False),
        Binding("pageup", "page(-1)", "Page up", show=False),
        Binding("pagedown", "page(1)", "Page down", show=False),
        Binding("home", "first", "First", show=False),
        Binding("end", "last", "Last", show=False),
        Binding("enter", "select", "Open", show=False),
    ]

    cursor_row: reactive[int] = reactive(0, init=False)

    @dataclass
    class RowSelected(Message):
        table: RunTable
        key: str

    @dataclass
    class HeaderSelected(Message):
        table: RunTable
        column: str

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.columns: list[tuple[str, Cell]] = []
        self.keys: list[str] = []
        self.cells: dict[str, tuple[Cell, ...]] = {}
        self.widths: list[int] = []
        self._row_widths: dict[str, tuple[int, ...]] = {}

    # ----- content ------------------------------------------------------------------------

    def set_content(
        self, columns: Sequence[tuple[str, Cell]], rows: Sequence[tuple[str, Sequence[Cell]]]
    ) -> None:
        """Replace the columns (key, label) and the rows (key, cells); the cursor stays on
        its row's key where that row is still there."""
        current = self.current_key
        self.columns = list(columns)
        self.keys = [key for key, _ in rows]
        self.cells = {key: tuple(cells) for key, cells in rows}
        self._row_widths = {
            key: tuple(_width(c) for c in cells) for key, cells in self.cells.items()
        }
        self._measure()
        row = self.keys.index(current) if current in self.cells else 0
        self.set_reactive(RunTable.cursor_row, min(row, max(0, len(self.keys) - 1)))
        self.refresh()

    def update_row(self, key: str, cells: Sequence[Cell]) -> None:
        """New cells for row ``key`` (widths follow)."""
        if key not in self.cells:
            return
        self.cells[key] = tuple(cells)
        widths = tuple(_width(c) for c in cells)
        grew = any(w > have for w, have in zip(widths, self.widths, strict=False))
        shrank = any(
            old == have and w < old
            for w, old, have in zip(widths, self._row_widths[key], self.widths, strict=False)
        )
        self._row_widths[key] = widths
        if grew or shrank:
            self._measure()
        index = self.keys.index(key)
        self.refresh(Region(0, index + 1 - int(self.scroll_y), self.size.width, 1))

    @property
    def current_key(self) -> str | None:
        """The key of the highlighted row, if there are rows."""
        return self.keys[self.cursor_row] if 0 <= self.cursor_row < len(self.keys) else None

    def get_row(self, key: str) -> tuple[Cell, ...]:
        return self.cells[key]

    @property
    def row_count(self) -> int:
        return len(self.keys)

    def _measure(self) -> None:
        widths = [_width(label) for _, label in self.columns]
        for row in self._row_widths.values():
            widths = [max(w, c) for w, c in zip(widths, row, strict=False)]
        self.widths = widths
        total = sum(widths) + GAP * max(0, len(widths) - 1) + 1
        self.virtual_size = Size(total, len(self.keys) + 1)

    # ----- drawing ------------------------------------------------------------------------

    def _line(self, cells: Sequence[Cell], style: Style) -> Strip:
        text = Text(no_wrap=True, end="")
        text.append(" ")
        for index, (cell, width) in enumerate(zip(cells, self.widths, strict=False)):
            piece = cell if isinstance(cell, Text) else Text(cell)
            text.append_text(piece)
            pad = width - piece.cell_len + (GAP if index < len(self.widths) - 1 else 0)
            text.append(" " * max(0, pad))
        segments = [
            Segment(seg.text, style + seg.style if seg.style else style)
            for seg in text.render(self.app.console)
        ]
        return Strip(segments)

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        width = self.size.width
        if y == 0:  # the header stays on top; it scrolls sideways with the rows
            style = self.get_component_rich_style("run-table--header")
            line = self._line([label for _, label in self.columns], style)
            return line.crop_extend(scroll_x, scroll_x + width, style)
        row = scroll_y + y - 1
        base = self.rich_style
        if row >= len(self.keys):
            return Strip.blank(width, base)
        if row == self.cursor_row:
            style = base + self.get_component_rich_style("run-table--cursor")
        elif row % 2:
            style = base + self.get_component_rich_style("run-table--even-row")
        else:
            style = base
        line = self._line(self.cells[self.keys[row]], style)
        return line.crop_extend(scroll_x, scroll_x + width, style)

    # ----- cursor -------------------------------------------------------------------------

    def watch_cursor_row(self, old: int, new: int) -> None:
        self.refresh()
        self._show_cursor()

    def _show_cursor(self) -> None:
        visible = max(1, self.scrollable_content_region.height - 1)
        top = int(self.scroll_y)
        if self.cursor_row < top:
            self.scroll_to(y=self.cursor_row, animate=False)
        elif self.cursor_row >= top + visible:
            self.scroll_to(y=self.cursor_row - visible + 1, animate=False)

    def move_cursor(self, *, row: int) -> None:
        if self.keys:
            self.cursor_row = max(0, min(row, len(self.keys) - 1))

    def action_cursor(self, step: int) -> None:
        self.move_cursor(row=self.cursor_row + step)

    def action_page(self, step: int) -> None:
        self.move_cursor(row=self.cursor_row + step * max(1, self.size.height - 2))

    def action_first(self) -> None:
        self.move_cursor(row=0)

    def action_last(self) -> None:
        self.move_cursor(row=len(self.keys) - 1)

    def action_select(self) -> None:
        if self.keys:
            self.post_message(self.RowSelected(self, self.keys[self.cursor_row]))

    def on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is None:
            return
        if offset.y == 0:
            x = offset.x + int(self.scroll_x) - 1  # the rows start after one blank column
            for (key, _), start, width in zip(self.columns, self._starts(), self.widths,
                                              strict=False):
                if start <= x < start + width + GAP:
                    self.post_message(self.HeaderSelected(self, key))
                    return
            return
        row = int(self.scroll_y) + offset.y - 1
        if 0 <= row < len(self.keys):
            if row == self.cursor_row:
                self.action_select()
            self.cursor_row = row

    def _starts(self) -> list[int]:
        starts, x = [], 0
        for width in self.widths:
            starts.append(x)
            x += width + GAP
        return starts
