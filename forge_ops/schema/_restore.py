"""Make a live document's content equal to a plain snapshot, changing only what differs.

Used to revert to an old commit and to build documents from plain data: entries, fields and
code that are already equal are left untouched, so concurrent edits elsewhere still merge.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pycrdt import Map, Text

from ._plain import plain_value

# Layout of nested shared maps: a dict spec is a Map whose listed fields have their own spec
# ("*": every field), "text" is a Text, and anything unlisted is a plain JSON value.
_VALUES: dict[str, Any] = {}
_CODE_ENTRY = {"*": {"code": "text"}}
PROJECT_LAYOUT: dict[str, Any] = {
    "meta": _VALUES,
    "operations": _CODE_ENTRY,
    "layers": _CODE_ENTRY,
    "pipelines": {
        "*": {
            "nodes": {"*": {"attributes": _VALUES, "references": _VALUES, "settings": _VALUES}},
            "edges": {"*": _VALUES},
        }
    },
    "architectures": {
        "*": {"layers": {"*": {"attributes": _VALUES}}, "edges": {"*": _VALUES}},
    },
    "executions": {"*": _VALUES},
    "artifacts": {"*": _VALUES},
    "sweeps": {"*": _VALUES},
}


def sync_map(target: Map, content: Mapping[str, Any], spec: Mapping[str, Any]) -> None:
    """Change ``target`` (call inside a transaction) until its content equals ``content``."""
    for key in [k for k in target.keys() if k not in content]:
        del target[key]
    for key, value in content.items():
        sub = spec.get(key, spec.get("*"))
        current = target.get(key)
        if sub == "text":
            if isinstance(current, Text):
                set_text(current, str(value))
            else:
                target[key] = Text(str(value))
        elif isinstance(sub, dict) and isinstance(value, Mapping):
            if isinstance(current, Map):
                sync_map(current, value, sub)
            else:
                target[key] = build(value, sub)
        elif not _same(current, value):
            target[key] = value


def build(content: Mapping[str, Any], spec: Mapping[str, Any]) -> Map:
    """A new (preliminary) Map holding ``content`` laid out by ``spec``."""
    fields: dict[str, Any] = {}
    for key, value in content.items():
        sub = spec.get(key, spec.get("*"))
        if sub == "text":
            fields[key] = Text(str(value))
        elif isinstance(sub, dict) and isinstance(value, Mapping):
            fields[key] = build(value, sub)
        else:
            fields[key] = value
    return Map(fields)


def changed_span(old: str, new: str) -> tuple[int, int, str]:
    """(start, end in old, replacement): the smallest single edit turning old into new."""
    start = 0
    limit = min(len(old), len(new))
    while start < limit and old[start] == new[start]:
        start += 1
    end_old, end_new = len(old), len(new)
    while end_old > start and end_new > start and old[end_old - 1] == new[end_new - 1]:
        end_old -= 1
        end_new -= 1
    return start, end_old, new[start:end_new]


def merge_edits(base: str, ours: str, theirs: str) -> str:
    """Both sides' changes to ``base``, each taken as the one span it changed (``changed_span``).

    Spans apart are both applied (two inserts at one place: theirs first). Overlapping spans
    keep theirs and put our inserted text right after it: nobody's typing is lost, at worst
    text one side deleted stays.
    """
    if ours in (base, theirs):
        return theirs
    if theirs == base:
        return ours
    ours_start, ours_end, ours_text = changed_span(base, ours)
    their_start, their_end, their_text = changed_span(base, theirs)
    inserts_at_one_place = ours_start == ours_end == their_start == their_end
    if ours_end <= their_start and not inserts_at_one_place:
        return (base[:ours_start] + ours_text + base[ours_end:their_start] + their_text
                + base[their_end:])
    if their_end <= ours_start:
        return (base[:their_start] + their_text + base[their_end:ours_start] + ours_text
                + base[ours_end:])
    after_theirs = their_start + len(their_text)
    return theirs[:after_theirs] + ours_text + theirs[after_theirs:]


def set_text(text: Text, new: str) -> None:
    """Replace ``text``'s content with ``new`` by editing only the span that differs."""
    old = str(text)
    if old == new:
        return
    start, end_old, inserted = changed_span(old, new)
    # pycrdt indexes Text by UTF-8 byte offset, not by Python character index.
    at = len(old[:start].encode())
    removed = len(old[start:end_old].encode())
    if removed:
        del text[at : at + removed]
    if inserted:
        text.insert(at, inserted)


def _same(current: Any, value: Any) -> bool:
    if isinstance(current, Map | Text):
        return False
    plain = plain_value(current)
    return plain == value and type(plain) is type(value)
