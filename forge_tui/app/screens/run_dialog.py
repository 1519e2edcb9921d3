"""Ctrl+T: run (or restart) with options — recompute everything, which executor, GPUs.

The dialog answers a :class:`RunOptions` (or None when cancelled); the editors and the monitor
send it with their run or restart request, and the server's coordinator applies it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Input, Label, RadioButton, RadioSet

EXECUTORS = ("ray", "local")


@dataclass(frozen=True)
class RunOptions:
    """``executor`` None: the server's default for a run, the one it ran on for a restart;
    ``gpus`` None: each node's own setting."""

    executor: str | None = None
    recompute: bool = False
    gpus: float | None = None


def parse_gpus(text: str) -> float | None:
    """``""`` -> None; a number of GPUs, 0 or more (``0.5`` shares one); ValueError else."""
    if not text.strip():
        return None
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value < math.inf:
        raise ValueError("GPUs: a number, 0 or more (e.g. 1, or 0.5 to share one); empty "
                         "keeps each node's setting")
    return value


class RunDialog(ModalScreen[RunOptions | None]):
    """Tab moves between the choices, Space ticks, Enter runs, Escape cancels. A restart
    offers only the executor: it recomputes the job and what depends on it, as it ran."""

    DEFAULT_CSS = """
    RunDialog { align: center middle; }
    RunDialog > Vertical {
        width: 64; max-width: 95%; height: auto; max-height: 95%;
        border: round $accent; background: $panel; padding: 0 1;
    }
    RunDialog RadioSet { width: 100%; height: auto; layout: horizontal; }
    RunDialog RadioSet > RadioButton { width: auto; margin-right: 3; }
    RunDialog Checkbox { width: 100%; }
    RunDialog #run-error { color: $error; width: 100%; height: auto; }
    RunDialog .hint { color: $text-muted; width: 100%; height: auto; }
    RunDialog Horizontal { height: auto; align-horizontal: right; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel"),
        Binding("ctrl+s", "submit", "Run", show=False),
    ]

    def __init__(self, title: str = "Run with options", *, restart: bool = False,
                 ran_on: str | None = None) -> None:
        super().__init__()
        self.title_text = title
        self.restart = restart
        self.ran_on = ran_on

    def compose(self) -> ComposeResult:
        default = (f"as it ran ({self.ran_on})" if self.ran_on else "as it ran") \
            if self.restart else "server default"
        with Vertical():
            yield Label(self.title_text)
            if not self.restart:
                yield Checkbox("Recompute everything (ignore cached results)", id="recompute")
            yield Label("Executor", classes="hint")
            with RadioSet(id="executor"):
                yield RadioButton(default, value=True, id="executor-default")
                for name in EXECUTORS:
                    yield RadioButton(name, id=f"executor-{name}")
            if not self.restart:
                yield Label("GPUs for each job that runs a network (an Architecture "
                            "reference or a Model input); empty: each node's setting",
                            classes="hint")
                yield Input(placeholder="e.g. 1, or 0.5 to share one", id="gpus")
            yield Label("", id="run-error")
            with Horizontal():
                yield Button("Restart" if self.restart else "Run", variant="primary",
                             id="run")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        first = self.query("#recompute") or self.query("#executor")
        first.first().focus()

    def options(self) -> RunOptions:
        """What is chosen now; ValueError (with the message to show) for a bad GPU count."""
        pressed = self.query_one("#executor", RadioSet).pressed_button
        chosen = (pressed.id or "").removeprefix("executor-") if pressed else "default"
        executor = chosen if chosen in EXECUTORS else None
        if self.restart:
            return RunOptions(executor=executor)
        return RunOptions(
            executor=executor,
            recompute=self.query_one("#recompute", Checkbox).value,
            gpus=parse_gpus(self.query_one("#gpus", Input).value),
        )

    def action_submit(self) -> None:
        try:
            options = self.options()
        except ValueError as exc:
            self.query_one("#run-error", Label).update(str(exc))
            return
        self.dismiss(options)

    def action_cancel(self) -> None:
        self.dismiss(None)

    @on(Input.Submitted)
    def _submitted(self) -> None:
        self.action_submit()

    @on(Input.Changed, "#gpus")
    def _check_gpus(self, event: Input.Changed) -> None:
        try:
            parse_gpus(event.value)
        except ValueError as exc:
            self.query_one("#run-error", Label).update(str(exc))
        else:
            self.query_one("#run-error", Label).update("")

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "run":
            self.action_submit()
        else:
            self.action_cancel()


def restart_note(
    name: str | None, ran_on: str | None, record: Mapping[str, Any], asked: str | None
) -> str:
    """What the monitor says after a restart request: on which executor it runs, and why
    that is not the one the execution ran on when the server chose another."""
    now = record.get("executor")
    text = f"Restarting {name} and what depends on it"
    if now:
        text += f" on {now}"
    if ran_on and now and now != ran_on and not asked:
        text += (f" (it ran on {ran_on}, which this server starts only when asked; "
                 "Ctrl+T picks the executor)")
    return text
