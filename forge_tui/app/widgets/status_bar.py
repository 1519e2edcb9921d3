"""The always-visible top bar: project, connection state and who is online."""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.widgets import Static

from forge_tui.app._link import LinkState
from forge_tui.app._presence import PALETTE, Peer, initials

STATE_LOOK = {
    LinkState.CONNECTED: ("●", "green", "connected"),
    LinkState.CONNECTING: ("◌", "yellow", "connecting"),
    LinkState.RECONNECTING: ("◌", "yellow", "reconnecting"),
    LinkState.OFFLINE: ("○", "red", "offline"),
}


class ConnectionState(Static):
    """Glyph + word + colour, so the state reads without colour too."""

    DEFAULT_CSS = "ConnectionState { width: auto; padding: 0 1; }"
    state: reactive[LinkState] = reactive(LinkState.CONNECTING)
    detail: reactive[str] = reactive("")

    def render(self) -> Text:
        glyph, colour, word = STATE_LOOK[self.state]
        text = Text.assemble((f"{glyph} {word}", colour))
        if self.detail and self.state is not LinkState.CONNECTED:
            text.append(f" ({self.detail})", style="dim")
        return text

    def show(self, state: LinkState, detail: str) -> None:
        """A link's state and why it is in it (the last connection error, say)."""
        self.state = state
        self.detail = detail

    def watch_state(self, state: LinkState) -> None:
        for other in LinkState:
            self.set_class(other is state, f"-{other.value}")


class PresenceBar(Static):
    DEFAULT_CSS = "PresenceBar { width: 1fr; padding: 0 1; content-align: right middle; }"

    def show(self, me: str, my_colour: int, peers: list[Peer], my_label: str | None = None) -> None:
        """``me``: one's account (its initials mark one); ``my_label`` adds a display name."""
        text = Text()
        text.append(f" {initials(me)} ", style=f"bold black on {PALETTE[my_colour]}")
        text.append(f" {my_label or me} (you)")
        for peer in peers:
            text.append("  ")
            text.append(f" {peer.initials} ", style=f"bold black on {PALETTE[peer.colour]}")
            text.append(f" {peer.label}")
        self.update(text)
