"""Capture ``print`` output (stdout/stderr) of operation code, line by line, into the sink."""

from __future__ import annotations

import io
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from ._sink import FeedbackSink

__all__ = ["MAX_LINE_CHARS", "LineWriter", "capture_console"]

#: Longer lines are cut (with a note) so one runaway print cannot bloat the document.
MAX_LINE_CHARS = 4000


class LineWriter(io.TextIOBase):
    """A text stream that hands complete lines to ``sink.console(stream, line)``.

    A carriage return keeps only what follows it, as a terminal would show a progress bar.
    """

    def __init__(self, sink: FeedbackSink, stream: str) -> None:
        super().__init__()
        self._sink = sink
        self._stream = stream
        self._pending = ""
        self._lock = threading.Lock()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return "utf-8"

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False

    def write(self, text: str) -> int:
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        with self._lock:
            *complete, self._pending = (self._pending + text).split("\n")
        for line in complete:
            self._emit(line)
        return len(text)

    def flush(self) -> None:
        with self._lock:
            line, self._pending = self._pending, ""
        if line:
            self._emit(line)

    def _emit(self, line: str) -> None:
        line = line.rsplit("\r", 1)[-1]
        if len(line) > MAX_LINE_CHARS:
            line = f"{line[:MAX_LINE_CHARS]}… [{len(line) - MAX_LINE_CHARS} more characters]"
        self._sink.console(self._stream, line)


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
