"""The help screen (every key, generated from the bindings) and the error screen."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Footer, Label, Static


def _rows(bindings: list[BindingType]) -> list[tuple[str, str]]:
    rows = []
    for b in bindings:
        if isinstance(b, Binding):
            rows.append((b.key.replace(",", " / "), b.description or b.action))
        elif isinstance(b, tuple):
            rows.append((b[0], b[2] if len(b) > 2 else b[1]))
    return rows


class HelpScreen(ModalScreen[None]):
    """Every key, by screen: ``sections`` pairs a title with that screen's bindings."""

    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll {
        width: 76; max-width: 100%; height: 90%; border: round $accent; background: $panel;
    }
    """
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,q,f1", "dismiss", "Close")]

    def __init__(self, sections: Sequence[tuple[str, Iterable[BindingType]]]) -> None:
        super().__init__()
        self.sections = sections

    def compose(self) -> ComposeResult:
        table = Table(box=None, show_header=False, expand=True, padding=(0, 1))
        table.add_column(style="bold yellow", no_wrap=True)
        table.add_column()
        for title, bindings in self.sections:
            table.add_row(Text(title, style="bold underline"), "")
            for key, description in _rows(list(bindings)):
                table.add_row(key, description)
        table.add_row(Text("Code editor", style="bold underline"), "")
        table.add_row("typing", "edits are shared live; the panel shows the parsed interface")
        table.add_row("escape", "leave the editor (focus moves on)")
        with VerticalScroll():
            yield Static(table)


class ErrorScreen(Screen[str]):
    """Refused token or unreachable server: say what happened and what to do."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("r", "retry", "Retry"),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(self, message: str, refused: bool = False) -> None:
        super().__init__()
        self.message = message
        self.refused = refused

    def compose(self) -> ComposeResult:
        title = "Access refused" if self.refused else "Cannot reach the server"
        with Vertical(id="error-box"):
            yield Label(title, id="error-title")
            yield Static(self.message, id="error-message")
            yield Static(
                "r: try again   q: quit"
                + ("\nforge login URL TOKEN stores a new token." if self.refused else ""),
                id="error-hint",
            )
        yield Footer()

    def action_retry(self) -> None:
        self.dismiss("retry")

    async def action_quit(self) -> None:
        self.app.exit(1)
