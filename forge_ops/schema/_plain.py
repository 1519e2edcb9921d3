"""Conversion of pycrdt shared types to plain JSON data."""

from __future__ import annotations

from typing import Any

from pycrdt import Array, Map, Text

_MAX_SAFE_INT = 2**53


def plain_value(value: Any) -> Any:
    """Convert a shared type or stored value to plain JSON data, recursively.

    Yjs stores every number as a float64, so integral floats come back as ints (as a
    JavaScript peer would see them); this keeps ``1`` and ``1.0`` equal in snapshots.
    """
    if isinstance(value, Map):
        return {str(k): plain_value(v) for k, v in value.items()}
    if isinstance(value, Array):
        return [plain_value(v) for v in value]
    if isinstance(value, Text):
        return str(value)
    if isinstance(value, dict):
        return {str(k): plain_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain_value(v) for v in value]
    if isinstance(value, float) and value.is_integer() and abs(value) < _MAX_SAFE_INT:
        return int(value)
    if value is None or isinstance(value, bool | int | float | str):
        return value
    # Xml types or anything else a foreign peer may have stored: keep its text form.
    return str(value)


def check_json(value: Any, where: str) -> None:
    """Raise ValueError naming ``where`` if ``value`` is not plain JSON data."""
    if value is None or isinstance(value, bool | int | float | str):
        return
    if isinstance(value, list | tuple):
        for index, item in enumerate(value):
            check_json(item, f"{where}[{index}]")
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValueError(f"{where}: dictionary keys must be strings, got {key!r}")
            check_json(item, f"{where}.{key}")
        return
    raise ValueError(
        f"{where}: {type(value).__name__} is not a plain JSON value "
        "(use None, bool, int, float, str, list or dict)"
    )
