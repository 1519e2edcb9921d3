"""Validating readers: turn shared types into plain entries, skipping malformed ones."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from pycrdt import Map, Text

from ._plain import plain_value

log = logging.getLogger("forge_ops.schema")


@dataclass(frozen=True)
class SchemaWarning:
    """Content a reader skipped or could not fully understand."""

    path: str
    problem: str

    def __str__(self) -> str:
        return f"{self.path}: {self.problem}"


class Malformed(Exception):
    """An entry does not follow the schema (internal; becomes a SchemaWarning)."""


_MISSING: Any = object()


class Reader:
    """Collects warnings while reading one document."""

    def __init__(self) -> None:
        self.warnings: list[SchemaWarning] = []

    def warn(self, path: str, problem: str) -> None:
        self.warnings.append(SchemaWarning(path, problem))

    def entries(self, container: Any, path: str) -> Iterator[tuple[str, dict[str, Any]]]:
        """Yield (key, raw fields) of each mapping entry; warn about and skip the rest."""
        if container is None:
            return
        if not isinstance(container, Map | dict):
            self.warn(path, f"expected a map, found {type(container).__name__}; skipped")
            return
        for key, value in sorted(container.items()):
            if isinstance(value, Map | dict):
                yield str(key), dict(value.items())
            else:
                self.warn(f"{path}/{key}", f"expected a map, found {_kind(value)}; skipped")

    def build(
        self, container: Any, path: str, make: Callable[[dict[str, Any], str], Any]
    ) -> dict[str, Any]:
        """Read every entry of ``container`` with ``make``; malformed entries are skipped."""
        out: dict[str, Any] = {}
        for key, fields in self.entries(container, path):
            try:
                out[key] = make(fields, f"{path}/{key}")
            except Malformed as exc:
                self.warn(f"{path}/{key}", f"{exc}; entry skipped")
        return out

    def log(self, what: str) -> None:
        """Log each warning once (documents are re-read often; the same problem stays)."""
        for warning in self.warnings:
            key = f"{what}: {warning}"
            if key in _logged:
                continue
            if len(_logged) >= _LOGGED_MAX:
                _logged.pop(next(iter(_logged)))
            _logged[key] = None
            log.warning("%s", key)


_LOGGED_MAX = 1000
_logged: dict[str, None] = {}  # insertion-ordered set of recently logged warnings


def _kind(value: Any) -> str:
    if isinstance(value, Text):
        return "text"
    if value is None:
        return "null"
    return type(value).__name__


def get(
    fields: dict[str, Any], key: str, check: Callable[[Any], Any], default: Any = _MISSING
) -> Any:
    """Return ``check(fields[key])``; raise Malformed when missing (and no default) or wrong."""
    if key not in fields:
        if default is _MISSING:
            raise Malformed(f"missing key {key!r}")
        return default
    try:
        return check(fields[key])
    except TypeError as exc:
        raise Malformed(f"key {key!r}: {exc}") from None


def string(value: Any) -> str:
    if isinstance(value, str):
        return value
    raise TypeError(f"expected a string, found {_kind(value)}")


def opt_string(value: Any) -> str | None:
    return None if value is None else string(value)


def text(value: Any) -> str:
    """Code is a Text; a plain string written by a simpler peer is accepted too."""
    if isinstance(value, Text | str):
        return str(value)
    raise TypeError(f"expected text, found {_kind(value)}")


def boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    raise TypeError(f"expected true/false, found {_kind(value)}")


def integer(value: Any) -> int:
    plain = plain_value(value)
    if isinstance(plain, int) and not isinstance(plain, bool):
        return plain
    raise TypeError(f"expected an integer, found {_kind(value)}")


def opt_integer(value: Any) -> int | None:
    """An integer (CRDT numbers may arrive as whole floats), or None."""
    plain = plain_value(value)
    if isinstance(plain, float) and plain.is_integer():
        return int(plain)
    return None if plain is None else integer(plain)


def json_map(value: Any) -> dict[str, Any]:
    if isinstance(value, Map | dict):
        result = plain_value(value)
        assert isinstance(result, dict)
        return result
    raise TypeError(f"expected a map, found {_kind(value)}")


def int_list(value: Any) -> list[int]:
    plain = plain_value(value)
    if isinstance(plain, list) and all(
        isinstance(v, int) and not isinstance(v, bool) for v in plain
    ):
        return plain
    raise TypeError(f"expected a list of integers, found {_kind(value)}")


def opt_int_list(value: Any) -> list[int] | None:
    return None if value is None else int_list(value)


class SchemaError(ValueError):
    """A helper was asked to change something that does not exist or is not valid."""
