"""The inside of a job: calling operation code, console capture, feedback API, tracebacks."""

from __future__ import annotations

import pickle
import threading

import numpy
import pytest

from forge_ops.runtime import (
    Graph,
    MemorySink,
    OperationFailed,
    execute_operation,
    image,
    job_context,
    load_artifact,
    to_image_array,
)


def run(code: str, *, attributes: dict | None = None, references: dict | None = None,
        inputs: dict | None = None, sink: MemorySink | None = None, **options) -> dict:
    return execute_operation(code, attributes or {}, references or {}, inputs or {},
                             sink if sink is not None else MemorySink(), **options)


class TestCalling:
    def test_inputs_attributes_and_references_reach_the_function(self) -> None:
        code = ("def f(a, b=10, /, *, scale: float = 2.0, net: Architecture) -> Any:\n"
                "    return (a + b) * scale, net\n")
        assert run(code, inputs={"a": 1}, references={"net": "N"}) == {"out": (22.0, "N")}
        assert run(code, inputs={"a": 1, "b": 2}, attributes={"scale": 3},
                   references={"net": "M"}) == {"out": (9, "M")}

    def test_named_outputs_from_dict_namedtuple_or_tuple(self) -> None:
        as_dict = 'def f(x) -> {"a": Tensor, "b": Tensor}:\n    return {"b": x + 1, "a": x}\n'
        assert run(as_dict, inputs={"x": 1}) == {"a": 1, "b": 2}
        as_tuple = 'def f(x) -> {"a": Tensor, "b": Tensor}:\n    return x, x * 2\n'
        assert run(as_tuple, inputs={"x": 3}) == {"a": 3, "b": 6}
        named = ("from typing import NamedTuple\n"
                 "class Out(NamedTuple):\n    a: Tensor\n    b: Tensor\n"
                 "def f(x) -> Out:\n    return Out(b=x, a=-x)\n")
        assert run(named, inputs={"x": 5}) == {"a": -5, "b": 5}

    def test_no_outputs_returns_empty(self) -> None:
        assert run("def f(x) -> None:\n    return 42\n", inputs={"x": 1}) == {}

    def test_wrong_outputs_fail_clearly(self) -> None:
        code = 'def f(x) -> {"a": Tensor, "b": Tensor}:\n    return {"a": x}\n'
        with pytest.raises(OperationFailed, match=r"returned outputs \['a'\] but declares"):
            run(code, inputs={"x": 1})
        code = 'def f(x) -> {"a": Tensor, "b": Tensor}:\n    return 7\n'
        with pytest.raises(OperationFailed, match="returned int"):
            run(code, inputs={"x": 1})

    def test_bad_calls_fail_clearly(self) -> None:
        code = "def f(x, *, n: int = 1, net: Architecture) -> Tensor:\n    return x\n"
        with pytest.raises(OperationFailed, match="input 'x' of f is not connected"):
            run(code, references={"net": 1})
        with pytest.raises(OperationFailed, match="no attribute named m"):
            run(code, inputs={"x": 1}, attributes={"m": 2}, references={"net": 1})
        with pytest.raises(OperationFailed, match=r"reference 'net' \(Architecture\) of f is not"):
            run(code, inputs={"x": 1})
        with pytest.raises(OperationFailed, match="no input named y"):
            run(code, inputs={"x": 1, "y": 2}, references={"net": 1})

    def test_optional_inputs(self) -> None:
        code = "def f(a=1, b=2, /) -> Any:\n    return (a, b)\n"
        assert run(code) == {"out": (1, 2)}
        assert run(code, inputs={"a": 5}) == {"out": (5, 2)}
        with pytest.raises(OperationFailed, match="optional input before it is not"):
            run(code, inputs={"b": 5})

    def test_invalid_code_fails_with_line(self) -> None:
        with pytest.raises(OperationFailed, match="syntax error") as info:
            run("def f(x):\n    return (\n")
        assert info.value.line is not None

    def test_predefined_names_need_no_import(self) -> None:
        code = ("def f() -> Metrics:\n    Graph('g').line('l').add(1, 2)\n"
                "    return {'ok': float(Tensor is Any)}\n")
        sink = MemorySink()
        assert run(code, sink=sink) == {"out": {"ok": 1.0}}
        assert sink.graphs["g"]["l"] == [(1.0, 2.0)]


