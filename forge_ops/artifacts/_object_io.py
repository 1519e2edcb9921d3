"""Zarr nodes in an object store (S3 and the like), moved whole: built in memory and uploaded
in one batch of concurrent PUTs, or downloaded with one listing and one batch of concurrent
GETs and read from memory.

zarr's own store on fsspec makes a request per metadata probe (parents, existing keys,
consolidated metadata, format-2 names): about 80 round trips per artifact written and read
(measured: 700 requests for the example's 7-job pipeline), each costing an object store's
latency, one after the other.
"""

from __future__ import annotations

from typing import Any


def memory_store(files: dict[str, bytes] | None = None) -> Any:
    """A zarr store in memory, holding ``files`` (``{key: bytes}``)."""
    from zarr.core.buffer import default_buffer_prototype
    from zarr.storage import MemoryStore

    buffer = default_buffer_prototype().buffer
    return MemoryStore({key: buffer.from_bytes(data) for key, data in (files or {}).items()})


def upload_node(fs: Any, root: str, store: Any, path: str) -> None:
    """Upload the keys of ``store`` (a memory store) that belong to the node at ``path`` (not
    the parent groups zarr made on the way) under ``root``, concurrently."""
    prefix = f"{path}/"
    files = {f"{root.rstrip('/')}/{key}": value.to_bytes()
             for key, value in store._store_dict.items()
             if key.startswith(prefix)}
    fs.pipe(files)


def download_node(fs: Any, root: str, path: str) -> Any:
    """The node at ``path`` under ``root`` as a memory store (keys relative to ``root``): one
    listing, then its objects concurrently. Missing node: an empty store."""
    base = f"{root.rstrip('/')}/"
    keys = [key for key in fs.find(f"{base}{path}") if key.startswith(base)]
    contents = fs.cat(keys) if keys else {}
    return memory_store({key[len(base):]: bytes(data) for key, data in contents.items()})
