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
import numbers
import sys
import traceback
from collections.abc import Mapping
from contextlib import ExitStack
from functools import lru_cache
from types import CodeType
from typing import Any

from forge_ops.operations import InterfaceError, OperationInterface, parse_interface
from forge_ops.operations import types as operation_types

from ._checkpoints import Checkpoints, checkpoint, resume
from ._console import capture_console
from ._context import ArtifactLoader, job_context
from ._feedback import Graph, image, load_artifact
from ._sink import FeedbackSink, storable_text

__all__ = ["OperationFailed", "OperationInterrupted", "execute_operation", "operation_namespace"]

#: The module name operation code runs as.
NAMESPACE_NAME = "forge_operation"
#: Caps on what a failure carries into the execution document (a message can be megabytes).
MESSAGE_CHARS = 2_000
TRACEBACK_CHARS = 64_000


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


class OperationInterrupted(OperationFailed, KeyboardInterrupt):
    """The operation stopped on a KeyboardInterrupt: a cancel, or the code raised one itself.

    Only the executor can tell which (it knows whether it asked); it still catches this as a
    KeyboardInterrupt, and has the user's traceback for the other case.
    """


def operation_namespace(filename: str) -> dict[str, Any]:
    """Globals for operation code: the port/reference type names and the feedback API are
    predefined, so short operations need no imports (importing them explicitly also works)."""
    namespace: dict[str, Any] = {
        "__name__": NAMESPACE_NAME,
        "__file__": filename,
        "__builtins__": builtins,
        "Graph": Graph,
        "image": image,
        "load_artifact": load_artifact,
        "checkpoint": checkpoint,
        "resume": resume,
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
    checkpoints: Checkpoints | None = None,
) -> dict[str, Any]:
    """Run the operation in ``code`` and return its outputs as ``{port: value}``.

    ``attributes`` override the code's defaults; ``references`` are already resolved objects
    (see ``resolve_references``); ``inputs`` maps input port names to values (optional inputs
    may be left out). ``name`` labels the code in tracebacks; ``load_artifact`` lets the code
    call ``load_artifact(hash)``, ``checkpoints`` keeps what it passes to ``checkpoint`` (see
    ``_checkpoints``). Raises OperationFailed.
    """
    try:
        interface = parse_interface(code)
    except InterfaceError as exc:
        raise OperationFailed(f"the operation code is invalid: {exc}", line=exc.line) from None
    arguments, keywords = _arguments(interface, attributes, references, inputs)
    filename = f"<operation {name}>"
    linecache.cache[filename] = (len(code), None, code.splitlines(keepends=True), filename)
    with job_context(sink, load_artifact, checkpoints), ExitStack() as stack:
        stack.enter_context(capture_console(sink))
        if _may_plot(code):
            from ._plots import route_matplotlib

            stack.enter_context(route_matplotlib(sink))
        try:
            namespace = operation_namespace(filename)
            exec(_compiled(code, filename), namespace)  # noqa: S102 - runs inside a job
            result = namespace[interface.function](*arguments, **keywords)
        except BaseException as exc:
            if getattr(exc, "cancels_job", False):
                raise  # the executor is cancelling the job (see forge_ops.execution)
            failure = _failure(exc, filename)
            if isinstance(exc, KeyboardInterrupt):
                raise OperationInterrupted(failure.message, failure.traceback,
                                           failure.line) from None
            raise failure from None  # any other BaseException too: the job fails, the
            # process that runs it goes on
    outputs = _outputs(interface, result)
    for port in interface.outputs:
        _check_output(interface.function, port.name, port.type, outputs[port.name])
    return outputs


@lru_cache(maxsize=256)
def _compiled(code: str, filename: str) -> CodeType:
    """The code compiled once per worker process (pipelines run the same operation many times)."""
    return compile(code, filename, "exec")


def _may_plot(code: str) -> bool:
    """Whether to route matplotlib figures: the code names a plotting library, or matplotlib
    is already loaded in this process (so a helper module may plot)."""
    return "matplotlib" in sys.modules or any(
        name in code for name in ("matplotlib", "pyplot", "pylab", "seaborn", "pandas")
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
        # The user's frames: the operation's, and those of custom layers it calls.
        frames = [frame for frame in current.stack
                  if frame.filename == filename or frame.filename.startswith("<custom layer ")]
        current.stack = traceback.StackSummary.from_list(frames)
        if line is None:
            line = next((f.lineno for f in reversed(frames) if f.filename == filename), None)
        current = current.__cause__ or current.__context__
    text = storable_text(_cut("".join(summary.format()).rstrip("\n"), TRACEBACK_CHARS))
    if isinstance(exc, SyntaxError) and exc.filename == filename:
        line = exc.lineno
    return OperationFailed(_one_line(summary, exc), text, line)


def _one_line(summary: traceback.TracebackException, exc: BaseException) -> str:
    """"Type: first line of the message": a SyntaxError's is the last line of its report
    (after the code and caret), notes come after the message and are left out."""
    parts = list(summary.format_exception_only())
    notes = getattr(exc, "__notes__", None)
    if isinstance(notes, list | tuple) and 0 < len(notes) < len(parts):
        parts = parts[:-len(notes)]
    lines = "".join(parts).strip().splitlines() or [type(exc).__name__]
    line = lines[-1] if isinstance(exc, SyntaxError) else lines[0]
    # An exception class of the operation's own reads "Stop", not "forge_operation.Stop".
    line = line.removeprefix(f"{NAMESPACE_NAME}.")
    return storable_text(_cut(line, MESSAGE_CHARS))


def _cut(text: str, limit: int) -> str:
    """``text`` within ``limit`` characters: its start and its end, which say the most."""
    if len(text) <= limit:
        return text
    head = limit // 4
    tail = limit - head
    return f"{text[:head]}\n… {len(text) - limit:,} characters left out …\n{text[-tail:]}"


#: What a value of each documented port type must be (forge_ops.operations.types): checked
#: here, so a wrong value fails the job that made it, not the job downstream that reads it.
_EXPECTED = {
    "Tensor": "a torch.Tensor (a numpy array or a number also do)",
    "Model": "a torch.nn.Module",
    "Dataset": "a dict such as {'x': images, 'y': labels}",
    "Metrics": "a dict of names to numbers",
}


def _check_output(function: str, port: str, port_type: str, value: Any) -> None:
    if port_type not in _EXPECTED:
        return
    torch = sys.modules.get("torch")  # a tensor or module cannot exist without it
    if port_type == "Tensor":
        import numpy

        fits = isinstance(value, numpy.ndarray | numbers.Number) or (
            torch is not None and isinstance(value, torch.Tensor))
    elif port_type == "Model":
        fits = torch is not None and isinstance(value, torch.nn.Module)
    else:
        fits = isinstance(value, Mapping)
    if not fits:
        raise OperationFailed(
            f"{function} returned {type(value).__name__} for output {port!r}, which is "
            f"declared {port_type}; return {_EXPECTED[port_type]}, or declare the port Any")


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
    got = (f"a tuple of {len(result)}" if isinstance(result, tuple)
           else type(result).__name__)
    raise OperationFailed(
        f"{interface.function} declares {len(ports)} outputs {ports} but returned {got}; "
        "return a dict with these keys (or a tuple in this order)"
    )
