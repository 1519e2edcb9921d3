"""Job images as pixels: scaled to 8-bit, shrunk on request, encoded as PNG without Pillow.

Operation code calls ``image(name, value)``; the worker stores the value as a plain zarr array
(H×W, H×W×3 or H×W×4; uint8, or float in [0, 1]), so the server can read it without unpickling
anything. These helpers turn such an array into what a client draws.
"""

from __future__ import annotations

import math
import struct
import zlib
from typing import Any

from ._errors import CoordinatorError

_COLOUR_TYPES = {1: 0, 3: 2, 4: 6}  # PNG colour type by channel count: grey, RGB, RGBA


def image_pixels(array: Any, max_side: int | None = None) -> Any:
    """``array`` as a uint8 H×W×C array (C = 1, 3 or 4), at most ``max_side`` pixels a side.

    Floats are taken as [0, 1] (clipped); booleans as black/white. Shrinking keeps every n-th
    pixel (nearest neighbour), which is what a terminal of a few dozen cells can show anyway.
    """
    import numpy

    pixels = numpy.asarray(array)
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    if pixels.ndim != 3 or pixels.shape[2] not in _COLOUR_TYPES or 0 in pixels.shape:
        raise CoordinatorError(
            f"this artifact is not an image: shape {list(numpy.shape(array))}; images are "
            "H×W, H×W×3 or H×W×4 arrays (see forge_ops.runtime.image)"
        )
    if max_side is not None:
        step = max(1, math.ceil(max(pixels.shape[:2]) / max_side))
        pixels = pixels[::step, ::step]
    if pixels.dtype == numpy.bool_:
        pixels = pixels.astype(numpy.uint8) * 255
    elif pixels.dtype.kind == "f":
        pixels = numpy.nan_to_num(pixels.astype(numpy.float32), nan=0.0)
        pixels = (numpy.clip(pixels, 0.0, 1.0) * 255 + 0.5).astype(numpy.uint8)
    elif pixels.dtype != numpy.uint8:
        pixels = numpy.clip(pixels, 0, 255).astype(numpy.uint8)
    return numpy.ascontiguousarray(pixels)


def png_bytes(pixels: Any) -> bytes:
    """A PNG file of a uint8 H×W×C array from :func:`image_pixels`."""
    height, width, channels = pixels.shape
    rows = b"".join(b"\x00" + pixels[y].tobytes() for y in range(height))  # filter: none

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, _COLOUR_TYPES[channels], 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows, 6))
        + chunk(b"IEND", b"")
    )
