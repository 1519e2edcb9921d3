"""Rules for user and project names (they appear in URLs, logs and the CLI)."""

from __future__ import annotations

import re

from forge_server.auth._errors import InvalidName
from forge_server.relay.room_names import NAME_SEGMENT

_USER_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
# Projects are the first path segment of /sync/{project}/...: the relay's rule for a segment.
_PROJECT_RE = re.compile(NAME_SEGMENT)


def validate_user_name(name: str) -> str:
    if not _USER_RE.fullmatch(name):
        raise InvalidName(
            f"invalid user name {name!r}: use 1-64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return name


def validate_project_name(name: str) -> str:
    # A trailing dot reads as the same name in a shell, a URL or a file name ("p1." beside
    # "p1"), so it is refused; names that differ only in case are one project (the stores check
    # that, since it takes the names that exist).
    if not _PROJECT_RE.fullmatch(name) or name.endswith("."):
        raise InvalidName(
            f"invalid project name {name!r}: use 1-100 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit and not ending with '.'"
        )
    return name
