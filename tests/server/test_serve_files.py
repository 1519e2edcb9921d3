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
