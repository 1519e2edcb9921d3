"""A one-line switcher between panes that do not fit side by side (the monitor's console, plot,
code and outputs at 80×24): numbered labels, the active one highlighted, a note at the right.

Cheaper than ``TabbedContent`` (one row, no underline row) and it leaves the panes where they
are, so that a wide screen can show them side by side without moving widgets around.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rich.text import Text
from textual import events
from textual.message import Message
from textual.reactive import reactive
from textual.widget import Widget


class PaneBar(Widget):
    """``panes``: (name, label) in order; number keys are bound by the screen that owns it."""

    DEFAULT_CSS = """
    PaneBar { height: 1; background: $panel; }
    """

    active: reactive[str] = reactive("", layout=False)
    focused: reactive[bool] = reactive(False)
    """Whether the active pane holds the keyboard focus (its label is marked)."""
    note: reactive[Text | str] = reactive("")

    @dataclass
    class Chosen(Message):
        """A pane's label was clicked."""

        bar: PaneBar
        pane: str

    def __init__(self, panes: Sequence[tuple[str, str]], *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.panes = list(panes)
        self.set_reactive(PaneBar.active, self.panes[0][0])
        self._spans: list[tuple[int, int, str]] = []

    def render(self) -> Text:
        text = Text(no_wrap=True, overflow="ellipsis")
        self._spans = []
        for number, (name, label) in enumerate(self.panes, 1):
            start = len(text)
            if name == self.active:
                marker = "▸" if self.focused else " "
                text.append(f"{marker}{number} {label} ", style="bold reverse")
            else:
                text.append(f" {number}", style="bold")
                text.append(f" {label} ", style="dim")
            self._spans.append((start, len(text), name))
        note = self.note if isinstance(self.note, Text) else Text(str(self.note))
        room = self.size.width - len(text) - 1
        if note.plain and room > 8:
            note = note.copy()
            note.truncate(room, overflow="ellipsis")
            text.append(" " * max(1, room - len(note) + 1))
            text.append_text(note)
        return text

    def on_click(self, event: events.Click) -> None:
        for start, end, name in self._spans:
            if start <= event.x < end:
                self.post_message(self.Chosen(self, name))
                return
