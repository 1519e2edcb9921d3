"""The `forge` entry point itself: what every command shares when things go wrong."""

from __future__ import annotations

import subprocess
import sys

import pytest

from forge_tui.cli import main

ENDLESS = """
import sys
import forge_tui.cli.commands.run as run
from forge_tui.cli import main

def endless(args):
    while True:
        print("an execution " * 40)

run._executions = endless  # registered when main builds the parser
sys.exit(main(["executions", "p"]))
"""


def test_a_reader_that_stops_early_gets_no_traceback() -> None:
    # `forge … | head`: head exits, the next write meets a closed pipe.
    child = subprocess.Popen([sys.executable, "-c", ENDLESS], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
    assert child.stdout is not None and child.stderr is not None
    assert child.stdout.read(100)
    child.stdout.close()
    assert child.wait(timeout=60) == 141
    with child.stderr:
        assert child.stderr.read() == b""


@pytest.mark.parametrize("server", ["127.0.0.1:8700", "ftp://127.0.0.1:8700", "file:///etc"])
def test_a_server_url_must_be_http(server: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["executions", "p", "--server", server]) == 1
    assert (f"forge: error: server URL {server!r} must start with http:// or https://"
            in capsys.readouterr().err)


def test_empty_names_are_refused_by_the_parser(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["restart", "1a2b3c4d", ""])
    assert exited.value.code == 2
    assert "argument job: must not be empty" in capsys.readouterr().err
