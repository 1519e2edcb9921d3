"""What the store records about an artifact: its info, its producers, the form of its hash."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ._codec import ArtifactError

_HASH_PATTERN = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class Provenance:
    """Who produced an artifact: the commit, execution and job."""

    commit: str | None = None
    execution: str | None = None
    job: str | None = None
    created: str = ""


@dataclass(frozen=True)
class ArtifactInfo:
    """What the project document records about an artifact (``artifacts`` map values)."""

    hash: str
    kind: str
    shape: list[int] | None
    dtype: str | None
    bytes: int
    created: str


def check_hash(artifact_hash: str) -> str:
    """``artifact_hash`` if it is one (ArtifactError if not)."""
    if not isinstance(artifact_hash, str) or _HASH_PATTERN.fullmatch(artifact_hash) is None:
        raise ArtifactError(f"{artifact_hash!r} is not an artifact hash (64 lowercase hex digits)")
    return artifact_hash
