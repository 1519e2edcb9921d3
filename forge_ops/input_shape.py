"""The input shape of an architecture: the one rule for every reader and writer of it.

A shape is a non-empty list of positive integer sizes, e.g. ``[1, 3, 32, 32]`` (batch, channels,
height, width); ``bool`` is not a size. Typed as text (the TUI's prompt, ``forge import
--input-shape``) the sizes are separated by commas, ``x`` or ``×``: ``"1, 3, 32, 32"``,
``"1x3x32x32"`` and ``"1×3×32×32"`` are the same shape. Standard library only, so the terminal
client can import it without torch.
"""

from __future__ import annotations

__all__ = ["INPUT_SHAPE_RULE", "InputShapeError", "is_input_shape", "parse_input_shape"]

INPUT_SHAPE_RULE = "positive integers separated by commas, e.g. 1,3,32,32"
"""What a typed shape must look like, for error messages and prompts."""


class InputShapeError(ValueError):
    """Text that is not an input shape; the message says what one looks like."""


def is_input_shape(value: object) -> bool:
    """Whether ``value`` is a stored input shape: a non-empty list or tuple of positive ints."""
    return (
        isinstance(value, list | tuple)
        and bool(value)
        and all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in value)
    )


def parse_input_shape(text: str) -> list[int]:
    """``"1, 3, 32x32"`` -> ``[1, 3, 32, 32]``; InputShapeError for anything else (an empty
    text included: callers that allow "no shape" check for it first)."""
    parts = [p for p in text.replace("×", ",").replace("x", ",").split(",") if p.strip()]
    try:
        shape = [int(part) for part in parts]
    except ValueError:
        shape = []
    if not is_input_shape(shape):
        raise InputShapeError(f"input shape must be {INPUT_SHAPE_RULE} (got {text!r})")
    return shape
