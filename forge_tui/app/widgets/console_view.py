"""A job's console: scrolling lines, follow mode (stay at the end as lines arrive), search."""

from __future__ import annotations

from collections.abc import Sequence

from rich.cells import cell_len
from rich.control import strip_control_codes
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.geometry import Region, Size
from textual.scroll_view import ScrollView
from textual.strip import Strip


def _one_line(line: str) -> str:
    """A console line as exactly one drawn line (tabs expanded, control codes and line breaks
    out), so that line numbers, search matches and dropped lines stay in step with the
    document."""
    return strip_control_codes(line.replace("\r", "").replace("\n", " ").expandtabs())


class ConsoleView(ScrollView, can_focus=True):
    """Console lines of one job; :meth:`show` appends what is new and keeps the scroll place.

    Follow mode (on by default) keeps the newest line in view whatever happens to the view's
    size (a panel above it growing, a switch of tabs). Scrolling up or searching turns it off;
    End or ``follow(True)`` turns it back on.

    Its own scroll view rather than Textual's ``Log``: a ``Log`` asks for a layout of the whole
    screen at every write (its height changes), ten times a second while a job prints. Here the
    vertical scroll bar is always there, so new lines only move the scroll range.
    """

    DEFAULT_CSS = """
    ConsoleView {
        height: 1fr; min-height: 4; border: round $primary; background: $surface;
        overflow-y: scroll; overflow-x: auto;
    }
    ConsoleView:focus { border: heavy $accent; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.auto_scroll = True
        self.shown: list[str] = []
        self.dropped = 0
        self.matches: list[int] = []
        self.match_index = -1
        self.term = ""
        self.source = ""
        """Where the lines come from when not from this job (a cached job's original run)."""
        self._lines: list[str] = []
        """What is drawn: the "earlier lines dropped" note, then the kept lines."""
        self._width = 0
        self._style: Style | None = None
        self.border_title = "console"

    # ----- the drawn lines ----------------------------------------------------------------

    @property
    def lines(self) -> list[str]:
        return self._lines

    @property
    def line_count(self) -> int:
        return len(self._lines)

    def clear(self) -> None:
        self._lines = []
        self._width = 0
        self._resize()

    def _append(self, new: Sequence[str]) -> None:
        drawn = [_one_line(line) for line in new]
        self._lines.extend(drawn)
        self._width = max(self._width, *(cell_len(line) for line in drawn))
        self._resize()

    def _resize(self) -> None:
        size = Size(self._width + 1, len(self._lines))
        old = self.virtual_size
        if size == old:
            self.refresh()
            return
        room = self.container_size.width
        if not self.is_mounted or (old.width > room) != (size.width > room):
            self.virtual_size = size  # a horizontal scroll bar comes or goes: a layout
            return
        # The vertical bar is always shown: a new height moves only the scroll range.
        self.set_reactive(ConsoleView.virtual_size, size)
        self._scroll_update(size)
        self.refresh()

    def render_lines(self, crop: Region) -> list[Strip]:
        self._style = self.rich_style  # once per redraw, not once per line
        return super().render_lines(crop)

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        width = self.size.width
        style = self._style or self.rich_style
        index = scroll_y + y
        if index >= len(self._lines):
            return Strip.blank(width, style)
        text = self._lines[index]
        strip = Strip([Segment(text, style)], cell_len(text))
        return strip.crop_extend(scroll_x, scroll_x + width, style)

    @property
    def following(self) -> bool:
        return self.auto_scroll

    def follow(self, on: bool) -> None:
        self.auto_scroll = on
        if on:
            self._to_end()
        self._title()

    def _to_end(self) -> None:
        self.scroll_end(animate=False, immediate=True, x_axis=False)

    def show(self, lines: Sequence[str], dropped: int = 0, source: str = "") -> None:
        """Show ``lines`` (the job's whole kept console); only new lines are written.

        ``source``: a note for the title when the lines are another run's (cached jobs)."""
        lines = list(lines)
        if source != self.source:
            self.source = source
            self._title()
        kept = len(self.shown) - (dropped - self.dropped)
        dropped_before = self.dropped
        if dropped == self.dropped and lines[: len(self.shown)] == self.shown:
            new = lines[len(self.shown) :]
        elif (
            dropped > self.dropped
            and 0 < kept <= len(lines)
            and lines[:kept] == self.shown[len(self.shown) - kept :]
        ):
            # The job's console was capped again: drop from the top what the document dropped,
            # keep the rest on screen, append the new lines (no full rewrite at every batch).
            self._drop_top(dropped - self.dropped, dropped)
            new = lines[kept:]
            self.dropped = dropped
        else:  # another job, or the lines changed in the middle: start over
            self.clear()
            self.shown = []
            new = [f"… {dropped} earlier lines dropped"] if dropped else []
            new += lines
            self.dropped = dropped
        if new:
            self._append(new)
        elif dropped_before != self.dropped:
            self._resize()
        self.shown = lines
        if self.auto_scroll:
            # Whether or not the view was at the end before: a resize may have moved the end
            # away from the view since the last lines came.
            self._to_end()
        if self.term:
            self._find(self.term, keep=True)

    def _drop_top(self, count: int, dropped: int) -> None:
        """Remove ``count`` lines after the "earlier lines dropped" note (updated to say
        ``dropped``); the size is set once the new lines are in (:meth:`_append`)."""
        note = 1 if self.dropped else 0
        del self._lines[note : note + count]
        note_line = f"… {dropped} earlier lines dropped"
        if note:
            self._lines[0] = note_line
        else:
            self._lines.insert(0, note_line)

    def reset(self) -> None:
        self.clear()
        self.shown, self.dropped, self.matches, self.match_index, self.term = [], 0, [], -1, ""
        self.source = ""
        self.auto_scroll = True
        self._title()

    # ----- follow mode follows the end, not the last scroll position ----------------------

    def on_resize(self, event: events.Resize) -> None:
        if self.auto_scroll:
            self._to_end()

    def on_show(self, event: events.Show) -> None:
        if self.auto_scroll:
            self.call_after_refresh(self._to_end)

    def _pause(self) -> None:
        if self.auto_scroll:
            self.auto_scroll = False
            self._title()

    def action_scroll_up(self) -> None:
        self._pause()
        super().action_scroll_up()

    def action_page_up(self) -> None:
        self._pause()
        super().action_page_up()

    def action_scroll_home(self) -> None:
        self._pause()
        super().action_scroll_home()

    def action_scroll_end(self) -> None:
        self.follow(True)

    def _on_mouse_scroll_up(self, event: events.MouseScrollUp) -> None:
        self._pause()
        super()._on_mouse_scroll_up(event)

    # ----- search -------------------------------------------------------------------------

    def search(self, term: str) -> int:
        """Jump to the first line containing ``term`` (case-insensitive); the match count."""
        self.term = term
        self._find(term, keep=False)
        return len(self.matches)

    def next_match(self, step: int = 1) -> int | None:
        """Jump to the next (step=-1: previous) match; its line number, or None."""
        if not self.matches:
            return None
        self.match_index = (self.match_index + step) % len(self.matches)
        self._jump()
        return self.matches[self.match_index]

    @property
    def current_match(self) -> int | None:
        """The console line (0-based, as drawn) of the match jumped to last, if any."""
        return self.matches[self.match_index] if self.matches else None

    def _find(self, term: str, *, keep: bool) -> None:
        needle = term.lower()
        offset = 1 if self.dropped else 0
        self.matches = [
            i + offset for i, line in enumerate(self.shown) if needle and needle in line.lower()
        ]
        if not keep:
            self.match_index = 0 if self.matches else -1
            if self.matches:
                self._jump()
        self._title()

    def _jump(self) -> None:
        self.auto_scroll = False
        self._title()
        self._scroll_to_match()
        # The view may be hidden or still being laid out (a tab just switched to it): scroll
        # again once its size is known, or the match stays off screen.
        self.call_after_refresh(self._scroll_to_match)

    def _scroll_to_match(self) -> None:
        line = self.current_match
        if line is not None:
            height = self.scrollable_content_region.height
            self.scroll_to(y=max(0, line - height // 2), animate=False, immediate=True)

    def _title(self) -> None:
        parts = ["console", "follow" if self.auto_scroll else "paused"]
        if self.source:
            parts.append(self.source)
        if self.term:
            found = f"{self.match_index + 1}/{len(self.matches)}" if self.matches else "none"
            parts.append(f"/{self.term}: {found}")
        self.border_title = " · ".join(parts)
