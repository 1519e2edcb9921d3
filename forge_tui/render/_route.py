"""Orthogonal routing through the channels between ranks, drawn as merged box-drawing lines.

Each channel holds horizontal tracks. Pieces of edges leaving the same output port form one net
and share a track (fan-out becomes a junction). Tracks are assigned with the constrained
left-edge algorithm: a net whose source column is another net's target column must run above it,
so two verticals never share a column.
"""

from __future__ import annotations

from dataclasses import dataclass, field

N, E, S, W = 1, 2, 4, 8

# Rounded corners keep edges distinguishable from box corners.
LINE_CHARS = {
    0: " ",
    N: "│",
    S: "│",
    N | S: "│",
    E: "─",
    W: "─",
    E | W: "─",
    N | E: "╰",
    E | S: "╭",
    S | W: "╮",
    N | W: "╯",
    N | E | S: "├",
    N | E | W: "┴",
    N | S | W: "┤",
    E | S | W: "┬",
    N | E | S | W: "┼",
}


@dataclass
class Net:
    key: tuple[str, str]
    source: int  # column where it leaves the rank above
    start_row: int  # first row of the vertical below the source
    targets: list[int] = field(default_factory=list)
    label: str = ""
    track: int = -1

    @property
    def straight(self) -> bool:
        return len(self.targets) == 1 and self.targets[0] == self.source

    @property
    def left(self) -> int:
        return min(self.source, *self.targets)

    @property
    def right(self) -> int:
        return max(self.source, *self.targets)


def assign_tracks(nets: list[Net]) -> int:
    """Give every bending net a track; returns the number of tracks the channel needs."""
    bending = [n for n in nets if not n.straight]
    by_target: dict[int, list[Net]] = {}
    for n in bending:
        for t in set(n.targets):
            by_target.setdefault(t, []).append(n)
    below: dict[int, set[int]] = {id(n): set() for n in bending}  # nets that must be above n
    for a in bending:
        for b in by_target.get(a.source, ()):
            if b is not a:
                below[id(b)].add(id(a))
    remaining = {id(n): n for n in bending}
    track = 0
    while remaining:
        ready = [n for n in remaining.values() if not (below[id(n)] & remaining.keys())]
        if not ready:  # a cycle of constraints: break it at the leftmost net
            ready = [min(remaining.values(), key=lambda n: n.left)]
        ready.sort(key=lambda n: n.left)
        last_right = None
        for n in ready:
            if last_right is None or n.left > last_right + 1:
                n.track = track
                last_right = n.right
                del remaining[id(n)]
        track += 1
    return track


class LineLayer:
    """Direction bits of the cells lines pass through (sparse: a big diagram is mostly empty);
    merged into box-drawing characters at the end."""

    def __init__(self, width: int, height: int) -> None:
        self.width = width
        self.bits: list[dict[int, int]] = [{} for _ in range(height)]

    def vline(self, col: int, top: int, bottom: int, open_top: bool, open_bottom: bool) -> None:
        if bottom < top:
            return
        bits = self.bits
        for row in range(top, bottom + 1):
            b = 0
            if row > top or open_top:
                b |= N
            if row < bottom or open_bottom:
                b |= S
            line = bits[row]
            line[col] = line.get(col, 0) | b

    def hline(self, row: int, left: int, right: int) -> None:
        line = self.bits[row]
        for col in range(left, right + 1):
            b = 0
            if col < right:
                b |= E
            if col > left:
                b |= W
            line[col] = line.get(col, 0) | b

    def draw_net(self, net: Net, channel_top: int, channel_bottom: int) -> None:
        if net.straight:
            self.vline(net.source, net.start_row, channel_bottom, True, True)
            return
        row = channel_top + 1 + net.track
        self.vline(net.source, net.start_row, row, True, False)
        self.hline(row, net.left, net.right)
        for t in set(net.targets):
            self.vline(t, row, channel_bottom, False, True)

    def write_label(
        self, chars: list[list[str]], styles: list[list[str]], net: Net, row: int
    ) -> None:
        """Put a net's label right of its vertical, only over empty cells, clipped with '…'."""
        col = net.source + 2
        line_bits, line_chars = self.bits[row], chars[row]
        width = self.width
        room = 0
        while (
            col + room < width
            and not line_bits.get(col + room)
            and line_chars[col + room] == " "
            and (col + room + 1 >= width or not line_bits.get(col + room + 1))
        ):
            room += 1
        if room <= 1:
            return
        text = net.label if len(net.label) <= room else net.label[: room - 1] + "…"
        for i, ch in enumerate(text):
            line_chars[col + i] = ch
            styles[row][col + i] = "label"

    def merge_into(self, chars: list[list[str]], styles: list[list[str]]) -> None:
        for bits_row, char_row, style_row in zip(self.bits, chars, styles, strict=True):
            for col, b in bits_row.items():
                if b and char_row[col] == " ":
                    char_row[col] = LINE_CHARS[b]
                    style_row[col] = "edge"
