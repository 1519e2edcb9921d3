"""Capture ``print`` output (stdout/stderr) of operation code, line by line, into the sink."""

from __future__ import annotations

import codecs
import io
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from ._sink import UNENCODABLE, FeedbackSink, storable_text

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer

__all__ = ["MAX_LINE_CHARS", "LineWriter", "capture_console"]

#: Longer lines are cut (with a note) so one runaway print cannot bloat the document.
MAX_LINE_CHARS = 4000


class LineWriter(io.TextIOBase):
    """A text stream that hands complete lines to ``sink.console(stream, line)``.

    A carriage return keeps only what follows it, as a terminal would show a progress bar;
    ``\\r\\n`` is a line ending. ``flush()`` hands over the unfinished line as it stands.
    Writes cost time in proportion to their length: the pending line never grows past
    ``MAX_LINE_CHARS``, only a count of what was cut from it does.
    """

    def __init__(self, sink: FeedbackSink, stream: str) -> None:
        super().__init__()
        self._sink = sink
        self._stream = stream
        self._parts: list[str] = []  # the pending line, at most MAX_LINE_CHARS in all
        self._length = 0
        self._cut = 0  # characters of the pending line dropped beyond MAX_LINE_CHARS
        # A trailing "\r" waits for the next write: before "\n" it ends the line, else it
        # rewrites it.
        self._carriage_return = False
        self._lock = threading.Lock()
        self.buffer = _ByteWriter(self)

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return "utf-8"

    @property
    def errors(self) -> str:  # type: ignore[override]
        return UNENCODABLE  # every line passes storable_text

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False

    def write(self, text: str) -> int:
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        with self._lock:
            complete = self._take(text)
        for line in complete:
            self._sink.console(self._stream, line)
        return len(text)

    def flush(self) -> None:
        with self._lock:
            self._carriage_return = False
            line = self._finish_line() if self._length or self._cut else None
        if line is not None:
            self._sink.console(self._stream, line)

    def _take(self, text: str) -> list[str]:
        """Add ``text`` to the pending line; return the lines it completes, ready to emit."""
        if self._carriage_return:
            text = "\r" + text
        held = text.rstrip("\r")
        self._carriage_return = len(held) < len(text)
        *complete, rest = held.split("\n")
        lines = []
        for piece in complete:
            self._extend(piece.rstrip("\r"))  # "\r\n" ends the line; it does not rewrite it
            lines.append(self._finish_line())
        self._extend(rest)
        return lines

    def _extend(self, segment: str) -> None:
        """Append to the pending line, which a carriage return starts afresh."""
        restart = segment.rfind("\r")
        if restart >= 0:
            segment = segment[restart + 1 :]
            self._parts.clear()
            self._length = self._cut = 0
        room = MAX_LINE_CHARS - self._length
        if len(segment) > room:
            self._cut += len(segment) - room
            segment = segment[:room]
        if segment:
            self._parts.append(segment)
            self._length += len(segment)

    def _finish_line(self) -> str:
        """The pending line as the sink gets it (encodable, capped); the pending line is reset."""
        line, cut = "".join(self._parts), self._cut
        self._parts.clear()
        self._length = self._cut = 0
        storable = storable_text(line)
        if storable is not line:
            line = storable
            cut += max(0, len(line) - MAX_LINE_CHARS)  # escapes are longer than what they replace
            line = line[:MAX_LINE_CHARS]
        if cut:
            line = f"{line}… [{cut} more characters]"
        return line


class _ByteWriter(io.BufferedIOBase):
    """``sys.stdout.buffer``: bytes are decoded as UTF-8 (bad bytes become U+FFFD) and written
    to the text stream. A multi-byte character split across writes is kept whole."""

    def __init__(self, text: LineWriter) -> None:
        super().__init__()
        self._text = text
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._lock = threading.Lock()

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False

    def write(self, data: ReadableBuffer) -> int:
        raw = bytes(memoryview(data))  # memoryview refuses str and int, as a binary file does
        with self._lock:  # the decoder's state is shared by every thread
            text = self._decoder.decode(raw)
            if text:
                self._text.write(text)
        return len(raw)

    def flush(self) -> None:
        pass


@contextmanager
def capture_console(sink: FeedbackSink) -> Iterator[None]:
    """Send ``sys.stdout``/``sys.stderr`` writes to the sink for the duration of the block."""
    stdout, stderr = LineWriter(sink, "stdout"), LineWriter(sink, "stderr")
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = stdout, stderr
    try:
        yield
    finally:
        sys.stdout, sys.stderr = saved
        stdout.flush()
        stderr.flush()
