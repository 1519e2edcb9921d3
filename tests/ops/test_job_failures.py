"""What a job's own code can do wrong, on a real executor: every case ends as a clear, failed
job with the user's traceback, and the executor goes on."""

from __future__ import annotations

from typing import Any

import pytest
from engine_helpers import build_project

from forge_ops.artifacts import ArtifactStore
from forge_ops.execution import Engine, LocalExecutor, plan_pipeline

RAISES_KEYBOARD_INTERRUPT = '''
def stop_me() -> Tensor:
    raise KeyboardInterrupt("the operation's own")
'''
RAISES_BASE_EXCEPTION = '''
class Stop(BaseException):
    pass


def stop() -> Tensor:
    raise Stop("not an Exception")
'''
LEAVES_A_THREAD = '''
def leave() -> Metrics:
    import threading, time
    threading.Thread(target=time.sleep, args=(3600,)).start()  # not a daemon
    return {"left": 1}
'''
NOTED_ERROR = '''
def noted() -> Tensor:
    error = ValueError("first line\\nsecond line")
    error.add_note("a note")
    raise error
'''
HUGE_ERROR = '''
def huge() -> Tensor:
    raise ValueError("x" * 3_000_000)
'''
UNENCODABLE = '''
def odd() -> Metrics:
    graph = Graph("bad \\udcff title")
    graph.line("loss \\udcfe").add(0, 1)
    print("bad \\udcff")
    raise ValueError("bad \\udcff")
'''


def run_one(store: ArtifactStore, executor: LocalExecutor, code: str) -> Any:
    plan = plan_pipeline(build_project({"op": code}, {"J": ("op", {})}, []), "p")
    return Engine(store, executor, max_retries=1).run(plan, use_cache=False)


def test_keyboard_interrupt_raised_by_the_code_fails_the_job(
        store: ArtifactStore, local_executor: LocalExecutor) -> None:
    record = run_one(store, local_executor, RAISES_KEYBOARD_INTERRUPT).jobs["J"]
    assert record.status.value == "failed"  # nobody cancelled it
    assert record.error == "KeyboardInterrupt: the operation's own"
    assert 'File "<operation J>", line 3, in stop_me' in record.traceback


def test_a_base_exception_fails_the_job_once_with_the_users_traceback(
        store: ArtifactStore, local_executor: LocalExecutor) -> None:
    result = run_one(store, local_executor, RAISES_BASE_EXCEPTION)
    record = result.jobs["J"]
    assert record.status.value == "failed"
    assert record.error == "Stop: not an Exception"
    assert record.attempts == 1  # not a worker crash: not retried
    assert "forge_ops" not in record.traceback and "line 7, in stop" in record.traceback


def test_a_thread_left_running_does_not_hold_the_job(
        store: ArtifactStore, local_executor: LocalExecutor) -> None:
    plan = plan_pipeline(build_project({"op": LEAVES_A_THREAD}, {"J": ("op", {})}, []), "p")
    handle = Engine(store, local_executor).start(plan, use_cache=False)
    try:
        result = handle.wait(timeout=60)  # the thread sleeps an hour: fail, do not hang
    finally:
        if not handle.done():
            handle.cancel()
    assert result.jobs["J"].status.value == "succeeded"


def test_the_error_line_is_the_first_line_of_the_message(
        store: ArtifactStore, local_executor: LocalExecutor) -> None:
    record = run_one(store, local_executor, NOTED_ERROR).jobs["J"]
    assert record.error == "ValueError: first line"
    assert "second line" in record.traceback and "a note" in record.traceback


def test_huge_errors_are_cut_keeping_both_ends(
        store: ArtifactStore, local_executor: LocalExecutor) -> None:
    record = run_one(store, local_executor, HUGE_ERROR).jobs["J"]
    assert len(record.error) < 2_100 and "characters left out" in record.error
    assert len(record.traceback) < 64_100
    assert record.traceback.startswith("Traceback") and record.traceback.endswith("x" * 100)


