"""Presence read from awareness: who is online, their colour, what they look at and select.

Local awareness state written by this client::

    {"user": {"name": str, "colour": int}, "view": {"kind": str, "id": str} | None,
     "selection": str | None, "cursor": {"entry": str, "line": int, "column": int} | None}
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


@dataclass(frozen=True)
class Peer:
    client_id: int
    name: str
    colour: int
    view: tuple[str, str] | None
    selection: str | None
    cursor: tuple[str, int, int] | None
    anchor: tuple[int, int] | None = None  # the other end of their selection in the code

    @property
    def initials(self) -> str:
        return initials(self.name)


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
            )
        )
    return sorted(peers, key=lambda p: (p.name, p.client_id))
