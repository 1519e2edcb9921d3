"""LineWriter, the stdout/stderr of operation code: long output, CRLF, bad text, bytes."""

from __future__ import annotations

import io

import click
import pytest

from forge_ops.runtime import MAX_LINE_CHARS, LineWriter, MemorySink, execute_operation


def writer() -> tuple[LineWriter, MemorySink]:
    sink = MemorySink()
    return LineWriter(sink, "stdout"), sink


def lines(sink: MemorySink) -> list[str]:
    return [text for _, text in sink.lines]


def pending_chars(out: LineWriter) -> int:
    return sum(map(len, out._parts))


class TestLongOutput:
    def test_many_small_writes_keep_the_pending_line_capped(self) -> None:
        out, sink = writer()
        for _ in range(100_000):
            out.write(".")
        assert pending_chars(out) == MAX_LINE_CHARS
        out.write("\n")
        cut = 100_000 - MAX_LINE_CHARS
        assert lines(sink) == ["." * MAX_LINE_CHARS + f"… [{cut} more characters]"]
        assert pending_chars(out) == 0

    def test_a_progress_bar_keeps_only_its_latest_state(self) -> None:
        out, sink = writer()
        for i in range(100_000):
            out.write(f"\rstep {i}")
            assert pending_chars(out) <= len("step 99999")
        assert sink.lines == []  # no line is complete until a newline or a flush
        out.flush()
        out.write("\rdone\n")
        assert lines(sink) == ["step 99999", "done"]

    def test_a_carriage_return_forgets_what_was_cut(self) -> None:
        out, sink = writer()
        out.write("x" * (MAX_LINE_CHARS + 10))
        out.write("\rshort\n")
        out.write("y" * (MAX_LINE_CHARS + 3) + "\n")
        assert lines(sink) == ["short", "y" * MAX_LINE_CHARS + "… [3 more characters]"]


class TestCarriageReturns:
    def test_crlf_ends_lines(self) -> None:
        out, sink = writer()
        out.write("line1\r\nline2\r\n")
        assert lines(sink) == ["line1", "line2"]

    def test_crlf_split_across_writes(self) -> None:
        out, sink = writer()
        for part in ["a\r", "\nb\r", "c\r", "\r\n", "d\r"]:
            out.write(part)
        out.flush()
        assert lines(sink) == ["a", "c", "d"]  # "\r" before other text rewrites the line

    def test_progress_then_newline(self) -> None:
        out, sink = writer()
        out.write("10%\r50%\r100%\n")
        assert lines(sink) == ["100%"]


class TestUnencodableText:
    def test_lone_surrogates_become_escapes(self) -> None:
        out, sink = writer()
        print("bad \udcff", file=out)
        assert lines(sink) == ["bad \\udcff"]
        lines(sink)[0].encode("utf-8")  # raises if the sink got text the document cannot hold

    def test_escaped_lines_stay_capped(self) -> None:
        out, sink = writer()
        print("\udcff" * MAX_LINE_CHARS, file=out)
        (line,) = lines(sink)
        line.encode("utf-8")
        assert line.startswith("\\udcff")
        assert line.endswith(f"… [{5 * MAX_LINE_CHARS} more characters]")  # 6 chars for each


class TestStreamInterface:
    def test_bytes_are_decoded_across_writes(self) -> None:
        out, sink = writer()
        assert out.buffer.write(b"caf\xc3") == 4
        assert out.buffer.write(memoryview(b"\xa9 \xff\n")) == 4
        out.buffer.flush()
        assert lines(sink) == ["café \ufffd"]

    def test_bytes_writer_refuses_text(self) -> None:
        out, _ = writer()
        with pytest.raises(TypeError):
            out.buffer.write("text")  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="must be str"):
            out.write(b"bytes")  # type: ignore[arg-type]

    def test_attributes_libraries_look_for(self) -> None:
        out, _ = writer()
        assert (out.encoding, out.errors, out.isatty(), out.writable()) == (
            "utf-8", "backslashreplace", False, True)
        assert out.buffer.writable() and not out.buffer.isatty()
        with pytest.raises(io.UnsupportedOperation):
            out.fileno()

    def test_click_echo_writes_lines(self) -> None:
        out, sink = writer()
        click.echo("via click", file=out)
        click.echo(b"raw bytes", file=out)  # click writes bytes to ``.buffer``
        assert lines(sink) == ["via click", "raw bytes"]


def test_operation_output_through_execute_operation() -> None:
    code = ("import sys, logging\n"
            "def f():\n"
            "    sys.stdout.write('line1\\r\\nline2\\r\\n')\n"
            "    for i in range(1000):\n"
            "        sys.stderr.write(f'\\rstep {i}')\n"
            "    sys.stderr.write('\\n')\n"
            "    print('bad \\udcff')\n"
            "    sys.stdout.buffer.write(b'bytes \\xe2\\x9c\\x93\\n')\n"
            "    handler = logging.StreamHandler(sys.stdout)\n"
            "    handler.emit(logging.makeLogRecord({'msg': 'logged'}))\n")
    sink = MemorySink()
    execute_operation(code, {}, {}, {}, sink)
    assert sink.lines == [("stdout", "line1"), ("stdout", "line2"), ("stderr", "step 999"),
                          ("stdout", "bad \\udcff"), ("stdout", "bytes ✓"),
                          ("stdout", "logged")]
