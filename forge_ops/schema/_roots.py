"""The root maps of a project document and what every editing helper needs: entry lookups and
checks of the arguments it is given (names, shapes, JSON values)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pycrdt import Doc, Map

from forge_ops.input_shape import is_input_shape

from ._plain import check_json
from ._read import SchemaError, SchemaWarning


class ProjectRoots:
    """A project document's root maps; the base of :class:`ProjectDoc`'s editing parts."""

    def __init__(self, doc: Doc | None = None) -> None:
        self.doc = doc if doc is not None else Doc()
        self.meta = self.doc.get("meta", type=Map)
        self.operations = self.doc.get("operations", type=Map)
        self.pipelines = self.doc.get("pipelines", type=Map)
        self.layers = self.doc.get("layers", type=Map)
        self.architectures = self.doc.get("architectures", type=Map)
        self.executions = self.doc.get("executions", type=Map)
        self.artifacts = self.doc.get("artifacts", type=Map)
        self.sweeps = self.doc.get("sweeps", type=Map)
        self.warnings: list[SchemaWarning] = []

    def _find_entry(self, entry_id: str, collections: tuple[str, ...]) -> Map:
        for collection in collections:
            entry = getattr(self, collection).get(entry_id)
            if isinstance(entry, Map):
                return entry
        raise SchemaError(f"no {' or '.join(c[:-1] for c in collections)} with id {entry_id!r}")


def checked_name(name: Any, what: str) -> str:
    if not isinstance(name, str) or not name.strip():
        raise SchemaError(f"{what} name must be a non-empty string, got {name!r}")
    return name


def checked_shape(shape: Any) -> list[int] | None:
    """An array's shape (an artifact's): non-negative sizes, empty for a scalar."""
    if shape is None:
        return None
    if not isinstance(shape, list | tuple) or not all(
        isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape
    ):
        raise SchemaError(f"shape must be a list of non-negative integers, got {shape!r}")
    return list(shape)


def checked_input_shape(shape: Any) -> list[int] | None:
    """An architecture's input shape, by the one rule of :mod:`forge_ops.input_shape`."""
    if shape is None:
        return None
    if not is_input_shape(shape):
        raise SchemaError(f"shape must be a list of positive integers, got {shape!r}")
    return list(shape)


def json_dict(values: Mapping[str, Any] | None, what: str) -> dict[str, Any]:
    out = dict(values or {})
    check_json(out, what)
    return out


def sub_map(entry: Map, key: str, where: str) -> Map:
    """The nested map ``entry[key]``; SchemaError when a peer wrote something else there."""
    sub = entry.get(key)
    if not isinstance(sub, Map):
        raise SchemaError(f"{where} is malformed: its {key!r} is not a map")
    return sub
