"""Content hashes: canonical JSON headers plus raw array bytes, SHA-256."""

from __future__ import annotations

import hashlib
import json
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
    """Hash covering the kind, dtype, shape and C-order bytes of an array."""
    import numpy as np

    digest = hashlib.sha256(HASH_PREFIX)
    header = {"kind": kind, "dtype": dtype_name, "shape": list(array.shape)}
    digest.update(canonical_json(header).encode())
    digest.update(b"\0")
    contiguous = array if array.flags.c_contiguous else np.array(array, order="C")
    digest.update(contiguous.reshape(-1).view(np.uint8).data)
    return digest.hexdigest()


def hash_bytes(data: bytes, header: dict[str, Any]) -> str:
    """Hash of an opaque byte payload with its header (pickled objects)."""
    digest = hashlib.sha256(HASH_PREFIX)
    digest.update(canonical_json(header).encode())
    digest.update(b"\0")
    digest.update(data)
    return digest.hexdigest()
