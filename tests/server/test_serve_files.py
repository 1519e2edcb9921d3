"""The server's files are its own: on a shared box other accounts must not read the data
directory (token hashes, every project's documents, artifacts)."""

from __future__ import annotations

import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_data_directory_and_what_the_server_writes_are_private(
        tmp_path: Path, serve_process: Callable[..., Any]) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    data.chmod(0o755)  # as a shared box's umask 022 would have made it
    server = serve_process(data)
    assert mode(data) == 0o700
    assert "Made data directory" in "".join(server.output)
    written = [p for p in data.rglob("*") if p.is_file()]
    assert any(p.name == "forge.db" for p in written)
    assert {p.name: mode(p) for p in written if mode(p) & 0o077} == {}


def test_the_owner_token_is_written_outside_the_data_directory(
        tmp_path: Path, serve_process: Callable[..., Any]) -> None:
    data = tmp_path / "data"
    server = serve_process(data)
    assert server.token is not None  # it is in the credentials file beside the data directory
    assert mode(server.owner_credentials) == 0o600
    assert str(server.owner_credentials) in "".join(server.output)
    leaked = [p for p in data.rglob("*") if p.is_file() and server.token.encode() in p.read_bytes()]
    assert leaked == []


def test_an_old_owner_token_in_the_data_directory_is_moved_out(
        tmp_path: Path, serve_process: Callable[..., Any]) -> None:
    data = tmp_path / "data"
    first = serve_process(data)
    token = first.token
    first.stop()
    first.owner_credentials.rename(data / "owner-credentials.json")  # as older servers left it
    second = serve_process(data)
    assert not (data / "owner-credentials.json").exists()
    assert second.token == token and mode(second.owner_credentials) == 0o600
    assert "Moved the administrator token" in "".join(second.output)


def test_owner_credentials_inside_the_data_directory_are_refused(tmp_path: Path) -> None:
    import subprocess
    import sys

    data = tmp_path / "data"
    result = subprocess.run(
        [sys.executable, "-m", "forge_tui", "serve", "--port", "0", "--data-dir", str(data),
         "--owner-credentials", str(data / "sub" / "owner.json")],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert result.returncode != 0 and "inside the data directory" in result.stderr
