"""LoadArtifact: load one exact stored version of an artifact by its content hash."""

from forge_ops.runtime import Any, load_artifact


def load_stored_artifact(*, content_hash: str = "") -> Any:
    """Return the stored value whose content hash is ``content_hash`` (see `forge artifacts`)."""
    if not content_hash:
        raise ValueError("set the content_hash attribute to the hash of a stored artifact")
    return load_artifact(content_hash)
