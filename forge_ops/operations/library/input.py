"""Input: feed a project artifact, chosen by name, into the pipeline."""

from forge_ops.runtime import Any, Artifact


def input_artifact(*, artifact: Artifact) -> Any:
    """Return the value of the referenced artifact, loaded from the artifact store."""
    return artifact
