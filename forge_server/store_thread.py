"""One worker thread per store: blocking SQLite work runs there, off the relay's event loop."""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import ParamSpec, TypeVar

from forge_ops.sqlite_db import open_database

__all__ = ["StoreThread", "ThreadedDatabase"]

P = ParamSpec("P")
T = TypeVar("T")


class StoreThread:
    """Runs a store's calls one at a time, in the order they were asked for, on its own thread.

    One thread (not a pool) keeps a store's writes in order and its connection used by one
    thread at a time; the store still locks its connection for callers on other threads.
    """

    def __init__(self, name: str) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)

    async def run(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """``fn(*args, **kwargs)`` on the store's thread; the caller's loop goes on meanwhile."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(fn, *args, **kwargs))

    def close(self) -> None:
        """Finish the calls already asked for, then end the thread."""
        self._executor.shutdown(wait=True)


class ThreadedDatabase:
    """An SQLite file (WAL) with its own :class:`StoreThread`: the base of the server's
    stores. Methods block and may be called from any thread (the connection is used under
    ``_lock``); code on the event loop calls them through :meth:`run`."""

    def __init__(self, path: Path | str, schema: str, thread_name: str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._conn = open_database(self.path)
        self._conn.executescript(schema)  # idempotent; executescript commits by itself
        self._thread = StoreThread(thread_name)

    async def run(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """``fn(*args, **kwargs)`` (a method of this store) on the store's thread."""
        return await self._thread.run(fn, *args, **kwargs)

    def close(self) -> None:
        self._thread.close()
        with self._lock:
            self._conn.close()
