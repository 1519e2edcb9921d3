"""Spatial selection: which box lies in a direction from the selected one."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from forge_tui.render._model import Rect

Direction = Literal["up", "down", "left", "right"]


def nearest(boxes: Mapping[str, Rect], current: str | None, direction: Direction) -> str | None:
    """The closest box whose centre lies in ``direction``; off-axis distance counts double."""
    if not boxes:
        return None
    if current is None or current not in boxes:
        return min(boxes, key=lambda k: (boxes[k].y, boxes[k].x))
    cx, cy = boxes[current].centre
    best: tuple[float, str] | None = None
    for key, rect in boxes.items():
        if key == current:
            continue
        x, y = rect.centre
        dx, dy = x - cx, y - cy
        along, across = {
            "up": (-dy, dx),
            "down": (dy, dx),
            "left": (-dx, dy),
            "right": (dx, dy),
        }[direction]
        if along <= 0:
            continue
        # rows are about twice as tall as columns are wide; weigh vertical distance up
        scale = 2.0 if direction in ("up", "down") else 1.0
        cost = along * scale + abs(across) * (2.0 if scale == 1.0 else 1.0) * 2
        if best is None or cost < best[0]:
            best = (cost, key)
    return best[1] if best else current
