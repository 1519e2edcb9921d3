"""Presence read from awareness: who is online, their colour, what they look at and select.

Local awareness state written by this client::

    {"user": {"name": str, "colour": int, "display"?: str},
     "view": {"kind": str, "id": str} | None, "selection": str | None,
     "cursor": {"entry": str, "line": int, "column": int} | None}

On a server with accounts the relay sets ``user.name`` to the sender's account, so a name
shown here is who that person is; ``user.display`` is their own name for themselves, shown
beside it.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any

# Colour slots 0-7, named in the 16-colour palette so they survive plain terminals.
PALETTE = ("magenta", "cyan", "yellow", "green", "red", "blue", "bright_magenta", "bright_cyan")


def colour_for(name: str) -> int:
    """A stable colour slot per user name."""
    return zlib.crc32(name.encode()) % len(PALETTE)


def initials(name: str) -> str:
    parts = [p for p in name.replace("_", " ").replace(".", " ").replace("-", " ").split() if p]
    if not parts:
        return "?"
    if len(parts) == 1:
        return parts[0][:2].upper()
    return (parts[0][0] + parts[-1][0]).upper()


MAX_DISPLAY_CHARS = 40  # a display name beyond it is cut: it decorates, the account identifies


def person_label(name: str, display: str | None) -> str:
    """``name`` (the account), with a display name beside it when it says something more."""
    if not display or display == name:
        return name
    if len(display) > MAX_DISPLAY_CHARS:
        display = display[: MAX_DISPLAY_CHARS - 1] + "…"
    return f"{name} · {display}"


def _printable(value: object) -> str | None:
    """A display name on one line of printable characters, or None."""
    if not isinstance(value, str):
        return None
    text = " ".join("".join(c for c in value if c.isprintable() or c.isspace()).split())
    return text or None


@dataclass(frozen=True)
class Peer:
    client_id: int
    name: str
    colour: int
    view: tuple[str, str] | None
    selection: str | None
    cursor: tuple[str, int, int] | None
    anchor: tuple[int, int] | None = None  # the other end of their selection in the code
    display: str | None = None  # their own name for themselves, shown beside the account

    @property
    def initials(self) -> str:
        return initials(self.name)

    @property
    def label(self) -> str:
        return person_label(self.name, self.display)


def read_peers(states: dict[int, dict[str, Any]], own_id: int | None) -> list[Peer]:
    """Everyone with a user in their awareness state, oneself excluded, ordered by name."""
    peers = []
    for client_id, state in states.items():
        if client_id == own_id or not isinstance(state, dict):
            continue
        user = state.get("user")
        if not isinstance(user, dict) or not isinstance(user.get("name"), str):
            continue
        colour = user.get("colour")
        display = user.get("display")
        view = state.get("view")
        cursor = state.get("cursor")
        anchor = cursor.get("anchor") if isinstance(cursor, dict) else None
        peers.append(
            Peer(
                client_id=client_id,
                name=user["name"],
                colour=colour if isinstance(colour, int) else colour_for(user["name"]),
                view=(str(view.get("kind")), str(view.get("id")))
                if isinstance(view, dict)
                else None,
                selection=state.get("selection")
                if isinstance(state.get("selection"), str)
                else None,
                cursor=(
                    str(cursor.get("entry")),
                    int(cursor.get("line", 0)),
                    int(cursor.get("column", 0)),
                )
                if isinstance(cursor, dict)
                else None,
                anchor=(int(anchor[0]), int(anchor[1]))
                if isinstance(anchor, list) and len(anchor) == 2
                else None,
                display=_printable(display),
            )
        )
    return sorted(peers, key=lambda p: (p.name, p.client_id))
