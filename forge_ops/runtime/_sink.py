"""Where a running job's feedback goes: the FeedbackSink protocol and two simple sinks."""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    import numpy

__all__ = ["FeedbackSink", "MemorySink", "NullSink"]


@runtime_checkable
class FeedbackSink(Protocol):
    """Receives a job's feedback. The executor's implementation batches it into the document.

    ``console`` gets one line at a time without its newline (``stream`` is "stdout" or
    "stderr"); ``image`` gets an H×W×C (C = 3 or 4) or H×W array, uint8 or float in [0, 1].
    Calls may come from any thread of the job.
    """

    def console(self, stream: str, text: str) -> None: ...

    def graph_point(self, graph: str, line: str, x: float, y: float) -> None: ...

    def image(self, name: str, array: numpy.ndarray) -> None: ...


#: How ``storable_text`` writes what UTF-8 cannot hold.
UNENCODABLE = "backslashreplace"


def storable_text(text: str) -> str:
    """``text`` as the documents can hold it: lone surrogates (bytes decoded with
    ``surrogateescape``) cannot be encoded as UTF-8, so they are shown as escapes instead
    (``\udcff`` names the undecodable byte where ``?`` would not). ``text`` itself when it
    needs nothing."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", UNENCODABLE).decode("utf-8")
    return text


class NullSink:
    """Drops everything (operation code run outside a job)."""

    def console(self, stream: str, text: str) -> None:
        pass

    def graph_point(self, graph: str, line: str, x: float, y: float) -> None:
        pass

    def image(self, name: str, array: numpy.ndarray) -> None:
        pass


class MemorySink:
    """Keeps everything in memory, in arrival order; for tests and in-process runs."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []
        self.graphs: defaultdict[str, defaultdict[str, list[tuple[float, float]]]] = defaultdict(
            lambda: defaultdict(list)
        )
        self.images: dict[str, numpy.ndarray] = {}

    def console(self, stream: str, text: str) -> None:
        self.lines.append((stream, text))

    def graph_point(self, graph: str, line: str, x: float, y: float) -> None:
        self.graphs[graph][line].append((x, y))

    def image(self, name: str, array: numpy.ndarray) -> None:
        self.images[name] = array

    def text(self, stream: str | None = None) -> str:
        """The console lines (of one stream, or all) joined with newlines."""
        return "\n".join(text for kind, text in self.lines if stream in (None, kind))
