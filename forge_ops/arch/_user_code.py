"""The error of importing a module, and where in the user's code it happened.

Tracebacks and ``torch.fx`` stack traces run through torch and Forge; the line worth showing is
the innermost one in the user's own file.
"""

from __future__ import annotations

import os
import traceback

from forge_ops.arch._model import ArchitectureError


class ArchitectureImportError(ArchitectureError):
    """A module cannot be imported; the message names the source line when it can."""


def is_library_path(path: str) -> bool:
    """Whether a frame's file belongs to torch or Forge (or is not a file at all)."""
    import torch

    roots = (os.path.dirname(torch.__file__), os.path.dirname(os.path.dirname(__file__)))
    return path.startswith(roots) or path.startswith("<")


def source_line(stack_trace: str | None) -> str:
    """``file:line: code`` of the user's frame in an fx node's recorded stack trace."""
    if not stack_trace:
        return ""
    lines = stack_trace.strip().splitlines()
    for i in range(len(lines) - 1, -1, -1):
        text = lines[i].strip()
        if text.startswith("File ") and not is_library_path(text.split('"')[1]):
            code = lines[i + 1].strip() if i + 1 < len(lines) else ""
            where = text.split('"')[1] + ":" + text.split("line ")[1].split(",")[0]
            return f"{where}: {code}"
    return ""


def user_frame(exc: BaseException) -> str:
    """``file:line: code`` of the innermost user frame in an exception's traceback."""
    frames = [
        f for f in traceback.extract_tb(exc.__traceback__) if not is_library_path(f.filename)
    ]
    if not frames:
        return ""
    frame = frames[-1]
    return f"{frame.filename}:{frame.lineno}: {(frame.line or '').strip()}"


def frame_class(exc: BaseException) -> type | None:
    """Class of the innermost user ``forward`` in a traceback (the module that failed)."""
    tb, found = exc.__traceback__, None
    while tb is not None:
        if not is_library_path(tb.tb_frame.f_code.co_filename):
            owner = tb.tb_frame.f_locals.get("self")
            found = type(owner) if owner is not None else found
        tb = tb.tb_next
    return found
