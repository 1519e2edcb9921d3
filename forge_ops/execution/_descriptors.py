"""A local job's file descriptors 1 and 2 as console lines.

``print`` reaches the job's console through ``sys.stdout``; output written to the descriptors
themselves (``os.system``, a subprocess's own output, C extensions, ``os.write``) would
otherwise land in the server's log. A local job is a process of its own, so its descriptors can
be pipes for as long as it runs. (Ray workers are long-lived and shared: their descriptors stay
with Ray's worker logs.)
"""

from __future__ import annotations

import codecs
import ctypes
import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress

from forge_ops.runtime import FeedbackSink, LineWriter

#: How long the job's end waits for what is still in the pipes. A subprocess the job left
#: running keeps its copy of a pipe open, so the end cannot wait for the pipe to close.
DRAIN_SECONDS = 1.0


@contextmanager
def capture_descriptors(sink: FeedbackSink) -> Iterator[None]:
    """Within the block, descriptors 1 and 2 write to ``sink.console`` ("stdout", "stderr")."""
    pumps = []
    for descriptor, stream in ((1, "stdout"), (2, "stderr")):
        read_end, write_end = os.pipe()
        saved = os.dup(descriptor)
        os.dup2(write_end, descriptor)
        os.close(write_end)
        pump = threading.Thread(target=_pump, args=(read_end, LineWriter(sink, stream)),
                                name=f"forge-{stream}-pipe", daemon=True)
        pump.start()
        pumps.append((descriptor, saved, pump))
    try:
        yield
    finally:
        _flush_c_streams()
        for descriptor, saved, _ in pumps:
            os.dup2(saved, descriptor)  # closes this process's end of the pipe
            os.close(saved)
        for _, _, pump in pumps:
            pump.join(DRAIN_SECONDS)


def _pump(read_end: int, lines: LineWriter) -> None:
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    try:
        while chunk := os.read(read_end, 65536):
            with suppress(BaseException):  # a cancel (JobCancelled) must not stop the reading:
                lines.write(decoder.decode(chunk))  # writers would block on a full pipe
        with suppress(BaseException):
            lines.write(decoder.decode(b"", final=True))
            lines.flush()
    finally:
        os.close(read_end)


def _flush_c_streams() -> None:
    """What C code (and Python's own streams) buffered goes into the pipes before they close."""
    for stream in (sys.stdout, sys.stderr):
        with suppress(Exception):
            stream.flush()
    with suppress(OSError, AttributeError):
        ctypes.CDLL(None).fflush(None)