class TestTraceback:
    CODE = ("import json\n"
            "\n"
            "def _inner(value):\n"
            "    return json.loads(value)\n"
            "\n"
            "def parse(text: Any) -> Any:\n"
            "    return _inner(text)\n")

    def test_only_user_frames_are_shown(self) -> None:
        with pytest.raises(OperationFailed) as info:
            run(self.CODE, inputs={"text": "{not json"}, name="Parse")
        failure = info.value
        assert failure.message.startswith("json.decoder.JSONDecodeError: Expecting property")
        assert failure.line == 4
        text = failure.traceback
        assert 'File "<operation Parse>", line 7, in parse' in text
        assert 'File "<operation Parse>", line 4, in _inner' in text
        assert "return json.loads(value)" in text  # the source line is shown
        assert "json/decoder.py" not in text and "_execute.py" not in text
        assert text.splitlines()[-1].startswith("json.decoder.JSONDecodeError")

    def test_chained_exceptions_keep_user_frames_only(self) -> None:
        code = ("def f(x):\n"
                "    try:\n"
                "        return {}[x]\n"
                "    except KeyError as exc:\n"
                "        raise ValueError(f'no {x}') from exc\n")
        with pytest.raises(OperationFailed) as info:
            run(code, inputs={"x": "k"})
        text = info.value.traceback
        assert "KeyError: 'k'" in text and "ValueError: no k" in text
        assert "direct cause" in text and "_execute.py" not in text
        assert info.value.line == 5

    def test_errors_at_module_level_and_exit(self) -> None:
        with pytest.raises(OperationFailed, match="NameError") as info:
            run("undefined_name\ndef f(): ...\n")
        assert info.value.line == 1 and "<module>" in info.value.traceback
        with pytest.raises(OperationFailed, match="SystemExit"):
            run("import sys\ndef f():\n    sys.exit(3)\n")

    def test_failure_pickles(self) -> None:
        with pytest.raises(OperationFailed) as info:
            run("def f():\n    1 / 0\n")
        copy = pickle.loads(pickle.dumps(info.value))
        assert (copy.message, copy.traceback, copy.line) == (
            info.value.message, info.value.traceback, 2)
        assert str(copy) == info.value.traceback


class TestConsole:
    def test_print_is_captured_line_by_line(self, capsys: pytest.CaptureFixture[str]) -> None:
        code = ("import sys\n"
                "def f():\n"
                "    print('one\\ntwo')\n"
                "    print('no newline', end='')\n"
                "    print(' continued')\n"
                "    sys.stderr.write('warn\\n')\n"
                "    print('10%\\r50%\\r100%')\n"
                "    print('tail', end='')\n")
        sink = MemorySink()
        run(code, sink=sink)
        assert sink.lines == [("stdout", "one"), ("stdout", "two"),
                              ("stdout", "no newline continued"), ("stderr", "warn"),
                              ("stdout", "100%"), ("stdout", "tail")]
        assert capsys.readouterr().out == ""  # nothing leaks to the real stdout

    def test_threads_and_long_lines(self) -> None:
        code = ("import threading\n"
                "def f():\n"
                "    t = threading.Thread(target=print, args=('from thread',))\n"
                "    t.start(); t.join()\n"
                "    print('x' * 5000)\n")
        sink = MemorySink()
        run(code, sink=sink)
        assert sink.lines[0] == ("stdout", "from thread")
        assert sink.lines[1][1].endswith("… [1000 more characters]")

    def test_console_restored_after_failure(self) -> None:
        import sys

        before = sys.stdout
        with pytest.raises(OperationFailed):
            run("def f():\n    print('partial', end='')\n    raise RuntimeError('x')\n")
        assert sys.stdout is before


class TestFeedback:
    def test_graph_lines_go_to_the_sink(self) -> None:
        code = ("from forge_ops.runtime import Graph\n"
                "def f():\n"
                "    graph = Graph('Training Error')\n"
                "    line = graph.line('error')\n"
                "    for i in range(3):\n"
                "        line.add(i, 1.0 / (i + 1))\n"
                "    assert graph.line('error') is line\n")
        sink = MemorySink()
        run(code, sink=sink)
        assert sink.graphs["Training Error"]["error"] == [(0.0, 1.0), (1.0, 0.5), (2.0, 1 / 3)]

    def test_image_accepts_tensors_and_arrays(self) -> None:
        torch = pytest.importorskip("torch")
        code = ("import torch\n"
                "def f():\n"
                "    image('chw', torch.zeros(3, 8, 5))\n"
                "    image('gray', torch.ones(1, 4, 4))\n"
                "    image('ints', [[0, 300], [-5, 7]])\n")
        sink = MemorySink()
        run(code, sink=sink)
        assert sink.images["chw"].shape == (8, 5, 3)
        assert sink.images["gray"].shape == (4, 4)
        assert sink.images["ints"].dtype == numpy.uint8
        assert sink.images["ints"].tolist() == [[0, 255], [0, 7]]
        assert torch is not None

    def test_bad_image_shape_is_a_clear_error(self) -> None:
        with pytest.raises(ValueError, match=r"got shape \(2, 2, 2, 2\)"):
            to_image_array(numpy.zeros((2, 2, 2, 2)))
        with pytest.raises(ValueError, match="non-empty title"):
            Graph("")

    def test_feedback_outside_a_job_is_dropped(self) -> None:
        Graph("g").line("l").add(1, 2)
        image("x", numpy.zeros((2, 2)))
        with pytest.raises(RuntimeError, match="only inside a job"):
            load_artifact("abc")

    def test_load_artifact_uses_the_job_loader(self) -> None:
        code = ("from forge_ops.runtime import load_artifact\n"
                "def f(*, h: str = 'x') -> Any:\n    return load_artifact(h)\n")
        stored = {"abc": [1, 2]}
        assert run(code, attributes={"h": "abc"}, load_artifact=stored.__getitem__) == {
            "out": [1, 2]}

    def test_job_context_is_process_wide(self) -> None:
        sink = MemorySink()
        with job_context(sink):
            thread = threading.Thread(target=lambda: Graph("g").line("t").add(0, 1))
            thread.start()
            thread.join()
        assert sink.graphs["g"]["t"] == [(0.0, 1.0)]
