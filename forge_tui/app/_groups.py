"""Collapsing an architecture's blocks into group boxes (display only; the document is as is).

An imported network names its layers by module path (``blocks.3.attn.qkv``). Collapsing the
prefix ``blocks.3`` draws every layer under it as one box, together with the functional nodes
on paths between them (reshapes, sizes, attention, inner residual adds). Edges into and out
of the block attach to the box.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any

from forge_tui.render import EdgeSpec, GraphSpec, NodeSpec

GROUP = "group:"  # a group box's id is GROUP + its prefix


def group_prefix(node_id: str) -> str | None:
    return node_id[len(GROUP) :] if node_id.startswith(GROUP) else None


def parent_prefix(name: str) -> str | None:
    """``blocks.3.attn.qkv`` -> ``blocks.3.attn``; None for a top-level name."""
    head, dot, _ = name.rpartition(".")
    return head if dot else None


def members(layers: Mapping[str, Any], edges: Iterable[Mapping[str, Any]], prefix: str) -> set[str]:
    """Layer ids inside ``prefix``: those named under it, and everything on a path between two
    of them (the reshapes and sizes of its attention, its inner residual adds), so the box
    never sits on a cycle. What only leaves the block (its last add) stays outside."""
    named = {lid for lid, layer in layers.items() if str(layer["name"]).startswith(prefix + ".")}
    forward: dict[str, set[str]] = {lid: set() for lid in layers}
    backward: dict[str, set[str]] = {lid: set() for lid in layers}
    for edge in edges:
        if edge["src"] in layers and edge["dst"] in layers:
            forward[edge["src"]].add(edge["dst"])
            backward[edge["dst"]].add(edge["src"])
    return named | (_reach(named, forward) & _reach(named, backward))


def _reach(start: set[str], step: Mapping[str, set[str]]) -> set[str]:
    seen: set[str] = set()
    stack = [n for s in start for n in step[s]]
    while stack:
        node = stack.pop()
        if node not in seen:
            seen.add(node)
            stack.extend(step[node])
    return seen


def collapse(
    spec: GraphSpec, arch: Mapping[str, Any], prefixes: Iterable[str], selected: str | None
) -> tuple[GraphSpec, dict[str, str]]:
    """The spec with each prefix's members drawn as one box; also member id -> group id."""
    layers = arch["layers"]
    edges = list(arch["edges"].values())
    owner: dict[str, str] = {}
    counts: dict[str, int] = {}
    for prefix in sorted(set(prefixes), key=len):  # outer groups first, inner ones nested
        found = members(layers, edges, prefix) - set(owner)
        if found:
            counts[GROUP + prefix] = len(found)
            owner.update(dict.fromkeys(found, GROUP + prefix))
    if not owner:
        return spec, owner
    nodes = [node for node in spec.nodes if node.id not in owner]
    marks: dict[str, list[Any]] = {}  # where others have selected a member
    for node in spec.nodes:
        if node.id in owner:
            marks.setdefault(owner[node.id], []).extend(node.marks)
    for group, count in counts.items():
        nodes.append(
            NodeSpec(
                id=group,
                title=group[len(GROUP) :],
                subtitle=f"group of {count} layers",
                lines=("g: expand",),
                inputs=("",),
                outputs=("",),
                selected=group == selected,
                marks=tuple(marks.get(group, ())),
            )
        )
    kept: dict[tuple[str, str, str], EdgeSpec] = {}
    for edge in spec.edges:
        src, dst = owner.get(edge.src, edge.src), owner.get(edge.dst, edge.dst)
        if src == dst:
            continue  # inside one group
        port = "" if dst in counts else edge.dst_port
        kept.setdefault((src, dst, port), replace(edge, src=src, dst=dst, dst_port=port))
    return GraphSpec(tuple(nodes), tuple(kept.values())), owner
