"""Key bindings shared by several screens, defined once so that they cannot drift apart."""

from __future__ import annotations

from textual.binding import Binding, BindingType

__all__ = ["MOVE_BINDINGS"]

MOVE_BINDINGS: tuple[BindingType, ...] = (
    Binding("up,k", "move('up')", "Up", show=False),
    Binding("down,j", "move('down')", "Down", show=False),
    Binding("left,h", "move('left')", "Left", show=False),
    Binding("right,l", "move('right')", "Right", show=False),
)
"""Arrows and hjkl select the nearest box in that direction (``action_move(direction)``)."""
