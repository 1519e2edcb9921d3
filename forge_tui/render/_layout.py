"""Layered (Sugiyama-style) layout: ranks, dummy nodes for long edges, crossing reduction, x.

Long edges get one dummy item per rank they cross, so they are ordered and placed like thin
nodes: their vertical runs sit *between* boxes and can never cut through one.
"""

from __future__ import annotations

import graphlib
from bisect import bisect_right, insort
from dataclasses import dataclass
from itertools import pairwise

from forge_tui.render._box import BoxGeometry


@dataclass
class Item:
    """A box or a dummy (the width-1 passage of a long edge through a rank)."""

    key: str
    rank: int
    width: int
    box: BoxGeometry | None = None

    def in_off(self, port: str) -> int:
        return self.box.input_at[port] if self.box else 0

    def out_off(self, port: str) -> int:
        return self.box.output_at[port] if self.box else 0


@dataclass
class Segment:
    """One rank-to-rank piece of an edge; ``net`` groups pieces leaving the same output port."""

    src: Item
    src_port: str
    dst: Item
    dst_port: str
    net: tuple[str, str]
    label: str = ""


def acyclic(nodes: list[str], edges: list[tuple[str, str]]) -> set[tuple[str, str]]:
    """The back edges a depth-first search finds; dropping them leaves a DAG."""
    succ: dict[str, list[str]] = {n: [] for n in nodes}
    for u, v in edges:
        succ[u].append(v)
    state: dict[str, int] = {}
    back: set[tuple[str, str]] = set()
    for root in nodes:
        if root in state:
            continue
        state[root] = 1
        stack = [(root, iter(succ[root]))]
        while stack:
            n, it = stack[-1]
            for m in it:
                if state.get(m) == 1:
                    back.add((n, m))
                elif m not in state:
                    state[m] = 1
                    stack.append((m, iter(succ[m])))
                    break
            else:
                state[n] = 2
                stack.pop()
    return back


def assign_ranks(nodes: list[str], edges: list[tuple[str, str]]) -> dict[str, int]:
    """Longest path from the sources, then sources pulled down next to their first consumer."""
    preds: dict[str, set[str]] = {n: set() for n in nodes}
    succs: dict[str, set[str]] = {n: set() for n in nodes}
    for u, v in edges:
        preds[v].add(u)
        succs[u].add(v)
    rank: dict[str, int] = {}
    for n in graphlib.TopologicalSorter(preds).static_order():
        rank[n] = max((rank[p] + 1 for p in preds[n]), default=0)
    for n in nodes:
        if not preds[n] and succs[n]:
            rank[n] = min(rank[s] for s in succs[n]) - 1
    return rank


def count_crossings(segments: list[tuple[float, float]]) -> int:
    """Crossings between two ranks, given (upper position, lower position) per segment."""
    seen: list[float] = []
    crossings = 0
    for _, lower in sorted(segments):
        crossings += len(seen) - bisect_right(seen, lower)
        insort(seen, lower)
    return crossings


def _port_fraction(item: Item, port: str, outgoing: bool) -> float:
    box = item.box
    if box is None:
        return 0.5
    order = box.outputs if outgoing else box.inputs
    return (order.index(port) + 0.5) / len(order) if port in order else 0.5


def order_ranks(ranks: list[list[Item]], segments: list[Segment], sweeps: int) -> list[list[Item]]:
    """Barycentre sweeps down and up, keeping the ordering with the fewest crossings."""
    by_upper: list[list[Segment]] = [[] for _ in ranks]
    for seg in segments:
        by_upper[seg.src.rank].append(seg)
    src_frac = {id(s): _port_fraction(s.src, s.src_port, True) for s in segments}
    dst_frac = {id(s): _port_fraction(s.dst, s.dst_port, False) for s in segments}

    def total(order: list[list[Item]]) -> int:
        pos = {it.key: i for rank in order for i, it in enumerate(rank)}
        return sum(
            count_crossings(
                [(pos[s.src.key] + src_frac[id(s)], pos[s.dst.key] + dst_frac[id(s)]) for s in segs]
            )
            for segs in by_upper
        )

    best = [list(r) for r in ranks]
    best_score = total(best)
    current = [list(r) for r in ranks]
    for sweep in range(sweeps):
        down = sweep % 2 == 0
        indices = range(1, len(current)) if down else range(len(current) - 2, -1, -1)
        for r in indices:
            fixed = current[r - 1] if down else current[r + 1]
            pos = {it.key: i for i, it in enumerate(fixed)}
            sums: dict[str, list[float]] = {}
            segs = by_upper[r - 1] if down else by_upper[r]
            for s in segs:
                if down:
                    sums.setdefault(s.dst.key, []).append(pos[s.src.key] + src_frac[id(s)])
                else:
                    sums.setdefault(s.src.key, []).append(pos[s.dst.key] + dst_frac[id(s)])
            keyed = []
            for i, it in enumerate(current[r]):
                vals = sums.get(it.key)
                keyed.append((sum(vals) / len(vals) if vals else i, i, it))
            keyed.sort(key=lambda k: (k[0], k[1]))
            current[r] = [k[2] for k in keyed]
        score = total(current)
        if score < best_score:
            best, best_score = [list(r) for r in current], score
        if best_score == 0:
            break
    return best


