"""Room names: one document per URL path, ``project/branch`` or ``project/executions/id``."""

from __future__ import annotations

import re

__all__ = ["NAME_SEGMENT", "execution_room", "project_room", "validate_room_name"]

NAME_SEGMENT = r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}"
"""One part of a room name (a project, a branch, an execution id): the one rule for them, which
project names follow too, since a project is the first segment of /sync/{project}/..."""
_ROOM_NAME = re.compile(rf"{NAME_SEGMENT}/(?:executions/{NAME_SEGMENT}|{NAME_SEGMENT})")


def validate_room_name(name: str) -> str:
    """``name`` if it names a branch or an execution room; ``ValueError`` saying why not."""
    if not _ROOM_NAME.fullmatch(name):
        raise ValueError(
            f"invalid room name {name!r}: expected 'project/branch' or "
            "'project/executions/id', each part letters, digits, '.', '_' or '-' "
            "(starting with a letter or digit, at most 100 characters)"
        )
    return name


def project_room(project: str, branch: str = "main") -> str:
    """The room of a project's branch."""
    return validate_room_name(f"{project}/{branch}")


def execution_room(project: str, execution_id: str) -> str:
    """The room of one execution of a project."""
    return validate_room_name(f"{project}/executions/{execution_id}")
