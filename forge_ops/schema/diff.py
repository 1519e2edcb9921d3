"""Semantic diff of two plain project snapshots (pure functions, no pycrdt).

Each :class:`Change` carries a sentence a person would write ("Set Train.learning_rate
0.01 → 0.001 in pipeline cifar10") plus the structured facts behind it, so commit messages,
``forge show`` and ``forge diff`` all speak the same language.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

_VALUE_WIDTH = 40


class Action(StrEnum):
    ADDED = "added"
    REMOVED = "removed"
    RENAMED = "renamed"
    CHANGED = "changed"
    CONNECTED = "connected"
    DISCONNECTED = "disconnected"
    EDITED = "edited"


class Target(StrEnum):
    PROJECT = "project"
    OPERATION = "operation"
    LAYER = "layer"
    PIPELINE = "pipeline"
    NODE = "node"
    ATTRIBUTE = "attribute"
    REFERENCE = "reference"
    SETTING = "setting"
    CONNECTION = "connection"
    ARCHITECTURE = "architecture"
    ARCH_LAYER = "architecture layer"
    CODE = "code"
    INPUT_SHAPE = "input shape"
    EXECUTION = "execution"
    ARTIFACT = "artifact"


@dataclass(frozen=True)
class Change:
    """One semantic change between two snapshots."""

    action: Action
    target: Target
    text: str
    """The sentence a person would write for this change alone."""
    scope: tuple[str, str, str]
    """The entry the change belongs to: (collection, id, display name), e.g. a pipeline."""
    path: tuple[str, ...] = ()
    """Keys from the document root to what changed."""
    old: Any = None
    new: Any = None
    lines_added: int = 0
    lines_removed: int = 0
    detail: str | None = field(default=None, compare=False)
    """A unified diff for code edits (for ``forge show``)."""

    def to_json(self) -> dict[str, Any]:
        return {
            "action": str(self.action),
            "target": str(self.target),
            "text": self.text,
            "scope": list(self.scope),
            "path": list(self.path),
            "old": self.old,
            "new": self.new,
            "lines_added": self.lines_added,
            "lines_removed": self.lines_removed,
        }


def format_value(value: Any) -> str:
    """Render an attribute value briefly, Python-style (strings quoted, long values cut)."""
    if isinstance(value, str):
        text = repr(value)
    elif value is None or isinstance(value, bool | int | float):
        text = repr(value)
    else:
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
    return text if len(text) <= _VALUE_WIDTH else text[: _VALUE_WIDTH - 1] + "…"


def code_diff(old: str, new: str, label: str = "code") -> tuple[int, int, str]:
    """Return (lines added, lines removed, unified diff) between two versions of code."""
    diff = list(
        difflib.unified_diff(
            old.splitlines(), new.splitlines(), f"a/{label}", f"b/{label}", lineterm="", n=2
        )
    )
    added = sum(1 for line in diff if line.startswith("+") and not line.startswith("+++"))
    removed = sum(1 for line in diff if line.startswith("-") and not line.startswith("---"))
    return added, removed, "\n".join(diff)


def diff_projects(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> list[Change]:
    """List the semantic changes from snapshot ``old`` (None: empty project) to ``new``."""
    old = old or {}
    changes: list[Change] = []
    changes += _meta(old.get("meta", {}), new.get("meta", {}))
    changes += _code_entries("operations", Target.OPERATION, old, new)
    changes += _code_entries("layers", Target.LAYER, old, new)
    changes += _pipelines(old, new)
    changes += _architectures(old, new)
    changes += _executions(old, new)
    changes += _artifacts(old.get("artifacts", {}), new.get("artifacts", {}))
    return changes


# ----- helpers -------------------------------------------------------------------------------


def _keys(old: Mapping[str, Any], new: Mapping[str, Any]) -> Iterator[str]:
    """Keys of both mappings, ordered by the entries' names (then ids) so output is stable."""

    def order(key: str) -> tuple[str, str]:
        entry = new.get(key, old.get(key))
        return (_name(entry, key) if isinstance(entry, Mapping) else key, key)

    yield from sorted({*old, *new}, key=order)


def _name(entry: Mapping[str, Any] | None, fallback: str) -> str:
    name = entry.get("name") if entry else None
    return name if isinstance(name, str) and name else fallback


