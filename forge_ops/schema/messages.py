"""Commit messages a person would write, computed from a semantic diff."""

from __future__ import annotations

from collections.abc import Sequence

from ._changes import Action, Change, Target

MAX_LISTED = 3
"""Up to this many changes are listed one by one; more are summarised."""
MAX_LENGTH = 120
"""A listed message longer than this is summarised instead."""

_COLLECTION_KIND = {
    "meta": "project",
    "operations": "operation",
    "layers": "layer",
    "pipelines": "pipeline",
    "architectures": "architecture",
    "executions": "execution",
    "artifacts": "artifact",
    "sweeps": "sweep",
}
_OWN_TARGET = {
    "operations": Target.OPERATION,
    "layers": Target.LAYER,
    "pipelines": Target.PIPELINE,
    "architectures": Target.ARCHITECTURE,
    "sweeps": Target.SWEEP,
}
# (singular, plural) nouns for summary counts.
_NOUNS = {
    Target.NODE: ("node", "nodes"),
    Target.CONNECTION: ("connection", "connections"),
    Target.ATTRIBUTE: ("attribute", "attributes"),
    Target.REFERENCE: ("reference", "references"),
    Target.SETTING: ("setting", "settings"),
    Target.ARCH_LAYER: ("layer", "layers"),
}
_PLURAL_KIND = {
    "project": "project",
    "operation": "operations",
    "layer": "layers",
    "pipeline": "pipelines",
    "architecture": "architectures",
    "execution": "executions",
    "artifact": "artifacts",
    "sweep": "sweeps",
}


def commit_message(changes: Sequence[Change]) -> str:
    """One line describing ``changes``: listed when few, summarised per entry when many.

    >>> commit_message([])
    'No changes'
    """
    if not changes:
        return "No changes"
    if len(changes) == 1:
        return changes[0].text
    listed = "; ".join(c.text for c in changes)
    if len(changes) <= MAX_LISTED and len(listed) <= MAX_LENGTH:
        return listed
    groups: dict[tuple[str, str, str], list[Change]] = {}
    for change in changes:
        groups.setdefault(change.scope, []).append(change)
    parts = [_summarise(scope, group) for scope, group in groups.items()]
    joined = "; ".join(parts)
    if len(parts) <= MAX_LISTED and len(joined) <= MAX_LENGTH * 2:
        return joined
    counts: dict[str, int] = {}
    for collection, _, _ in groups:
        kind = _COLLECTION_KIND.get(collection, collection)
        counts[kind] = counts.get(kind, 0) + 1
    listing = ", ".join(
        f"{n} {_PLURAL_KIND.get(kind, kind) if n > 1 else kind}" for kind, n in counts.items()
    )
    return f"Edited {listing} ({len(changes)} changes)"


def _summarise(scope: tuple[str, str, str], group: list[Change]) -> str:
    """One entry's changes: its sentence if alone, else "Edited pipeline p: 3 nodes added"."""
    if len(group) == 1:
        return group[0].text
    collection, _, name = scope
    kind = _COLLECTION_KIND.get(collection, collection)
    own = _OWN_TARGET.get(collection)
    head = f"Edited {kind} {name}"
    items: list[str] = []
    counts: dict[tuple[str, str], int] = {}
    lines = [0, 0]
    for change in group:
        if change.target == own and change.action == Action.ADDED:
            head = f"{'Added' if kind in ('operation', 'layer') else 'Created'} {kind} {name}"
        elif change.target == own and change.action == Action.RENAMED:
            items.append(f"renamed from {change.old}")
        elif change.target == Target.CODE:
            lines[0] += change.lines_added
            lines[1] += change.lines_removed
        elif change.target in _NOUNS:
            verb = _verb(change)
            counts[(str(change.target), verb)] = counts.get((str(change.target), verb), 0) + 1
        else:
            items.append(change.text[0].lower() + change.text[1:])
    if lines != [0, 0]:
        items.append(f"code edited (+{lines[0]} −{lines[1]} lines)")
    for (target, verb), n in counts.items():
        singular, plural = _NOUNS[Target(target)]
        items.append(f"{n} {singular if n == 1 else plural} {verb}")
    return f"{head}: {', '.join(items)}" if items else head


def _verb(change: Change) -> str:
    if change.target in (Target.CONNECTION, Target.ATTRIBUTE, Target.REFERENCE, Target.SETTING):
        return "changed"
    return {Action.ADDED: "added", Action.REMOVED: "removed", Action.RENAMED: "renamed"}.get(
        change.action, "changed"
    )
