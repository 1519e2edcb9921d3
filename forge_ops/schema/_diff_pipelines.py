"""Semantic diff of the pipelines of two project snapshots: nodes, their values, connections."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from ._changes import Action, Change, Scope, Target
from ._diff_common import display_name, endpoint_name, entry_changes, ordered_keys, value_changes
from ._types import Edge, Node, Operation, Pipeline, Project

_NODE_VALUES: tuple[tuple[Literal["attributes", "references", "settings"], Target], ...] = (
    ("attributes", Target.ATTRIBUTE),
    ("references", Target.REFERENCE),
    ("settings", Target.SETTING),
)


def pipeline_changes(old_root: Project, new_root: Project) -> list[Change]:
    old, new = old_root["pipelines"], new_root["pipelines"]
    old_ops, new_ops = old_root["operations"], new_root["operations"]
    changes: list[Change] = []
    for key in ordered_keys(old, new):
        a, b = old.get(key), new.get(key)
        name = display_name(b or a, key)
        scope = ("pipelines", key, name)
        changes += entry_changes(Target.PIPELINE, "pipelines", key, a, b)
        if b is None:
            continue
        if a is None:
            a = Pipeline(name=b["name"], nodes={}, edges={})
        changes += _nodes(a["nodes"], b["nodes"], old_ops, new_ops, scope)
        changes += _edges(a, b, scope)
    return changes


def _op_name(op_id: str, *operation_maps: Mapping[str, Operation]) -> str:
    for ops in operation_maps:
        if op_id in ops:
            return display_name(ops[op_id], op_id)
    return op_id


def _nodes(
    old: Mapping[str, Node],
    new: Mapping[str, Node],
    old_ops: Mapping[str, Operation],
    new_ops: Mapping[str, Operation],
    scope: Scope,
) -> list[Change]:
    where = f"in pipeline {scope[2]}"
    changes: list[Change] = []
    for key in ordered_keys(old, new):
        a, b = old.get(key), new.get(key)
        path = ("pipelines", scope[1], "nodes", key)
        if a is None or b is None:
            node = b or a
            assert node is not None
            node_name = display_name(node, key)
            op = _op_name(node["operation"], new_ops, old_ops)
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
        node_name = display_name(b, key)
        if a["name"] != b["name"]:
            changes.append(
                Change(
                    Action.RENAMED,
                    Target.NODE,
                    f"Renamed {display_name(a, key)} → {node_name} {where}",
                    scope,
                    (*path, "name"),
                    a["name"],
                    b["name"],
                )
            )
        if a["operation"] != b["operation"]:
            op = _op_name(b["operation"], new_ops, old_ops)
            changes.append(
                Change(
                    Action.CHANGED,
                    Target.NODE,
                    f"Switched {node_name} to operation {op} {where}",
                    scope,
                    (*path, "operation"),
                    a["operation"],
                    b["operation"],
                )
            )
        for key_name, target in _NODE_VALUES:
            changes += value_changes(
                a[key_name],
                b[key_name],
                node_name,
                where,
                target=target,
                scope=scope,
                path=(*path, key_name),
            )
    return changes


def _edges(old_pipe: Pipeline, new_pipe: Pipeline, scope: Scope) -> list[Change]:
    old_nodes, new_nodes = old_pipe["nodes"], new_pipe["nodes"]
    old, new = old_pipe["edges"], new_pipe["edges"]

    def describe(edge: Edge, nodes: Mapping[str, Node], other: Mapping[str, Node]) -> str:
        src = endpoint_name(nodes, other, edge["src"])
        dst = endpoint_name(nodes, other, edge["dst"])
        return f"{src}.{edge['src_port']} → {dst}.{edge['dst_port']}"

    changes: list[Change] = []
    for key in ordered_keys(old, new):
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
