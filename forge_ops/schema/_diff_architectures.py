"""Semantic diff of the architectures of two project snapshots: input shape, layers, edges."""

from __future__ import annotations

from collections.abc import Mapping

from ._changes import Action, Change, Scope, Target, format_value
from ._diff_common import display_name, endpoint_name, entry_changes, ordered_keys, value_changes
from ._types import ArchEdge, Architecture, ArchLayer, Project


def architecture_changes(old_root: Project, new_root: Project) -> list[Change]:
    old, new = old_root["architectures"], new_root["architectures"]
    changes: list[Change] = []
    for key in ordered_keys(old, new):
        a, b = old.get(key), new.get(key)
        name = display_name(b or a, key)
        scope = ("architectures", key, name)
        path = ("architectures", key)
        changes += entry_changes(Target.ARCHITECTURE, "architectures", key, a, b)
        if b is None:
            continue
        if a is None:
            a = Architecture(name=b["name"], input_shape=b["input_shape"], layers={}, edges={})
        if a["input_shape"] != b["input_shape"]:
            changes.append(
                Change(
                    Action.CHANGED,
                    Target.INPUT_SHAPE,
                    f"Set input shape of architecture {name} "
                    f"{format_value(a['input_shape'])} → "
                    f"{format_value(b['input_shape'])}",
                    scope,
                    (*path, "input_shape"),
                    a["input_shape"],
                    b["input_shape"],
                )
            )
        changes += _layers(a["layers"], b["layers"], scope)
        changes += _edges(a, b, scope)
    return changes


def _layers(
    old: Mapping[str, ArchLayer], new: Mapping[str, ArchLayer], scope: Scope
) -> list[Change]:
    name = scope[2]
    where = f"in architecture {name}"
    changes: list[Change] = []
    for lid in ordered_keys(old, new):
        la, lb = old.get(lid), new.get(lid)
        lpath = ("architectures", scope[1], "layers", lid)
        if la is None or lb is None:
            layer = lb or la
            assert layer is not None
            lname, ltype = display_name(layer, lid), layer["type"]
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
        lname = display_name(lb, lid)
        if la["name"] != lb["name"]:
            changes.append(
                Change(
                    Action.RENAMED,
                    Target.ARCH_LAYER,
                    f"Renamed layer {display_name(la, lid)} → {lname} {where}",
                    scope,
                    (*lpath, "name"),
                    la["name"],
                    lb["name"],
                )
            )
        if la["type"] != lb["type"]:
            changes.append(
                Change(
                    Action.CHANGED,
                    Target.ARCH_LAYER,
                    f"Changed layer {lname} {la['type']} → {lb['type']} {where}",
                    scope,
                    (*lpath, "type"),
                    la["type"],
                    lb["type"],
                )
            )
        changes += value_changes(
            la["attributes"],
            lb["attributes"],
            lname,
            where,
            target=Target.ATTRIBUTE,
            scope=scope,
            path=(*lpath, "attributes"),
        )
    return changes


def _edges(a: Architecture, b: Architecture, scope: Scope) -> list[Change]:
    where = f"in architecture {scope[2]}"
    old_layers, new_layers = a["layers"], b["layers"]
    old_edges, new_edges = a["edges"], b["edges"]
    changes: list[Change] = []
    for eid in ordered_keys(old_edges, new_edges):
        ea, eb = old_edges.get(eid), new_edges.get(eid)
        if ea == eb:
            continue
        epath = ("architectures", scope[1], "edges", eid)
        sides: tuple[tuple[ArchEdge | None, Action, str, Mapping[str, ArchLayer],
                           Mapping[str, ArchLayer]], ...] = (
            (ea, Action.DISCONNECTED, "Disconnected", old_layers, new_layers),
            (eb, Action.CONNECTED, "Connected", new_layers, old_layers),
        )
        for edge, action, verb, layers, other in sides:
            if edge is None:
                continue
            src = endpoint_name(layers, other, edge["src"])
            dst = endpoint_name(layers, other, edge["dst"])
            index = edge["index"]
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