def _meta(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[Change]:
    before, after = old.get("name"), new.get("name")
    scope = ("meta", "", str(after or before or ""))
    if before and after and before != after:
        return [
            Change(
                Action.RENAMED,
                Target.PROJECT,
                f"Renamed project {before} → {after}",
                scope,
                ("meta", "name"),
                before,
                after,
            )
        ]
    return []


def _entry_changes(
    target: Target,
    collection: str,
    key: str,
    a: Mapping[str, Any] | None,
    b: Mapping[str, Any] | None,
    *,
    added: str = "Created",
) -> list[Change]:
    """A top-level entry's own addition, deletion or renaming (callers diff what is inside)."""
    name = _name(b or a, key)
    scope = (collection, key, name)
    path = (collection, key)
    if b is None:
        return [Change(Action.REMOVED, target, f"Deleted {target} {name}", scope, path, name, None)]
    if a is None:
        return [Change(Action.ADDED, target, f"{added} {target} {name}", scope, path, None, name)]
    if a.get("name") == b.get("name"):
        return []
    text = f"Renamed {target} {a.get('name')} → {name}"
    return [Change(Action.RENAMED, target, text, scope, (*path, "name"), a.get("name"), name)]


def _code_entries(
    collection: str, target: Target, old_root: Mapping[str, Any], new_root: Mapping[str, Any]
) -> list[Change]:
    """Operations and custom layers: added, deleted, renamed, code edited."""
    old, new = old_root.get(collection, {}), new_root.get(collection, {})
    changes: list[Change] = []
    for key in _keys(old, new):
        a, b = old.get(key), new.get(key)
        name = _name(b or a, key)
        scope = (collection, key, name)
        path = (collection, key)
        changes += _entry_changes(target, collection, key, a, b, added="Added")
        if a is None or b is None:
            continue
        if a.get("code", "") != b.get("code", ""):
            plus, minus, detail = code_diff(a.get("code", ""), b.get("code", ""), name)
            changes.append(
                Change(
                    Action.EDITED,
                    Target.CODE,
                    f"Edited code of {target} {name} (+{plus} −{minus} lines)",
                    scope,
                    (*path, "code"),
                    lines_added=plus,
                    lines_removed=minus,
                    detail=detail,
                )
            )
        if bool(a.get("builtin")) != bool(b.get("builtin")):
            state = "built-in" if b.get("builtin") else "user-defined"
            changes.append(
                Change(
                    Action.CHANGED,
                    target,
                    f"Marked {target} {name} {state}",
                    scope,
                    (*path, "builtin"),
                    a.get("builtin"),
                    b.get("builtin"),
                )
            )
    return changes


def _pipelines(old_root: Mapping[str, Any], new_root: Mapping[str, Any]) -> list[Change]:
    old, new = old_root.get("pipelines", {}), new_root.get("pipelines", {})
    old_ops, new_ops = old_root.get("operations", {}), new_root.get("operations", {})
    changes: list[Change] = []
    for key in _keys(old, new):
        a, b = old.get(key), new.get(key)
        name = _name(b or a, key)
        scope = ("pipelines", key, name)
        changes += _entry_changes(Target.PIPELINE, "pipelines", key, a, b)
        if b is None:
            continue
        if a is None:
            a = {}
        changes += _nodes(a.get("nodes", {}), b.get("nodes", {}), old_ops, new_ops, scope)
        changes += _edges(a, b, scope)
    return changes


def _op_name(op_id: str, *operation_maps: Mapping[str, Any]) -> str:
    for ops in operation_maps:
        if op_id in ops:
            return _name(ops[op_id], op_id)
    return op_id


def _nodes(
    old: Mapping[str, Any],
    new: Mapping[str, Any],
    old_ops: Mapping[str, Any],
    new_ops: Mapping[str, Any],
    scope: tuple[str, str, str],
) -> list[Change]:
    where = f"in pipeline {scope[2]}"
    changes: list[Change] = []
    for key in _keys(old, new):
        a, b = old.get(key), new.get(key)
        path = ("pipelines", scope[1], "nodes", key)
        if a is None or b is None:
            node = b or a
            assert node is not None
            node_name = _name(node, key)
            op = _op_name(node.get("operation", ""), new_ops, old_ops)
            if a is None:
                alias = "" if node_name == op else f" as {node_name}"
                text = f"Added operation {op}{alias} to pipeline {scope[2]}"
                changes.append(
                    Change(Action.ADDED, Target.NODE, text, scope, path, None, node_name)
                )
            else:
                text = f"Removed {node_name} from pipeline {scope[2]}"
                changes.append(
                    Change(Action.REMOVED, Target.NODE, text, scope, path, node_name, None)
                )
            continue
        node_name = _name(b, key)
        if a.get("name") != b.get("name"):
            changes.append(
                Change(
                    Action.RENAMED,
                    Target.NODE,
                    f"Renamed {_name(a, key)} → {node_name} {where}",
                    scope,
                    (*path, "name"),
                    a.get("name"),
                    b.get("name"),
                )
            )
        if a.get("operation") != b.get("operation"):
            op = _op_name(b.get("operation", ""), new_ops, old_ops)
            changes.append(
                Change(
                    Action.CHANGED,
                    Target.NODE,
                    f"Switched {node_name} to operation {op} {where}",
                    scope,
                    (*path, "operation"),
                    a.get("operation"),
                    b.get("operation"),
                )
            )
        for key_name, target in (
            ("attributes", Target.ATTRIBUTE),
            ("references", Target.REFERENCE),
            ("settings", Target.SETTING),
        ):
            changes += _values(
                a.get(key_name, {}),
                b.get(key_name, {}),
                node_name,
                where,
                target=target,
                scope=scope,
                path=(*path, key_name),
            )
    return changes


def _values(
    old: Mapping[str, Any],
    new: Mapping[str, Any],
    owner: str,
    where: str,
    *,
    target: Target,
    scope: tuple[str, str, str],
    path: tuple[str, ...],
) -> list[Change]:
    """Attribute-like maps: "Set Train.lr 0.01 → 0.001", "Set Train.lr to 0.1", "Cleared"."""
    changes: list[Change] = []
    for key in _keys(old, new):
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


def _endpoint(nodes: Mapping[str, Any], fallback: Mapping[str, Any], node_id: str) -> str:
    return _name(nodes.get(node_id) or fallback.get(node_id), node_id)


def _edges(
    old_pipe: Mapping[str, Any], new_pipe: Mapping[str, Any], scope: tuple[str, str, str]
) -> list[Change]:
    old_nodes, new_nodes = old_pipe.get("nodes", {}), new_pipe.get("nodes", {})
    old, new = old_pipe.get("edges", {}), new_pipe.get("edges", {})

    def describe(
        edge: Mapping[str, Any], nodes: Mapping[str, Any], other: Mapping[str, Any]
    ) -> str:
        src = _endpoint(nodes, other, edge.get("src", ""))
        dst = _endpoint(nodes, other, edge.get("dst", ""))
        return f"{src}.{edge.get('src_port')} → {dst}.{edge.get('dst_port')}"

    changes: list[Change] = []
    for key in _keys(old, new):
        a, b = old.get(key), new.get(key)
        if a == b:
            continue
        path = ("pipelines", scope[1], "edges", key)
        if a is not None:
            text = describe(a, old_nodes, new_nodes)
            changes.append(
                Change(
                    Action.DISCONNECTED,
                    Target.CONNECTION,
                    f"Disconnected {text}",
                    scope,
                    path,
                    text,
                    None,
                )
            )
        if b is not None:
            text = describe(b, new_nodes, old_nodes)
            changes.append(
                Change(
                    Action.CONNECTED,
                    Target.CONNECTION,
                    f"Connected {text}",
                    scope,
                    path,
                    None,
                    text,
                )
            )
    return changes


def _architectures(old_root: Mapping[str, Any], new_root: Mapping[str, Any]) -> list[Change]:
    old, new = old_root.get("architectures", {}), new_root.get("architectures", {})
    changes: list[Change] = []
    for key in _keys(old, new):
        a, b = old.get(key), new.get(key)
        name = _name(b or a, key)
        scope = ("architectures", key, name)
        path = ("architectures", key)
        where = f"in architecture {name}"
        changes += _entry_changes(Target.ARCHITECTURE, "architectures", key, a, b)
        if b is None:
            continue
        if a is None:
            a = {"input_shape": b.get("input_shape")}
        if a.get("input_shape") != b.get("input_shape"):
            changes.append(
                Change(
                    Action.CHANGED,
                    Target.INPUT_SHAPE,
                    f"Set input shape of architecture {name} "
                    f"{format_value(a.get('input_shape'))} → "
                    f"{format_value(b.get('input_shape'))}",
                    scope,
                    (*path, "input_shape"),
                    a.get("input_shape"),
                    b.get("input_shape"),
                )
            )
        old_layers, new_layers = a.get("layers", {}), b.get("layers", {})
        for lid in _keys(old_layers, new_layers):
            la, lb = old_layers.get(lid), new_layers.get(lid)
            lpath = (*path, "layers", lid)
            if la is None or lb is None:
                layer = lb or la
                assert layer is not None
                lname, ltype = _name(layer, lid), layer.get("type", "?")
                label = ltype if lname == ltype else f"{lname} ({ltype})"
                if la is None:
                    changes.append(
                        Change(
                            Action.ADDED,
                            Target.ARCH_LAYER,
                            f"Added layer {label} to architecture {name}",
                            scope,
                            lpath,
                            None,
                            lname,
                        )
                    )
                else:
                    changes.append(
                        Change(
                            Action.REMOVED,
                            Target.ARCH_LAYER,
                            f"Removed layer {label} from architecture {name}",
                            scope,
                            lpath,
                            lname,
                            None,
                        )
                    )
                continue
            lname = _name(lb, lid)
            if la.get("name") != lb.get("name"):
                changes.append(
                    Change(
                        Action.RENAMED,
                        Target.ARCH_LAYER,
                        f"Renamed layer {_name(la, lid)} → {lname} {where}",
                        scope,
                        (*lpath, "name"),
                        la.get("name"),
                        lb.get("name"),
                    )
                )
            if la.get("type") != lb.get("type"):
                changes.append(
                    Change(
                        Action.CHANGED,
                        Target.ARCH_LAYER,
                        f"Changed layer {lname} {la.get('type')} → {lb.get('type')} {where}",
                        scope,
                        (*lpath, "type"),
                        la.get("type"),
                        lb.get("type"),
                    )
                )
            changes += _values(
                la.get("attributes", {}),
                lb.get("attributes", {}),
                lname,
                where,
                target=Target.ATTRIBUTE,
                scope=scope,
                path=(*lpath, "attributes"),
            )
        old_edges, new_edges = a.get("edges", {}), b.get("edges", {})
        for eid in _keys(old_edges, new_edges):
            ea, eb = old_edges.get(eid), new_edges.get(eid)
            if ea == eb:
                continue
            epath = (*path, "edges", eid)
            for edge, action, verb, layers, other in (
                (ea, Action.DISCONNECTED, "Disconnected", old_layers, new_layers),
                (eb, Action.CONNECTED, "Connected", new_layers, old_layers),
            ):
                if edge is None:
                    continue
                src = _endpoint(layers, other, edge.get("src", ""))
                dst = _endpoint(layers, other, edge.get("dst", ""))
                index = edge.get("index", 0)
                suffix = f" (input {index})" if index else ""
                text = f"{src} → {dst}{suffix}"
                changes.append(
                    Change(
                        action,
                        Target.CONNECTION,
                        f"{verb} {text} {where}",
                        scope,
                        epath,
                        text if edge is ea else None,
                        text if edge is eb else None,
                    )
                )
    return changes


def _executions(old_root: Mapping[str, Any], new_root: Mapping[str, Any]) -> list[Change]:
    old, new = old_root.get("executions", {}), new_root.get("executions", {})
    pipelines = {**old_root.get("pipelines", {}), **new_root.get("pipelines", {})}
    changes: list[Change] = []
    for key in _keys(old, new):
        a, b = old.get(key), new.get(key)
        entry = b or a
        assert entry is not None
        pipe = _name(pipelines.get(entry.get("pipeline", "")), entry.get("pipeline", "?"))
        scope = ("executions", key, f"execution {key}")
        path = ("executions", key)
        if a is None:
            text = f"Ran pipeline {pipe} (execution {key})"
            changes.append(Change(Action.ADDED, Target.EXECUTION, text, scope, path, None, key))
        elif b is None:
            text = f"Deleted execution {key} of pipeline {pipe}"
            changes.append(Change(Action.REMOVED, Target.EXECUTION, text, scope, path, key, None))
        elif a.get("status") != b.get("status"):
            text = f"Execution {key} of pipeline {pipe} {b.get('status')}"
            changes.append(
                Change(
                    Action.CHANGED,
                    Target.EXECUTION,
                    text,
                    scope,
                    (*path, "status"),
                    a.get("status"),
                    b.get("status"),
                )
            )
    return changes


def _artifacts(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[Change]:
    changes: list[Change] = []
    for key in _keys(old, new):
        a, b = old.get(key), new.get(key)
        scope = ("artifacts", key, key)
        path = ("artifacts", key)
        if a is None:
            changes.append(
                Change(
                    Action.ADDED,
                    Target.ARTIFACT,
                    f"Recorded artifact {key}",
                    scope,
                    path,
                    None,
                    b and b.get("hash"),
                )
            )
        elif b is None:
            changes.append(
                Change(
                    Action.REMOVED,
                    Target.ARTIFACT,
                    f"Removed artifact {key}",
                    scope,
                    path,
                    a.get("hash"),
                    None,
                )
            )
        elif a.get("hash") != b.get("hash"):
            changes.append(
                Change(
                    Action.CHANGED,
                    Target.ARTIFACT,
                    f"Updated artifact {key}",
                    scope,
                    path,
                    a.get("hash"),
                    b.get("hash"),
                )
            )
    return changes
