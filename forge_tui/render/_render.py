"""``render_graph``: a graph description in, a styled character grid and box positions out."""

from __future__ import annotations

import dataclasses
import gc

from forge_tui.render._box import BoxGeometry, draw, measure
from forge_tui.render._layout import (
    Item,
    Segment,
    acyclic,
    assign_ranks,
    balance_x,
    order_ranks,
    place_x,
)
from forge_tui.render._model import EdgeSpec, GraphSpec, NodeSpec, Rect, Rendered, RenderOptions
from forge_tui.render._route import LineLayer, Net, assign_tracks

BALANCE_FROM = 60  # nodes


def _with_edge_ports(nodes: list[NodeSpec], edges: list[EdgeSpec]) -> list[NodeSpec]:
    """Ports an edge names but the node lacks (stale code, mid-edit) are still drawn."""
    extra_in: dict[str, list[str]] = {}
    extra_out: dict[str, list[str]] = {}
    for e in edges:
        extra_out.setdefault(e.src, []).append(e.src_port)
        extra_in.setdefault(e.dst, []).append(e.dst_port)
    out = []
    for node in nodes:
        n = node
        ins = list(n.inputs) + [
            p for p in dict.fromkeys(extra_in.get(n.id, [])) if p not in n.inputs
        ]
        outs = list(n.outputs) + [
            p for p in dict.fromkeys(extra_out.get(n.id, [])) if p not in n.outputs
        ]
        if len(ins) != len(n.inputs) or len(outs) != len(n.outputs):
            n = dataclasses.replace(n, inputs=tuple(ins), outputs=tuple(outs))
        out.append(n)
    return out


def _reorder_ports(
    boxes: dict[str, BoxGeometry], segments: list[Segment], x: dict[str, int]
) -> None:
    """Order each box's ports by where their other ends sit, so edges do not cross at the box."""
    pulls_in: dict[tuple[str, str], list[float]] = {}
    pulls_out: dict[tuple[str, str], list[float]] = {}
    for s in segments:
        pulls_in.setdefault((s.dst.key, s.dst_port), []).append(
            x[s.src.key] + s.src.out_off(s.src_port)
        )
        pulls_out.setdefault((s.src.key, s.src_port), []).append(
            x[s.dst.key] + s.dst.in_off(s.dst_port)
        )
    for key, box in boxes.items():
        box.inputs = _sorted_slots(box.inputs, key, pulls_in)
        box.outputs = _sorted_slots(box.outputs, key, pulls_out)
        box.place_ports()


def _sorted_slots(
    order: list[str], key: str, pulls: dict[tuple[str, str], list[float]]
) -> list[str]:
    connected = [p for p in order if (key, p) in pulls]
    ranked = iter(sorted(connected, key=lambda p: sum(pulls[key, p]) / len(pulls[key, p])))
    return [next(ranked) if (key, p) in pulls else p for p in order]


