"""A job's console: scrolling lines, follow mode (stay at the end as lines arrive), search."""

from __future__ import annotations

from collections.abc import Sequence

from textual.widgets import Log


class ConsoleView(Log):
    """Console lines of one job; :meth:`show` appends what is new and keeps the scroll place.

    Follow mode (on by default) keeps the newest line in view; scrolling or searching turns
    it off, ``follow(True)`` turns it back on.
    """

    DEFAULT_CSS = "ConsoleView { height: 1fr; min-height: 5; border: round $primary; }"

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, auto_scroll=True, highlight=False)
        self.shown: list[str] = []
        self.dropped = 0
        self.matches: list[int] = []
        self.match_index = -1
        self.term = ""
        self.border_title = "console"

    @property
    def following(self) -> bool:
        return self.auto_scroll

    def follow(self, on: bool) -> None:
        self.auto_scroll = on
        if on:
            self.scroll_end(animate=False)
        self._title()

    def show(self, lines: Sequence[str], dropped: int = 0) -> None:
        """Show ``lines`` (the job's whole kept console); only new lines are written."""
        lines = list(lines)
        if dropped == self.dropped and lines[: len(self.shown)] == self.shown:
            new = lines[len(self.shown) :]
        else:  # older lines were dropped (or another job): start over
            self.clear()
            self.shown = []
            new = [f"… {dropped} earlier lines dropped"] if dropped else []
            new += lines
            self.dropped = dropped
        if new:
            self.write_lines(new)
        self.shown = lines
        if self.term:
            self._find(self.term, keep=True)

    def reset(self) -> None:
        self.clear()
        self.shown, self.dropped, self.matches, self.match_index, self.term = [], 0, [], -1, ""
        self._title()

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
        line = self.matches[self.match_index]
        self.scroll_to(y=max(0, line - self.size.height // 2), animate=False)
        self._title()

    def _title(self) -> None:
        parts = ["console", "follow" if self.auto_scroll else "paused"]
        if self.term:
            found = f"{self.match_index + 1}/{len(self.matches)}" if self.matches else "none"
            parts.append(f"/{self.term}: {found}")
        self.border_title = " · ".join(parts)
