"""Pieces every part of the semantic diff uses: stable key order, display names, an entry's own
addition/deletion/renaming, and attribute-like value maps."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from ._changes import Action, Change, Scope, Target, format_value
from ._types import Architecture, Layer, Operation, Pipeline, Sweep

NamedEntry = Operation | Layer | Pipeline | Architecture | Sweep
"""A top-level entry of a project that has a name of its own."""


def ordered_keys(old: Mapping[str, object], new: Mapping[str, object]) -> Iterator[str]:
    """Keys of both mappings, ordered by the entries' names (then ids) so output is stable."""

    def order(key: str) -> tuple[str, str]:
        entry = new.get(key, old.get(key))
        return (display_name(entry, key) if isinstance(entry, Mapping) else key, key)

    yield from sorted({*old, *new}, key=order)


def display_name(entry: Mapping[str, object] | None, fallback: str) -> str:
    """The entry's name, or ``fallback`` (its id) when it has none or an empty one."""
    name = entry.get("name") if entry else None
    return name if isinstance(name, str) and name else fallback


def endpoint_name(
    nodes: Mapping[str, Mapping[str, object]],
    other: Mapping[str, Mapping[str, object]],
    node_id: str,
) -> str:
    """The name of a connection's end, looked up in the other snapshot when it is gone here."""
    return display_name(nodes.get(node_id) or other.get(node_id), node_id)


def entry_changes(
    target: Target,
    collection: str,
    key: str,
    a: NamedEntry | None,
    b: NamedEntry | None,
    *,
    added: str = "Created",
) -> list[Change]:
    """A top-level entry's own addition, deletion or renaming (callers diff what is inside)."""
    name = display_name(b or a, key)
    scope = (collection, key, name)
    path = (collection, key)
    if b is None:
        return [Change(Action.REMOVED, target, f"Deleted {target} {name}", scope, path, name, None)]
    if a is None:
        return [Change(Action.ADDED, target, f"{added} {target} {name}", scope, path, None, name)]
    if a["name"] == b["name"]:
        return []
    text = f"Renamed {target} {a['name']} → {name}"
    return [Change(Action.RENAMED, target, text, scope, (*path, "name"), a["name"], name)]


def value_changes(
    old: Mapping[str, Any],
    new: Mapping[str, Any],
    owner: str,
    where: str,
    *,
    target: Target,
    scope: Scope,
    path: tuple[str, ...],
) -> list[Change]:
    """Attribute-like maps: "Set Train.lr 0.01 → 0.001", "Set Train.lr to 0.1", "Cleared"."""
    changes: list[Change] = []
    for key in ordered_keys(old, new):
        here = f"{owner}.{key}"
        if key not in new:
            text = f"Cleared {here} (was {format_value(old[key])}) {where}"
            changes.append(Change(Action.REMOVED, target, text, scope, (*path, key), old[key]))
        elif key not in old:
            text = f"Set {here} to {format_value(new[key])} {where}"
            changes.append(Change(Action.ADDED, target, text, scope, (*path, key), None, new[key]))
        elif old[key] != new[key] or type(old[key]) is not type(new[key]):
            text = f"Set {here} {format_value(old[key])} → {format_value(new[key])} {where}"
            changes.append(
                Change(Action.CHANGED, target, text, scope, (*path, key), old[key], new[key])
            )
    return changes