def render_graph(spec: GraphSpec, options: RenderOptions | None = None) -> Rendered:
    """Lay out and draw a graph. The collector is paused meanwhile: the layout allocates many
    small objects and no cycles, and a collection in the middle costs a third of the time."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        return _render(spec, options or RenderOptions())
    finally:
        if enabled:
            gc.enable()


def _render(spec: GraphSpec, options: RenderOptions) -> Rendered:
    ids = {n.id for n in spec.nodes}
    usable = [e for e in spec.edges if e.src in ids and e.dst in ids and e.src != e.dst]
    kept = {id(e) for e in usable}
    skipped = [e for e in spec.edges if id(e) not in kept]
    nodes = _with_edge_ports(list(spec.nodes), usable)
    order = [n.id for n in nodes]
    back = acyclic(order, [(e.src, e.dst) for e in usable])
    skipped += [e for e in usable if (e.src, e.dst) in back]
    usable = [e for e in usable if (e.src, e.dst) not in back]
    rank = assign_ranks(order, [(e.src, e.dst) for e in usable])

    boxes = {n.id: measure(n, options) for n in nodes}
    items = {n.id: Item(n.id, rank[n.id], boxes[n.id].width, boxes[n.id]) for n in nodes}
    # Boxes with no connection (a layer just added, not wired yet) wait in a row under the
    # graph, so that adding one leaves every connected box where it was.
    wired = {e.src for e in usable} | {e.dst for e in usable}
    loose = [nid for nid in order if nid not in wired] if wired else []
    n_ranks = max((rank[nid] for nid in order if nid not in loose), default=-1) + 1
    ranks: list[list[Item]] = [[] for _ in range(n_ranks)]
    for nid in order:
        if nid not in loose:
            ranks[rank[nid]].append(items[nid])
    segments: list[Segment] = []
    for i, e in enumerate(usable):
        net_key = (e.src, e.src_port)
        prev, prev_port = items[e.src], e.src_port
        for r in range(rank[e.src] + 1, rank[e.dst]):
            dummy = Item(f"\0{i}:{r}", r, 1)
            ranks[r].append(dummy)
            segments.append(Segment(prev, prev_port, dummy, "", net_key, e.label))
            net_key = (dummy.key, "")
            prev, prev_port = dummy, ""
        segments.append(Segment(prev, prev_port, items[e.dst], e.dst_port, net_key, e.label))

    ranks = order_ranks(ranks, segments, options.sweeps)
    # A big graph (an imported network: long chains of residual blocks) is balanced, or each
    # block's bypass would push the chain further sideways; small ones keep their layout.
    x = place_x(ranks, segments, options.box_gap, options.dummy_gap)
    _reorder_ports(boxes, segments, x)
    if len(nodes) >= BALANCE_FROM:
        x = balance_x(x, ranks, segments, options.box_gap, options.dummy_gap)
    else:
        x = place_x(ranks, segments, options.box_gap, options.dummy_gap)
    if loose:
        column = 0
        for nid in loose:
            items[nid].rank, x[nid] = n_ranks, column
            column += items[nid].width + options.box_gap
        ranks.append([items[nid] for nid in loose])
        n_ranks += 1

    # Vertical geometry: a band per rank, a channel below it sized by its tracks.
    band_h = [max((it.box.height if it.box else 1) for it in rank) if rank else 1 for rank in ranks]
    channels: list[list[Net]] = [[] for _ in ranks]
    nets_by_key: list[dict[tuple[str, str], Net]] = [{} for _ in ranks]
    band_top = [0] * n_ranks
    for s in segments:
        r = s.src.rank
        net = nets_by_key[r].get(s.net)
        if net is None:
            src_col = x[s.src.key] + s.src.out_off(s.src_port)
            start = s.src.box.height if s.src.box else 0  # relative to band top for now
            net = Net(s.net, src_col, start, label=s.label)
            nets_by_key[r][s.net] = net
            channels[r].append(net)
        net.targets.append(x[s.dst.key] + s.dst.in_off(s.dst_port))
    chan_h = []
    for nets in channels:
        tracks = assign_tracks(nets)
        chan_h.append(tracks + 1)  # an exit row, then the tracks
    y = 0
    for r in range(n_ranks):
        band_top[r] = y
        y += band_h[r] + (chan_h[r] if r < n_ranks - 1 else 0)
    height = y
    width = max((x[it.key] + it.width for rank in ranks for it in rank), default=0)
    width = max(
        [width] + [max(n.right + 1, n.source + 2 + len(n.label)) for nets in channels for n in nets]
    )

    chars = [[" "] * width for _ in range(height)]
    styles = [[""] * width for _ in range(height)]
    rects: dict[str, Rect] = {}
    lines = LineLayer(width, height)
    for r, rank_items in enumerate(ranks):
        for it in rank_items:
            if it.box is not None:
                draw(it.box, x[it.key], band_top[r], chars, styles)
                rects[it.key] = Rect(x[it.key], band_top[r], it.width, it.box.height)
            elif r < n_ranks - 1:
                pass  # the dummy's vertical is drawn with its outgoing net
        if r == n_ranks - 1:
            continue
        top = band_top[r] + band_h[r]
        bottom = top + chan_h[r] - 1
        for net in channels[r]:
            net.start_row += band_top[r]
            lines.draw_net(net, top, bottom)
    for r in range(n_ranks - 1):
        top = band_top[r] + band_h[r]
        for net in channels[r]:
            if net.label:
                lines.write_label(chars, styles, net, top)
    lines.merge_into(chars, styles)
    return Rendered(width, height, chars, styles, rects, skipped)
