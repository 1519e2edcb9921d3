"""The half-block image renderer on its own: two pixels per cell, fitted, aspect kept."""

from __future__ import annotations

import numpy
import pytest
from rich.style import Style
from rich.text import Text

from forge_tui.render.halfblock import UPPER_HALF, half_block

RED, GREEN, BLUE, BLACK = (255, 0, 0), (0, 255, 0), (0, 0, 255), (0, 0, 0)


def style_at(text: Text, offset: int) -> Style:
    return next(s.style for s in text.spans if s.start <= offset < s.end)  # type: ignore[misc]


def test_each_cell_holds_an_upper_and_a_lower_pixel() -> None:
    pixels = numpy.zeros((2, 2, 3), dtype=numpy.uint8)
    pixels[0, 0], pixels[1, 0], pixels[0, 1], pixels[1, 1] = RED, GREEN, BLUE, RED
    picture = half_block(pixels, 10, 10)
    assert picture.rows == (((RED, GREEN), (BLUE, RED)),)
    assert picture.text() == UPPER_HALF * 2
    style = style_at(picture.to_rich(), 0)
    assert style.color and style.color.triplet == RED
    assert style.bgcolor and style.bgcolor.triplet == GREEN


def test_odd_height_leaves_the_last_lower_half_empty() -> None:
    picture = half_block(numpy.full((3, 1), 255, dtype=numpy.uint8), 5, 5)
    white = (255, 255, 255)
    assert picture.rows == (((white, white),), ((white, None),))
    assert style_at(picture.to_rich(), 2).bgcolor is None  # row 2 starts after "▀\n"


def test_large_images_shrink_to_fit_keeping_their_aspect() -> None:
    wide = numpy.zeros((40, 200, 3), dtype=numpy.uint8)
    picture = half_block(wide, 50, 10)
    assert picture.width == 50 and picture.height == 5  # 200×40 → 50×10 pixels
    tall = numpy.zeros((200, 20), dtype=numpy.uint8)
    picture = half_block(tall, 50, 10)
    assert picture.height == 10 and picture.width == 2  # 20 rows of pixels at most
    small = numpy.zeros((4, 4, 3), dtype=numpy.uint8)
    assert half_block(small, 80, 20).width == 4  # never enlarged


def test_floats_grey_and_alpha_become_rgb() -> None:
    floats = numpy.array([[[1.0, 0.0, 0.0]], [[0.0, 2.0, -1.0]]], dtype=numpy.float32)
    assert half_block(floats, 4, 4).rows == (((RED, GREEN),),)  # clipped to [0, 1]
    grey = numpy.array([[10], [200]], dtype=numpy.uint8)
    assert half_block(grey, 4, 4).rows == ((((10, 10, 10), (200, 200, 200)),),)
    rgba = numpy.array([[[255, 0, 0, 255]], [[0, 0, 255, 0]]], dtype=numpy.uint8)
    assert half_block(rgba, 4, 4).rows == (((RED, BLACK),),)  # transparent over black


def test_bad_shapes_are_refused_clearly() -> None:
    with pytest.raises(ValueError, match="H×W"):
        half_block(numpy.zeros((2, 2, 2)), 4, 4)
    with pytest.raises(ValueError, match="one cell"):
        half_block(numpy.zeros((2, 2)), 0, 4)
    assert half_block(numpy.zeros((0, 3, 3)), 4, 4).rows == ()
