"""Content hashes: canonical JSON headers plus raw array bytes, SHA-256."""

from __future__ import annotations

import hashlib
import json
import os
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

#: Bumped if the hashing scheme ever changes, so old and new hashes can never collide.
HASH_PREFIX = b"forge-artifact-v1\0"


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no spaces: equal values always give equal text."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=True)


def hash_header(header: dict[str, Any]) -> str:
    """Hash of a header alone (groups, JSON results): their members are already hashed."""
    digest = hashlib.sha256(HASH_PREFIX)
    digest.update(canonical_json(header).encode())
    return digest.hexdigest()


def hash_array(array: np.ndarray, kind: str, dtype_name: str) -> str:
    """Hash covering the kind, dtype, shape and C-order bytes of an array.

    The bytes are hashed in fixed 8 MiB blocks, in parallel threads for large arrays (hashlib
    releases the GIL); the result depends only on the content, never on the thread count.
    """
    import numpy as np

    digest = hashlib.sha256(HASH_PREFIX)
    header = {"kind": kind, "dtype": dtype_name, "shape": list(array.shape)}
    digest.update(canonical_json(header).encode())
    digest.update(b"\0")
    contiguous = array if array.flags.c_contiguous else np.array(array, order="C")
    data = contiguous.reshape(-1).view(np.uint8).data
    blocks = [data[start:start + BLOCK_BYTES] for start in range(0, len(data), BLOCK_BYTES)]
    if len(blocks) > 1:
        digests = list(_pool().map(_block_digest, blocks))
    else:
        digests = [_block_digest(block) for block in blocks]
    for block_digest in digests:
        digest.update(block_digest)
    return digest.hexdigest()


#: Size of the blocks an array's bytes are hashed in (part of the hash definition).
BLOCK_BYTES = 8 * 1024 * 1024


def _block_digest(block: memoryview) -> bytes:
    return hashlib.sha256(block).digest()


@cache
def _pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1),
                              thread_name_prefix="forge-hash")


def hash_bytes(data: bytes, header: dict[str, Any]) -> str:
    """Hash of an opaque byte payload with its header (pickled objects)."""
    digest = hashlib.sha256(HASH_PREFIX)
    digest.update(canonical_json(header).encode())
    digest.update(b"\0")
    digest.update(data)
    return digest.hexdigest()
