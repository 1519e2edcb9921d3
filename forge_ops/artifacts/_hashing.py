"""Content hashes: canonical JSON headers plus raw array bytes, BLAKE3.

BLAKE3 rather than SHA-256: it is a cryptographic hash too, but several times faster per core
(SIMD) and splits large inputs across threads by itself, with a result that never depends on
the thread count. Hashing dominated the cost of storing a tensor with SHA-256.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from blake3 import blake3

if TYPE_CHECKING:
    import numpy as np

#: Bumped if the hashing scheme ever changes, so old and new hashes can never collide
#: (v1 was SHA-256 over 8 MiB block digests).
HASH_PREFIX = b"forge-artifact-v2\0"
#: Inputs at least this large are hashed by several threads (below it threads cost more).
PARALLEL_BYTES = 4 * 1024 * 1024


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no spaces: equal values always give equal text."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=True)


def _hasher(header: dict[str, Any], payload_bytes: int = 0) -> blake3:
    # Large payloads are hashed by blake3's own threads (it releases the GIL meanwhile).
    threads = blake3.AUTO if payload_bytes >= PARALLEL_BYTES else 1
    digest = blake3(HASH_PREFIX, max_threads=threads)
    digest.update(canonical_json(header).encode())
    return digest


def hash_header(header: dict[str, Any]) -> str:
    """Hash of a header alone (groups, JSON results): their members are already hashed."""
    return _hasher(header).hexdigest()


def hash_array(array: np.ndarray, kind: str, dtype_name: str) -> str:
    """Hash covering the kind, dtype, shape and C-order bytes of an array."""
    import numpy as np

    digest = _hasher({"kind": kind, "dtype": dtype_name, "shape": list(array.shape)},
                     array.nbytes)
    digest.update(b"\0")
    contiguous = array if array.flags.c_contiguous else np.array(array, order="C")
    digest.update(contiguous.reshape(-1).view(np.uint8).data)
    return digest.hexdigest()


def hash_bytes(data: bytes, header: dict[str, Any]) -> str:
    """Hash of an opaque byte payload with its header (pickled objects)."""
    digest = _hasher(header, len(data))
    digest.update(b"\0")
    digest.update(data)
    return digest.hexdigest()

