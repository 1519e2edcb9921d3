"""Content-addressed artifact store (zarr; a local folder or any fsspec URL)."""

from ._codec import ArtifactError as ArtifactError
from ._codec import ArtifactKind as ArtifactKind
from ._codec import encode as encode
from ._hashing import canonical_json as canonical_json
from ._store import DEFAULT_LOCATION as DEFAULT_LOCATION
from ._store import ArtifactInfo as ArtifactInfo
from ._store import ArtifactStore as ArtifactStore
from ._store import Provenance as Provenance
from ._store import StoreResult as StoreResult

__all__ = [
    "DEFAULT_LOCATION",
    "ArtifactError",
    "ArtifactInfo",
    "ArtifactKind",
    "ArtifactStore",
    "Provenance",
    "StoreResult",
    "canonical_json",
    "encode",
]
