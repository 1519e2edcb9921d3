"""How an artifact's arrays lie in zarr: chunked by rows, or, for a large array in a local
store, one raw chunk file written and read at disk speed."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

CHUNK_BYTES = 32 * 1024 * 1024
#: Arrays at least this large in a local store are written and read as one raw chunk file.
DIRECT_BYTES = 4 * 1024 * 1024


def direct_io(local: bool, array: np.ndarray, nbytes: int | None = None) -> bool:
    """Whether ``array`` (of ``nbytes``, if not its own size) is written and read as one raw
    chunk file: large, in a local store, little-endian."""
    size = array.nbytes if nbytes is None else nbytes
    return (local and size >= DIRECT_BYTES and array.ndim >= 1
            and array.dtype.byteorder in "=|<" and sys.byteorder == "little")


def _chunk_file(root: str, path: str, ndim: int) -> Path:
    """The file of a single-chunk array's only chunk."""
    return Path(root, path, "c", *(["0"] * ndim))


def write_array(store: Any, local_root: str | None, path: str, array: np.ndarray, *,
                attrs: dict[str, Any], aside: Path | None = None) -> None:
    """Write ``array`` at ``path`` of the zarr ``store``; ``local_root`` is the store's folder
    (None for object stores), ``aside`` a file already holding the array's bytes."""
    import zarr

    direct = direct_io(local_root is not None, array)
    if direct:
        chunks: tuple[int, ...] = array.shape  # one chunk: the file is the raw array
    elif array.ndim == 0:
        chunks = ()
    else:
        row_bytes = max(1, array.nbytes // max(1, array.shape[0]))
        rows = max(1, min(array.shape[0], CHUNK_BYTES // row_bytes))
        chunks = (rows, *(max(1, d) for d in array.shape[1:]))
    target = zarr.create_array(store, name=path, shape=array.shape, dtype=array.dtype,
                               chunks=chunks, compressors=None, overwrite=True,
                               attributes=attrs, fill_value=0)
    if direct and local_root is not None:
        # Large arrays in a local folder: write the single chunk's bytes ourselves (what
        # zarr's "bytes" codec would write, at disk speed instead of through its pipeline).
        chunk = _chunk_file(local_root, path, array.ndim)
        chunk.parent.mkdir(parents=True, exist_ok=True)
        if aside is not None:
            os.replace(aside, chunk)
        else:
            with open(chunk, "wb") as file:
                file.write(array.reshape(-1).view(np.uint8).data)
    elif array.size:
        target[...] = array


def read_array(local_root: str | None, array: Any) -> np.ndarray:
    """The content of a zarr array; a single-chunk local array is read straight from disk."""
    shape = tuple(array.shape)
    if (local_root is not None
            and direct_io(True, np.empty(0, dtype=array.dtype), array.nbytes)
            and tuple(array.chunks) == shape and not array.compressors
            and not array.filters):
        chunk = _chunk_file(local_root, array.path, array.ndim)
        if chunk.exists():
            return np.fromfile(chunk, dtype=array.dtype).reshape(shape)
    return np.asarray(array[...])
