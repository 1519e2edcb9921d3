"""Ordering and cycle checks for the small directed graphs Forge draws: pipelines (nodes and
edges), architectures (layers) and plans (jobs). One implementation for the domain, the
exporters and the terminal client, light enough for the TUI to import (standard library only)."""

from __future__ import annotations

import graphlib
from collections.abc import Callable, Hashable, Iterable, Mapping
from typing import Any, TypeVar

__all__ = [
    "CycleFound", "all_cycles", "find_cycle", "reaches", "static_order", "topological_order",
]

K = TypeVar("K", bound=Hashable)


class CycleFound(ValueError):
    """The graph has a cycle; ``cycle`` lists its nodes in order, first node repeated last."""

    def __init__(self, cycle: list[Any]) -> None:
        super().__init__(f"cycle: {' -> '.join(map(str, cycle))}")
        self.cycle = cycle


def _sorter(deps: Mapping[K, Iterable[K]]) -> graphlib.TopologicalSorter[K]:
    sorter: graphlib.TopologicalSorter[K] = graphlib.TopologicalSorter()
    for node, before in deps.items():
        sorter.add(node, *before)
    return sorter


def find_cycle(deps: Mapping[K, Iterable[K]]) -> list[K] | None:
    """One cycle of ``deps`` (node → the nodes it depends on), or None when there is none.

    The cycle is listed as graphlib gives it: first node repeated last."""
    try:
        _sorter(deps).prepare()
    except graphlib.CycleError as exc:
        return list(exc.args[1])
    return None


def topological_order(deps: Mapping[K, Iterable[K]],
                      key: Callable[[K], Any] | None = None) -> list[K]:
    """Every node of ``deps`` (node → the nodes it depends on) after all it depends on.

    Nodes that become ready together are sorted by ``key`` (their own order by default), so the
    result does not depend on dict order. Raises :class:`CycleFound` naming one cycle."""
    sorter = _sorter(deps)
    try:
        sorter.prepare()
    except graphlib.CycleError as exc:
        raise CycleFound(list(exc.args[1])) from exc
    order: list[K] = []
    while sorter.is_active():
        ready = sorted(sorter.get_ready(), key=key or _itself)
        order.extend(ready)
        sorter.done(*ready)
    return order


def static_order(deps: Mapping[K, Iterable[K]]) -> list[K]:
    """Every node of ``deps`` after all it depends on, in graphlib's own order (nodes that become
    ready together in the order graphlib first met them): the order job plans have always had.
    Raises :class:`CycleFound` naming one cycle."""
    try:
        return list(_sorter(deps).static_order())
    except graphlib.CycleError as exc:
        raise CycleFound(list(exc.args[1])) from exc


def _itself(node: Any) -> Any:
    return node


def all_cycles(deps: Mapping[K, Iterable[K]]) -> list[list[K]]:
    """Separate cycles of ``deps``, one per strongly tangled group: graphlib names one cycle at a
    time, so its nodes are dropped and the rest searched again. Self-loops are left out (callers
    report them on their own, as bad edges)."""
    # Lists in the caller's order, not sets: which cycle graphlib names (and from which node)
    # follows insertion order, and set order of strings changes from one process to the next.
    remaining = {node: [d for d in dict.fromkeys(before) if d != node]
                 for node, before in deps.items()}
    cycles: list[list[K]] = []
    while (cycle := find_cycle(remaining)) is not None:
        cycles.append(cycle)
        for node in cycle:
            remaining.pop(node, None)
        remaining = {node: [d for d in before if d in remaining]
                     for node, before in remaining.items()}
    return cycles


def reaches(edges: Iterable[tuple[K, K]], start: K, goal: K) -> bool:
    """Whether ``goal`` can be reached from ``start`` along ``edges`` (src, dst): adding the
    edge goal → start would close a cycle exactly when this is true."""
    successors: dict[K, list[K]] = {}
    for src, dst in edges:
        successors.setdefault(src, []).append(dst)
    seen = {start}
    stack = [start]
    while stack:
        node = stack.pop()
        if node == goal:
            return True
        for nxt in successors.get(node, ()):
            if nxt not in seen:
                seen.add(nxt)
                stack.append(nxt)
    return False
