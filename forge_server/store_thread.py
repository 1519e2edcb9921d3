"""One worker thread per store: blocking SQLite work runs there, off the relay's event loop."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

__all__ = ["StoreThread"]

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
