"""How a job's process uses memory and threads: glibc's treatment of freed memory, and the
intra-op thread count. Shared by the local executor's job processes and long-lived Ray workers.
"""

from __future__ import annotations

import ctypes
import os
import sys
from functools import lru_cache
from typing import Any

#: glibc ``mallopt`` parameters (malloc.h) and both thresholds' initial value.
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_GLIBC_INITIAL_THRESHOLD = 128 * 1024


@lru_cache(maxsize=1)
def _libc() -> Any:
    """glibc, or None elsewhere (musl, macOS): it alone has these malloc controls."""
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return None
    return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None


def keep_freed_memory() -> None:
    """Let a fresh job process reuse the memory it frees (glibc only; elsewhere nothing).

    A new process starts with glibc's thresholds cold: blocks of a few MB freed by one training
    iteration go back to the OS at once and the next iteration faults them in again (a local
    job trained ~15% slower than the same loop in a long-lived process). A job process is
    short-lived, so keeping its freed memory until it exits costs nothing lasting.
    """
    libc = _libc()
    if libc is not None:
        libc.mallopt(_M_TRIM_THRESHOLD, 1 << 30)
        libc.mallopt(_M_MMAP_THRESHOLD, 32 << 20)  # glibc's largest; bigger blocks still mapped


#: Whether this long-lived worker keeps freed memory for its jobs (``hold_freed_memory``).
_keeping = False


def hold_freed_memory(keep: bool) -> None:
    """Before a job: keep freed memory while CPU jobs run (a local job's own process, or a
    long-lived Ray worker, which ``release_freed_memory`` empties after each job).

    glibc's own thresholds grow with use, yet a Ray worker training on the CPU still went
    through phases of giving back and faulting in the blocks each iteration frees (ad-hoc
    probe, the same loop in a Ray task: 4.3–5.1 s in most runs, 6.5 s in a run with 1.4 M page
    faults instead of 0.2 M; with this, 4.25–4.46 s over eight). GPU jobs get glibc's initial
    thresholds back (see ``_local_child.child_main`` for why they go without).
    """
    global _keeping
    if keep == _keeping:
        return
    if keep:
        keep_freed_memory()
    else:
        libc = _libc()
        if libc is not None:
            libc.mallopt(_M_TRIM_THRESHOLD, _GLIBC_INITIAL_THRESHOLD)
            libc.mallopt(_M_MMAP_THRESHOLD, _GLIBC_INITIAL_THRESHOLD)
            libc.malloc_trim(0)
    _keeping = keep


def release_freed_memory() -> None:
    """After a job that kept freed memory: give it back, so an idle worker does not hold it
    (about 10 ms after a training job, 20 µs when there is nothing to give)."""
    if _keeping:
        libc = _libc()
        if libc is not None:
            libc.malloc_trim(0)


def limit_threads(num_cpus: float) -> None:
    """Use as many intra-op threads as CPUs the job asked for (what Ray does for its tasks)."""
    threads = str(max(1, int(num_cpus)))
    for variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        if os.environ.get(variable) != threads:
            os.environ[variable] = threads
    torch = sys.modules.get("torch")
    if torch is not None and torch.get_num_threads() != int(threads):
        torch.set_num_threads(int(threads))


def half_imported_modules() -> list[str]:
    """Submodules left behind by an interrupted import: their package is gone from
    ``sys.modules`` (Python drops a module whose import failed, not the submodules it had
    already loaded), so a later import of the package would run against stale parts."""
    loaded = set(sys.modules)
    return [name for name in loaded if "." in name and name.split(".", 1)[0] not in loaded]
