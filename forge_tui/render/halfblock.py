"""Images in any colour terminal: two pixels per character cell with the upper half block.

Each cell is ``▀`` whose foreground is the upper pixel and whose background the lower one, so a
W×H image takes W columns and ⌈H/2⌉ rows. Pure (numpy arrays in, cells out); the widget turns
the cells into styled text, and Rich degrades the colours on 256- and 16-colour terminals.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

UPPER_HALF = "▀"

RGB = tuple[int, int, int]


@dataclass(frozen=True)
class HalfBlockImage:
    """Cells of a half-block picture: ``rows[y][x] = (upper, lower)``; ``lower`` is None on the
    last row of an image with an odd pixel height (the cell shows only its upper half)."""

    rows: tuple[tuple[tuple[RGB, RGB | None], ...], ...]

    @property
    def width(self) -> int:
        return len(self.rows[0]) if self.rows else 0

    @property
    def height(self) -> int:
        return len(self.rows)

    def text(self) -> str:
        """The characters alone (what a screen capture shows)."""
        return "\n".join(UPPER_HALF * len(row) for row in self.rows)

    def to_rich(self) -> Any:
        """A ``rich.text.Text`` with each cell's colours."""
        from rich.color import Color
        from rich.style import Style
        from rich.text import Text

        text = Text(no_wrap=True, overflow="crop")
        for index, row in enumerate(self.rows):
            if index:
                text.append("\n")
            for upper, lower in row:
                style = Style(
                    color=Color.from_rgb(*upper),
                    bgcolor=Color.from_rgb(*lower) if lower is not None else None,
                )
                text.append(UPPER_HALF, style)
        return text


def _rgb(pixels: Any) -> Any:
    """An H×W×3 uint8 view of an H×W, H×W×1, ×3 or ×4 array (alpha composited over black)."""
    import numpy

    array = numpy.asarray(pixels)
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3 or array.shape[2] not in (1, 3, 4):
        raise ValueError(f"an image is H×W, H×W×3 or H×W×4; got shape {list(array.shape)}")
    if array.dtype.kind == "f":
        array = (numpy.clip(numpy.nan_to_num(array), 0.0, 1.0) * 255 + 0.5).astype(numpy.uint8)
    elif array.dtype != numpy.uint8:
        array = numpy.clip(array, 0, 255).astype(numpy.uint8)
    if array.shape[2] == 1:
        return numpy.repeat(array, 3, axis=2)
    if array.shape[2] == 4:
        alpha = array[:, :, 3:4].astype(numpy.uint16)
        return (array[:, :, :3].astype(numpy.uint16) * alpha // 255).astype(numpy.uint8)
    return array


def half_block(pixels: Any, max_width: int, max_height: int) -> HalfBlockImage:
    """``pixels`` shrunk (nearest neighbour, aspect kept) to fit ``max_width`` columns and
    ``max_height`` rows of cells; never enlarged. An empty image gives no rows."""
    if max_width < 1 or max_height < 1:
        raise ValueError("the picture needs at least one cell")
    rgb = _rgb(pixels)
    height, width = rgb.shape[:2]
    if not height or not width:
        return HalfBlockImage(())
    scale = min(1.0, max_width / width, 2 * max_height / height)
    out_w = max(1, min(max_width, math.floor(width * scale)))
    out_h = max(1, min(2 * max_height, math.floor(height * scale)))
    xs = [min(width - 1, int((x + 0.5) * width / out_w)) for x in range(out_w)]
    ys = [min(height - 1, int((y + 0.5) * height / out_h)) for y in range(out_h)]
    picked = rgb[ys][:, xs].tolist()
    rows = []
    for top in range(0, out_h, 2):
        upper = picked[top]
        lower = picked[top + 1] if top + 1 < out_h else None
        rows.append(tuple(
            (tuple(upper[x]), tuple(lower[x]) if lower is not None else None)
            for x in range(out_w)
        ))
    return HalfBlockImage(tuple(rows))  # type: ignore[arg-type]