def test_text_that_utf8_cannot_hold_is_escaped(
        store: ArtifactStore, local_executor: LocalExecutor) -> None:
    from engine_helpers import Recorder

    recorder = Recorder()
    plan = plan_pipeline(build_project({"op": UNENCODABLE}, {"J": ("op", {})}, []), "p")
    record = Engine(store, local_executor).run(plan, recorder, use_cache=False).jobs["J"]
    assert record.error == "ValueError: bad \\udcff"
    assert "bad \\udcff" in recorder.lines("J")
    points = {(graph, line) for event in recorder.feedback("J")
              for graph, lines in event.points.items() for line in lines}
    assert points == {("bad \\udcff title", "loss \\udcfe")}
    for text in (record.error, record.traceback, *recorder.lines("J")):
        text.encode("utf-8")  # storable


@pytest.mark.parametrize("value, expected", [
    ("np.zeros((0, 3))", "image is empty (shape (0, 3))"),
    ("np.zeros((4, 4), dtype=complex)", "image needs numbers (uint8 0–255, or floats in [0, 1]), "
                                        "got dtype complex128"),
])
def test_images_that_cannot_be_shown_are_refused_where_they_are_made(
        value: str, expected: str) -> None:
    from forge_ops.runtime import MemorySink, OperationFailed, execute_operation

    code = f"def show() -> None:\n    import numpy as np\n    image('x', {value})\n"
    with pytest.raises(OperationFailed) as failed:
        execute_operation(code, {}, {}, {}, MemorySink())
    assert failed.value.message == f"ValueError: {expected}"


def test_plotting_a_tensor_that_requires_grad_warns_about_nothing() -> None:
    from forge_ops.runtime import MemorySink, execute_operation

    code = ("def plot() -> None:\n    import torch, warnings\n"
            "    warnings.simplefilter('error')\n"
            "    w = torch.ones(1, requires_grad=True)\n"
            "    Graph('g').line('l').add(0, (w * 2).sum())\n")
    sink = MemorySink()
    execute_operation(code, {}, {}, {}, sink)
    assert sink.graphs["g"]["l"] == [(0.0, 2.0)]


@pytest.mark.parametrize("annotation, value, got", [
    ("Tensor", "'hello'", "str"),
    ("Model", "{'w': 1}", "dict"),
    ("Metrics", "3", "int"),
    ("Dataset", "None", "NoneType"),
])
def test_an_output_of_the_wrong_kind_fails_the_job_that_made_it(
        annotation: str, value: str, got: str) -> None:
    from forge_ops.runtime import MemorySink, OperationFailed, execute_operation

    code = f"def make() -> {annotation}:\n    return {value}\n"
    with pytest.raises(OperationFailed) as failed:
        execute_operation(code, {}, {}, {}, MemorySink())
    assert failed.value.message.startswith(
        f"make returned {got} for output 'out', which is declared {annotation}; return ")


def test_numbers_and_arrays_pass_as_tensors_and_any_takes_anything() -> None:
    from forge_ops.runtime import MemorySink, execute_operation

    for annotation, value in (("Tensor", "2.5"), ("Tensor", "__import__('numpy').ones(2)"),
                              ("Any", "'text'")):
        code = f"def make() -> {annotation}:\n    return {value}\n"
        assert "out" in execute_operation(code, {}, {}, {}, MemorySink())


SHELL_OUTPUT = '''
def shell() -> Metrics:
    import ctypes, os, subprocess, sys
    os.system("echo from the shell")
    subprocess.run([sys.executable, "-c", "import sys; sys.stderr.write('from a child\\\\n')"])
    os.write(1, "written to fd 1 \\u00e9\\n".encode())
    ctypes.CDLL(None).printf(b"from C printf\\n")  # buffered in C until the job ends
    subprocess.Popen(["sleep", "3"])  # left running, holding the pipe: must not hold the job
    return {"done": 1}
'''


def test_output_written_to_the_descriptors_reaches_a_local_jobs_console(
        store: ArtifactStore, local_executor: LocalExecutor) -> None:
    from engine_helpers import Recorder

    recorder = Recorder()
    plan = plan_pipeline(build_project({"op": SHELL_OUTPUT}, {"J": ("op", {})}, []), "p")
    record = Engine(store, local_executor).run(plan, recorder, use_cache=False).jobs["J"]
    assert record.status.value == "succeeded", record.error
    streams = {(stream, text) for event in recorder.feedback("J") for stream, text in
               event.console}
    assert {("stdout", "from the shell"), ("stderr", "from a child"),
            ("stdout", "written to fd 1 é"), ("stdout", "from C printf")} <= streams
