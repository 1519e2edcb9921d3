"""Small files in a local store, written so that no reader ever sees one half written."""

from __future__ import annotations

import itertools
import json
import os
import uuid
from typing import IO, Any

#: Names of temporary files: unique per host, process and write (cheaper than a uuid per write;
#: the token tells hosts sharing a network folder apart, the pid forked children).
_TEMPORARY_TOKEN = uuid.uuid4().hex[:12]
_TEMPORARY_NAMES = itertools.count()


def open_new(path: str, mode: str) -> IO[Any]:
    """Open a local file for writing, creating its folder the first time one is missing."""
    try:
        return open(path, mode)
    except FileNotFoundError:
        os.makedirs(path.rpartition("/")[0], exist_ok=True)
        return open(path, mode)


def create_json(path: str, value: Any) -> bool:
    """Create a local JSON file in place (exclusively); False if it already exists."""
    try:
        file = open_new(path, "xb")
    except FileExistsError:
        return False
    with file:
        file.write(json.dumps(value, sort_keys=True).encode())
    return True


def replace_file(path: str, data: bytes) -> None:
    """Write a local file whole: aside first, then renamed over ``path``."""
    # Plain os calls: a pipeline of tiny jobs writes several of these per job.
    folder, _, name = path.rpartition("/")
    temporary = (f"{folder}/.{name}.{_TEMPORARY_TOKEN}-{os.getpid()}-"
                 f"{next(_TEMPORARY_NAMES)}.tmp")
    with open_new(temporary, "wb") as file:
        file.write(data)
    os.replace(temporary, path)
