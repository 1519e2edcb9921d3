"""lib0 decoding, the one reader of the relay: y-websocket frames and Yjs v1 updates.

lib0 writes unsigned integers as variable-length numbers (7 bits per byte, little end first),
signed ones with a sign bit in the first byte, and bytes or strings as a var-uint length followed
by the data (strings as UTF-8). Two readings share every primitive:

- :class:`Lib0Decoder` reads as yrs does (64-bit integers, up to 10 bytes, any encoding): it walks
  Yjs updates before yrs sees them (:mod:`forge_server.relay.text_integrity`);
- :class:`StrictLib0Decoder` reads y-websocket frames as lib0 in JavaScript does: a var-uint is
  canonical (no trailing zero byte), at most 8 bytes and at most 2**53 - 1.

Every failure raises the ``error`` class the caller names (a ``ValueError``), never an
``IndexError``, so callers can refuse bad input without guessing.
"""

from __future__ import annotations

__all__ = ["MAX_VAR_UINT", "Lib0Decoder", "StrictLib0Decoder"]

# lib0 (JavaScript) reads var-uints into doubles and refuses anything above 2**53 - 1.
MAX_VAR_UINT = 2**53 - 1
_MAX_STRICT_VAR_UINT_BYTES = 8  # ceil(53 / 7)
_MAX_VAR_INT_BYTES = 10  # a 64-bit integer


class Lib0Decoder:
    """Reads lib0-encoded values from a buffer, checking every bound."""

    __slots__ = ("_data", "_error", "_pos")

    def __init__(self, data: bytes, *, error: type[ValueError] = ValueError) -> None:
        self._data = memoryview(data)
        self._pos = 0
        self._error = error

    @property
    def pos(self) -> int:
        """How many bytes were read so far."""
        return self._pos

    @property
    def remaining(self) -> int:
        return len(self._data) - self._pos

    def byte(self) -> int:
        if self._pos >= len(self._data):
            raise self._error("truncated update")
        value = self._data[self._pos]
        self._pos += 1
        return value

    def var_uint(self) -> int:
        value = 0
        for count in range(_MAX_VAR_INT_BYTES):
            byte = self.byte()
            value |= (byte & 0x7F) << (7 * count)
            if byte < 0x80:
                return value
        raise self._error("var-uint too long")

    def var_int(self) -> None:
        """Skip a signed var-int (lib0 ``writeVarInt``); its value is never needed."""
        byte = self.byte()
        for _ in range(_MAX_VAR_INT_BYTES):
            if byte < 0x80:
                return
            byte = self.byte()
        raise self._error("var-int too long")

    def raw(self, length: int) -> bytes:
        """The next ``length`` bytes."""
        if length > self.remaining:
            raise self._error("length beyond the end of the update")
        start = self._pos
        self._pos += length
        return bytes(self._data[start : self._pos])

    def var_bytes(self) -> bytes:
        return self.raw(self.var_uint())

    def var_string(self) -> str:
        data = self.var_bytes()
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise self._error(f"string is not UTF-8: {exc.reason}") from exc

    def any(self, depth: int = 0) -> None:
        """Skip one lib0 ``writeAny`` value."""
        if depth > 100:
            raise self._error("value nested too deeply")
        tag = self.byte()
        if tag in (127, 126, 121, 120):  # undefined, null, false, true
            return
        if tag == 125:
            self.var_int()
        elif tag == 124:
            self.raw(4)
        elif tag in (123, 122):
            self.raw(8)
        elif tag in (119, 116):  # string, binary
            self.var_bytes()
        elif tag == 118:  # object
            for _ in range(self.var_uint()):
                self.var_bytes()
                self.any(depth + 1)
        elif tag == 117:  # array
            for _ in range(self.var_uint()):
                self.any(depth + 1)
        else:
            raise self._error(f"unknown value tag {tag}")

    def end(self) -> None:
        """Raise unless every byte was read."""
        if self.remaining:
            raise self._error(f"{self.remaining} unexpected trailing bytes")


class StrictLib0Decoder(Lib0Decoder):
    """:class:`Lib0Decoder` whose var-uints are what lib0 in JavaScript accepts and writes.

    Its errors name frames' parts (a frame's reasons reach clients in close reasons), where the
    lenient reader's name the update being walked."""

    __slots__ = ()

    def byte(self) -> int:
        if self._pos >= len(self._data):
            raise self._error("truncated frame")
        return super().byte()

    def var_bytes(self) -> bytes:
        length = self.var_uint()
        if length > self.remaining:
            raise self._error(f"var-bytes length {length} exceeds the {self.remaining} left")
        return self.raw(length)

    def var_string(self) -> str:
        data = self.var_bytes()
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise self._error(f"var-string is not valid UTF-8: {exc.reason}") from exc

    def var_uint(self) -> int:
        value = 0
        shift = 0
        for count in range(_MAX_STRICT_VAR_UINT_BYTES):
            if self._pos >= len(self._data):
                raise self._error("truncated var-uint")
            byte = self._data[self._pos]
            self._pos += 1
            value |= (byte & 0x7F) << shift
            if byte < 0x80:
                if byte == 0 and count > 0:
                    raise self._error("non-canonical var-uint (trailing zero byte)")
                if value > MAX_VAR_UINT:
                    raise self._error("var-uint larger than 2**53-1")
                return value
            shift += 7
        raise self._error(f"var-uint longer than {_MAX_STRICT_VAR_UINT_BYTES} bytes")
