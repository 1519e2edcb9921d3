"""Small modal dialogs: a fuzzy picker, a validated prompt, a page of text and a confirmation."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Input, Label, OptionList, Static
from textual.widgets.option_list import Option


def if_chosen(action: Callable[[Any], object]) -> Callable[[Any], None]:
    """A dismiss callback that runs ``action`` unless the dialog was cancelled (None)."""

    def callback(value: Any) -> None:
        if value is not None:
            action(value)

    return callback


def fuzzy_score(query: str, text: str) -> int | None:
    """Higher is better; None when ``query`` is not a subsequence of ``text``."""
    if not query:
        return 0
    q, t = query.lower(), text.lower()
    if q in t:
        return 1000 - t.index(q) - len(t)
    pos, score, last = 0, 0, -2
    for ch in q:
        pos = t.find(ch, pos)
        if pos < 0:
            return None
        score += 5 if pos == last + 1 else 1
        last, pos = pos, pos + 1
    return score - len(t)


class FuzzyPicker(ModalScreen[Any]):
    """Type to filter, arrows to move, Enter to choose, Escape to cancel."""

    DEFAULT_CSS = """
    FuzzyPicker { align: center middle; }
    FuzzyPicker > Vertical {
        width: 60; max-width: 95%; height: auto; max-height: 80%;
        border: round $accent; background: $panel; padding: 0 1;
    }
    FuzzyPicker OptionList { height: auto; max-height: 14; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel"),
        Binding("down", "cursor(1)", "Next", show=False),
        Binding("up", "cursor(-1)", "Previous", show=False),
    ]

    def __init__(self, title: str, options: Sequence[tuple[str, Any]]) -> None:
        super().__init__()
        self.title_text = title
        self.options = list(options)
        self.shown: list[tuple[str, Any]] = list(options)

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(self.title_text, id="picker-title")
            yield Input(placeholder="type to filter", id="picker-input")
            yield OptionList(*[Option(label) for label, _ in self.options], id="picker-list")

    def on_mount(self) -> None:
        self._refill("")
        self.query_one(Input).focus()

    def _refill(self, query: str) -> None:
        scored = [(fuzzy_score(query, label), i) for i, (label, _) in enumerate(self.options)]
        ranked = sorted((s, i) for s, i in scored if s is not None)
        order = sorted(ranked, key=lambda si: (-si[0], si[1])) if query else ranked
        self.shown = [self.options[i] for _, i in order]
        option_list = self.query_one(OptionList)
        option_list.clear_options()
        option_list.add_options([Option(label) for label, _ in self.shown])
        if self.shown:
            option_list.highlighted = 0

    @on(Input.Changed)
    def _filter(self, event: Input.Changed) -> None:
        self._refill(event.value)

    def action_cursor(self, step: int) -> None:
        option_list = self.query_one(OptionList)
        if not self.shown:
            return
        current = option_list.highlighted or 0
        option_list.highlighted = max(0, min(len(self.shown) - 1, current + step))

    @on(Input.Submitted)
    def _submit(self) -> None:
        highlighted = self.query_one(OptionList).highlighted
        if self.shown and highlighted is not None:
            self.dismiss(self.shown[highlighted][1])

    @on(OptionList.OptionSelected)
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(self.shown[event.option_index][1])

    def action_cancel(self) -> None:
        self.dismiss(None)


class Prompt(ModalScreen[str | None]):
    """One line of input with live validation: ``validate`` returns an error or None."""

    DEFAULT_CSS = """
    Prompt { align: center middle; }
    Prompt > Vertical {
        width: 64; max-width: 95%; height: auto;
        border: round $accent; background: $panel; padding: 0 1;
    }
    Prompt #prompt-error { color: $error; width: 100%; height: auto; }
    Prompt #prompt-help { color: $text-muted; width: 100%; height: auto; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(
        self,
        title: str,
        value: str = "",
        validate: Callable[[str], str | None] | None = None,
        help_text: str = "",
    ) -> None:
        super().__init__()
        self.title_text = title
        self.value = value
        self.validate = validate or (lambda text: None if text.strip() else "enter a value")
        self.help_text = help_text

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(self.title_text)
            yield Input(value=self.value, id="prompt-input")
            yield Label(self.help_text, id="prompt-help")
            yield Label("", id="prompt-error")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    @on(Input.Changed)
    def _check(self, event: Input.Changed) -> None:
        error = self.validate(event.value)
        self.query_one("#prompt-error", Label).update(error or "")

    @on(Input.Submitted)
    def _submit(self, event: Input.Submitted) -> None:
        error = self.validate(event.value)
        if error:
            self.query_one("#prompt-error", Label).update(error)
            return
        self.dismiss(event.value)

    def action_cancel(self) -> None:
        self.dismiss(None)


class TextScreen(ModalScreen[None]):
    """A scrolling page of text (artifact summaries, commit diffs); escape closes it."""

    DEFAULT_CSS = """
    TextScreen { align: center middle; }
    TextScreen > VerticalScroll {
        width: 90%; height: 80%; border: round $accent; background: $panel; padding: 0 1;
    }
    """
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,q", "dismiss", "Close")]

    def __init__(self, title: str, body: Text | str) -> None:
        super().__init__()
        self.title_text = title
        self.body = body

    def compose(self) -> ComposeResult:
        with VerticalScroll() as scroll:
            scroll.border_title = self.title_text
            yield Static(self.body, id="text-body")


class Confirm(ModalScreen[bool | None]):
    """A question with what saying yes will do: ``y`` or Enter confirms, ``n`` or Escape does
    not (the dialog answers True, or None so that :func:`if_chosen` skips the action)."""

    DEFAULT_CSS = """
    Confirm { align: center middle; }
    Confirm > VerticalScroll {
        width: 90%; max-height: 80%; height: auto;
        border: round $warning; background: $panel; padding: 0 1;
    }
    Confirm #confirm-keys { color: $text-muted; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y,enter", "answer(True)", "Yes"),
        Binding("n,escape", "answer(False)", "No"),
    ]

    def __init__(self, question: str, body: Text | str = "") -> None:
        super().__init__()
        self.question = question
        self.body = body

    def compose(self) -> ComposeResult:
        with VerticalScroll() as scroll:
            scroll.border_title = self.question
            if self.body:
                yield Static(self.body, id="confirm-body")
            yield Label("y / Enter: yes    n / Escape: no", id="confirm-keys")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(True if yes else None)
