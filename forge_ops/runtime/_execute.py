"""Run an operation's code in this process: the inside of a job.

``execute_operation`` compiles the code under a file name of its own, calls the operation function
(the last public top-level function, see ``forge_ops.operations``) with the inputs as positional
arguments and the attributes and resolved references as keywords, and returns the outputs by port
name. While it runs, ``print`` goes to the sink line by line, the feedback API (``Graph``,
``image``) reports to the sink, and matplotlib figures are routed there. A failure raises
OperationFailed carrying the traceback of the user's code only.
"""

from __future__ import annotations

import builtins
import linecache
import sys
import traceback
from collections.abc import Mapping
from contextlib import ExitStack
from functools import lru_cache
from types import CodeType
from typing import Any

from forge_ops.operations import InterfaceError, OperationInterface, parse_interface
from forge_ops.operations import types as operation_types

from ._console import capture_console
from ._context import ArtifactLoader, job_context
from ._feedback import Graph, image, load_artifact
from ._sink import FeedbackSink

__all__ = ["OperationFailed", "execute_operation", "operation_namespace"]


class OperationFailed(Exception):
    """The operation raised, or could not be called, or returned the wrong outputs.

    ``message`` is one line ("ZeroDivisionError: division by zero"); ``traceback`` shows only the
    frames of the operation's code (empty when the failure is not inside it); ``line`` is the
    line of the operation code where it failed, if any.
    """

    def __init__(self, message: str, traceback: str = "", line: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.traceback = traceback
        self.line = line

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.message, self.traceback, self.line))

    def __str__(self) -> str:
        return self.traceback or self.message


def operation_namespace(filename: str) -> dict[str, Any]:
    """Globals for operation code: the port/reference type names and the feedback API are
    predefined, so short operations need no imports (importing them explicitly also works)."""
    namespace: dict[str, Any] = {
        "__name__": "forge_operation",
        "__file__": filename,
        "__builtins__": builtins,
        "Graph": Graph,
        "image": image,
        "load_artifact": load_artifact,
    }
    for name in operation_types.__all__:
        if name[0].isupper() and not name.isupper():
            namespace[name] = getattr(operation_types, name)
    return namespace


def execute_operation(
    code: str,
    attributes: Mapping[str, Any],
    references: Mapping[str, Any],
    inputs: Mapping[str, Any],
    sink: FeedbackSink,
    *,
    name: str = "operation",
    load_artifact: ArtifactLoader | None = None,
) -> dict[str, Any]:
    """Run the operation in ``code`` and return its outputs as ``{port: value}``.

    ``attributes`` override the code's defaults; ``references`` are already resolved objects
    (see ``resolve_references``); ``inputs`` maps input port names to values (optional inputs
    may be left out). ``name`` labels the code in tracebacks; ``load_artifact`` lets the code
    call ``load_artifact(hash)``. Raises OperationFailed.
    """
    try:
        interface = parse_interface(code)
    except InterfaceError as exc:
        raise OperationFailed(f"the operation code is invalid: {exc}", line=exc.line) from None
    arguments, keywords = _arguments(interface, attributes, references, inputs)
    filename = f"<operation {name}>"
    linecache.cache[filename] = (len(code), None, code.splitlines(keepends=True), filename)
    with job_context(sink, load_artifact), ExitStack() as stack:
        stack.enter_context(capture_console(sink))
        if _may_plot(code):
            from ._plots import route_matplotlib

            stack.enter_context(route_matplotlib(sink))
        try:
            namespace = operation_namespace(filename)
            exec(_compiled(code, filename), namespace)  # noqa: S102 - runs inside a job
            result = namespace[interface.function](*arguments, **keywords)
        except (Exception, SystemExit) as exc:
            raise _failure(exc, filename) from None
    return _outputs(interface, result)


@lru_cache(maxsize=256)
def _compiled(code: str, filename: str) -> CodeType:
    """The code compiled once per worker process (pipelines run the same operation many times)."""
    return compile(code, filename, "exec")


def _may_plot(code: str) -> bool:
    """Whether to route matplotlib figures: the code names a plotting library, or matplotlib
    is already loaded in this process (so a helper module may plot)."""
    return "matplotlib" in sys.modules or any(
        name in code for name in ("matplotlib", "pyplot", "seaborn", "pandas")
    )


def _arguments(
    interface: OperationInterface,
    attributes: Mapping[str, Any],
    references: Mapping[str, Any],
    inputs: Mapping[str, Any],
) -> tuple[list[Any], dict[str, Any]]:
    function = interface.function
    unknown = set(inputs) - {port.name for port in interface.inputs}
    if unknown:
        raise OperationFailed(f"{function} has no input named {', '.join(sorted(unknown))}")
    arguments: list[Any] = []
    for port in interface.inputs:
        if port.name in inputs:
            if len(arguments) < interface.inputs.index(port):
                raise OperationFailed(f"input {port.name!r} of {function} is given but an "
                                      "optional input before it is not; connect that one too")
            arguments.append(inputs[port.name])
        elif port.required:
            raise OperationFailed(f"input {port.name!r} of {function} is not connected")
    unknown = set(attributes) - {attribute.name for attribute in interface.attributes}
    if unknown:
        raise OperationFailed(f"{function} has no attribute named {', '.join(sorted(unknown))}")
    unknown = set(references) - {reference.name for reference in interface.references}
    if unknown:
        raise OperationFailed(f"{function} has no reference named {', '.join(sorted(unknown))}")
    for reference in interface.references:
        if reference.required and reference.name not in references:
            raise OperationFailed(f"reference {reference.name!r} ({reference.type}) of "
                                  f"{function} is not set")
    return arguments, {**attributes, **references}


def _failure(exc: BaseException, filename: str) -> OperationFailed:
    summary = traceback.TracebackException.from_exception(exc)
    line: int | None = None
    seen: set[int] = set()
    current: traceback.TracebackException | None = summary
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        frames = [frame for frame in current.stack if frame.filename == filename]
        current.stack = traceback.StackSummary.from_list(frames)
        if line is None and frames:
            line = frames[-1].lineno
        current = current.__cause__ or current.__context__
    text = "".join(summary.format())
    if isinstance(exc, SyntaxError) and exc.filename == filename:
        line = exc.lineno
    message = "".join(summary.format_exception_only()).strip().splitlines()[-1]
    return OperationFailed(message, text.rstrip("\n"), line)


def _outputs(interface: OperationInterface, result: Any) -> dict[str, Any]:
    ports = [port.name for port in interface.outputs]
    if not ports:
        return {}
    if interface.single_output:
        return {ports[0]: result}
    if isinstance(result, tuple) and hasattr(result, "_asdict"):
        result = result._asdict()
    if isinstance(result, Mapping):
        if set(result) != set(ports):
            raise OperationFailed(
                f"{interface.function} returned outputs {sorted(result)} but declares "
                f"{ports}; return a dict with exactly these keys"
            )
        return {port: result[port] for port in ports}
    if isinstance(result, tuple) and len(result) == len(ports):
        return dict(zip(ports, result, strict=True))
    raise OperationFailed(
        f"{interface.function} declares outputs {ports} but returned "
        f"{type(result).__name__}; return a dict with these keys (or a tuple in this order)"
    )