def _pava(targets: list[float]) -> list[float]:
    """Closest non-decreasing sequence in least squares (pool adjacent violators)."""
    if all(a <= b for a, b in pairwise(targets)):
        return targets  # most ranks: already in order (one item, or spread out)
    blocks: list[list[float]] = []  # [sum, count]
    for t in targets:
        blocks.append([t, 1.0])
        while len(blocks) > 1 and blocks[-2][0] / blocks[-2][1] > blocks[-1][0] / blocks[-1][1]:
            s, c = blocks.pop()
            blocks[-1][0] += s
            blocks[-1][1] += c
    out: list[float] = []
    for s, c in blocks:
        out.extend([s / c] * int(c))
    return out


def place_x(
    ranks: list[list[Item]], segments: list[Segment], box_gap: int, dummy_gap: int
) -> dict[str, int]:
    """Columns per item: each rank keeps its order and gaps, pulled towards its neighbours."""
    return _place(ranks, segments, box_gap, dummy_gap, mirror=False)


def balance_x(
    placed: dict[str, int],
    ranks: list[list[Item]],
    segments: list[Segment],
    box_gap: int,
    dummy_gap: int,
) -> dict[str, int]:
    """``placed`` averaged with the mirror image's placement (as Brandes and Köpf balance their
    alignments): in a long chain with skip connections, whose bypasses always sit on one side,
    each block would otherwise push the chain a little further sideways."""
    x = dict(placed)
    mirrored = _place(ranks, segments, box_gap, dummy_gap, mirror=True)
    offsets = _offsets(ranks, box_gap, dummy_gap)
    for rank, offs in zip(ranks, offsets, strict=True):
        wishes = [
            (x[it.key] + mirrored[it.key]) / 2 - off for it, off in zip(rank, offs, strict=True)
        ]
        for it, y, off in zip(rank, _pava(wishes), offs, strict=True):
            x[it.key] = round(y) + off
    low = min(x.values(), default=0)
    return {k: v - low for k, v in x.items()}


def _gap(a: Item, b: Item, box_gap: int, dummy_gap: int) -> int:
    return box_gap if a.box and b.box else dummy_gap


def _offsets(ranks: list[list[Item]], box_gap: int, dummy_gap: int) -> list[list[int]]:
    """Each item's least distance from its rank's first item (widths and gaps)."""
    offsets: list[list[int]] = []
    for rank in ranks:
        acc, offs = 0, []
        for i, it in enumerate(rank):
            offs.append(acc)
            if i + 1 < len(rank):
                acc += it.width + _gap(it, rank[i + 1], box_gap, dummy_gap)
        offsets.append(offs)
    return offsets


def _place(
    ranks: list[list[Item]], segments: list[Segment], box_gap: int, dummy_gap: int, mirror: bool
) -> dict[str, int]:
    """:func:`place_x` for one orientation; ``mirror`` places the graph flipped left to right
    (and returns columns in the unflipped orientation)."""
    if mirror:
        ranks = [list(reversed(rank)) for rank in ranks]

    def in_off(it: Item, port: str) -> int:
        return it.width - 1 - it.in_off(port) if mirror else it.in_off(port)

    def out_off(it: Item, port: str) -> int:
        return it.width - 1 - it.out_off(port) if mirror else it.out_off(port)

    offsets = _offsets(ranks, box_gap, dummy_gap)
    widest = max((o[-1] + r[-1].width for o, r in zip(offsets, ranks, strict=True) if r), default=0)
    x: dict[str, int] = {}
    for rank, offs in zip(ranks, offsets, strict=True):
        span = offs[-1] + rank[-1].width if rank else 0
        start = (widest - span) // 2
        for it, off in zip(rank, offs, strict=True):
            x[it.key] = start + off
    # Each neighbour as (its key, the column offset that lines the two ports up), computed
    # once: the sweeps below only look these up.
    above: dict[str, list[tuple[str, int]]] = {}
    below: dict[str, list[tuple[str, int]]] = {}
    for s in segments:
        above.setdefault(s.dst.key, []).append(
            (s.src.key, out_off(s.src, s.src_port) - in_off(s.dst, s.dst_port))
        )
        below.setdefault(s.src.key, []).append(
            (s.dst.key, in_off(s.dst, s.dst_port) - out_off(s.src, s.src_port))
        )
    no_neighbours: list[tuple[str, int]] = []

    def wish(it: Item, up: bool, down: bool) -> float:
        vals = [x[k] + c for k, c in above.get(it.key, no_neighbours)] if up else []
        if down:
            vals += [x[k] + c for k, c in below.get(it.key, no_neighbours)]
        if not vals:
            return float(x[it.key])
        vals.sort()
        return vals[(len(vals) - 1) // 2]  # a real neighbour, so at least one edge runs straight

    def sweep(indices: range | list[int], up: bool, down: bool) -> None:
        for r in indices:
            rank, offs = ranks[r], offsets[r]
            if not rank:
                continue
            ys = _pava([wish(it, up, down) - off for it, off in zip(rank, offs, strict=True)])
            for it, y, off in zip(rank, ys, offs, strict=True):
                x[it.key] = round(y) + off

    n = len(ranks)
    for _ in range(2):
        sweep(range(1, n), True, False)
        sweep(range(n - 2, -1, -1), False, True)
    sweep(list(range(n)), True, True)
    if mirror:
        return {it.key: -(x[it.key] + it.width - 1) for rank in ranks for it in rank}
    low = min(x.values(), default=0)
    return {k: v - low for k, v in x.items()}
