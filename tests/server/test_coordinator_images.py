"""Job images as the server sends them: 8-bit pixels, shrunk on request, valid PNG files."""

from __future__ import annotations

import struct
import zlib

import numpy
import pytest

from forge_server.coordinator import CoordinatorError
from forge_server.coordinator._images import image_pixels, png_bytes


def decode_png(data: bytes) -> tuple[int, int, int, bytes]:
    """Width, height, colour type and the filtered rows, checking every chunk's CRC."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    offset, chunks = 8, {}
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        kind = data[offset + 4 : offset + 8]
        body = data[offset + 8 : offset + 8 + length]
        (crc,) = struct.unpack(">I", data[offset + 8 + length : offset + 12 + length])
        assert crc == zlib.crc32(kind + body), f"bad CRC in {kind!r}"
        chunks[kind] = body
        offset += 12 + length
    width, height, depth, colour = struct.unpack(">IIBB", chunks[b"IHDR"][:10])
    assert depth == 8 and b"IEND" in chunks
    return width, height, colour, zlib.decompress(chunks[b"IDAT"])


def test_pixels_are_uint8_with_a_channel_axis() -> None:
    floats = numpy.array([[0.0, 0.5], [1.0, 7.0]], dtype=numpy.float32)
    pixels = image_pixels(floats)
    assert pixels.dtype == numpy.uint8 and pixels.shape == (2, 2, 1)
    assert pixels[:, :, 0].tolist() == [[0, 128], [255, 255]]
    assert image_pixels(numpy.array([[True, False]]))[0, :, 0].tolist() == [255, 0]


def test_max_side_shrinks_by_keeping_every_nth_pixel() -> None:
    big = numpy.arange(100 * 60 * 3, dtype=numpy.uint8).reshape(100, 60, 3)
    small = image_pixels(big, max_side=10)
    assert small.shape == (10, 6, 3)
    assert (small[1, 1] == big[10, 10]).all()


def test_png_round_trip() -> None:
    rgb = numpy.zeros((3, 2, 3), dtype=numpy.uint8)
    rgb[0, 0] = (255, 0, 0)
    width, height, colour, rows = decode_png(png_bytes(image_pixels(rgb)))
    assert (width, height, colour) == (2, 3, 2)
    assert rows == b"".join(b"\x00" + row.tobytes() for row in rgb)
    _, _, grey_colour, _ = decode_png(png_bytes(image_pixels(numpy.zeros((2, 2)))))
    _, _, rgba_colour, _ = decode_png(png_bytes(image_pixels(numpy.zeros((2, 2, 4)))))
    assert (grey_colour, rgba_colour) == (0, 6)


def test_non_images_are_refused_with_the_shape() -> None:
    with pytest.raises(CoordinatorError, match=r"not an image: shape \[5\]"):
        image_pixels(numpy.zeros(5))
    with pytest.raises(CoordinatorError, match="H×W"):
        image_pixels(numpy.zeros((2, 2, 2)))
