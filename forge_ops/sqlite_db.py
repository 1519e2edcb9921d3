"""Opening the SQLite files of Forge (the server's ``forge.db``, an artifact store's index).

Every connection is in autocommit mode (``isolation_level=None``: a statement is its own
transaction unless a ``BEGIN`` says otherwise) and may be used from any thread, so its owner
serializes the calls (a lock or a single worker thread). Files are WAL databases with
``synchronous=NORMAL``: a commit survives any process's crash; only a power cut can lose the last
ones.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

__all__ = ["connect", "open_database", "use_wal"]


def connect(path: str | Path, *, busy_timeout_s: float = 10.0) -> sqlite3.Connection:
    """An autocommit connection usable from any thread; a statement that meets another
    connection's lock retries for ``busy_timeout_s`` (0: fails at once with SQLITE_BUSY)."""
    return sqlite3.connect(
        path, timeout=busy_timeout_s, isolation_level=None, check_same_thread=False
    )


def use_wal(connection: sqlite3.Connection) -> None:
    """Make the file a WAL database (recorded in the file; only asked for when it is not one
    yet, since switching needs a lock) and commit with ``synchronous=NORMAL``."""
    if connection.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
        connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")


def open_database(
    path: str | Path, *, busy_timeout_s: float = 10.0, foreign_keys: bool = False
) -> sqlite3.Connection:
    """:func:`connect` and :func:`use_wal`; ``foreign_keys`` turns the constraint checks on."""
    connection = connect(path, busy_timeout_s=busy_timeout_s)
    use_wal(connection)
    if foreign_keys:
        connection.execute("PRAGMA foreign_keys=ON")
    return connection
