"""Output: publish a value as a named artifact of the project."""

from forge_ops.runtime import Any


def output(data: Any, /, *, name: str = "output") -> None:
    """Publish ``data`` as the project artifact called ``name``.

    The executor stores the value connected to ``data`` and records it under ``name`` in the
    project's artifacts (a newer run's value replaces the name's target; old versions stay
    stored). This function only checks the name.
    """
    if not name.strip():
        raise ValueError("set the name attribute: it is the artifact's name in the project")
