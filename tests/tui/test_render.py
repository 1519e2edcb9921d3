"""The pure renderer: layout, routing, borders, marks; read back from the character grid."""

from __future__ import annotations

import importlib.util
from collections import deque
from pathlib import Path
from types import ModuleType

import pytest

from forge_tui.render import (
    EdgeSpec,
    GraphSpec,
    Mark,
    NodeSpec,
    Rendered,
    RenderOptions,
    Status,
    nearest,
    render_graph,
)

N, E, S, W = 1, 2, 4, 8
# Which directions each drawn character connects to. Box junctions only lead out of the box.
CONNECTS = {
    "│": N | S,
    "─": E | W,
    "╰": N | E,
    "╭": E | S,
    "╮": S | W,
    "╯": N | W,
    "├": N | E | S,
    "┴": N | E | W,
    "┤": N | S | W,
    "┬": E | S | W,
    "┼": N | E | S | W,
}
STEP = {N: (0, -1), S: (0, 1), E: (1, 0), W: (-1, 0)}
OPPOSITE = {N: S, S: N, E: W, W: E}


def paper_pipeline(selected: str | None = "train") -> GraphSpec:
    """Figure 3 of the paper: download, normalize, train, test, two outputs."""
    nodes = (
        NodeSpec("download", "DownloadCIFAR10", outputs=("train", "test")),
        NodeSpec("normalize", "NormalizeData", inputs=("train", "test"), outputs=("train", "test")),
        NodeSpec(
            "train",
            "Train",
            "Train",
            lines=("max_iterations=50", "learning_rate=0.001", "net=VGG"),
            inputs=("data",),
            outputs=("model",),
            selected=selected == "train",
        ),
        NodeSpec("test", "Test", inputs=("data", "model"), outputs=("accuracy",)),
        NodeSpec("out_model", "Output", inputs=("data",)),
        NodeSpec("out_acc", "Output", inputs=("data",)),
    )
    edges = (
        EdgeSpec("download", "train", "normalize", "train"),
        EdgeSpec("download", "test", "normalize", "test"),
        EdgeSpec("normalize", "train", "train", "data"),
        EdgeSpec("normalize", "test", "test", "data"),
        EdgeSpec("train", "model", "test", "model"),
        EdgeSpec("train", "model", "out_model", "data"),
        EdgeSpec("test", "accuracy", "out_acc", "data"),
    )
    return GraphSpec(nodes, edges)


def port_cell(r: Rendered, node: str, port: str, top: bool) -> tuple[int, int]:
    """The junction cell of a port: the border cell just before its name."""
    rect = r.boxes[node]
    row = rect.y if top else rect.bottom - 1
    line = "".join(r.chars[row][rect.x : rect.right])
    names = [(i + 1, line[i + 1 :]) for i, ch in enumerate(line) if ch in "┴┬┻┳╨╥"]
    for col, rest in names:
        if rest.startswith(port[:9]):
            return rect.x + col - 1, row
    raise AssertionError(f"port {port!r} not on {'top' if top else 'bottom'} border of {node}")


def connected(r: Rendered, start: tuple[int, int], goal: tuple[int, int]) -> bool:
    """Follow drawn lines from an output junction to the cell above an input junction."""
    sx, sy = start
    queue = deque([(sx, sy + 1, N)])  # enter the cell below the output junction from above
    seen = set()
    while queue:
        x, y, came_from = queue.popleft()
        if (
            (x, y) == (goal[0], goal[1] - 1)
            and r.chars[y][x] in CONNECTS
            and CONNECTS[r.chars[y][x]] & S
        ):
            return True
        if (x, y, came_from) in seen or not (0 <= y < r.height and 0 <= x < r.width):
            continue
        seen.add((x, y, came_from))
        ch = r.chars[y][x]
        bits = CONNECTS.get(ch, 0)
        if r.styles[y][x] != "edge" or not bits & came_from:
            continue
        for d in (d for d in STEP if bits & d and d != came_from):
            dx, dy = STEP[d]
            queue.append((x + dx, y + dy, OPPOSITE[d]))
    return False


def assert_sound(r: Rendered, spec: GraphSpec) -> None:
    """No overlapping boxes, no line inside a box, every edge traceable port to port."""
    rects = list(r.boxes.items())
    for i, (a, ra) in enumerate(rects):
        for b, rb in rects[i + 1 :]:
            assert not ra.overlaps(rb), f"boxes {a} and {b} overlap"
    for key, rect in r.boxes.items():
        for y in range(rect.y + 1, rect.bottom - 1):
            for x in range(rect.x, rect.right):
                assert r.styles[y][x] != "edge", f"an edge runs through box {key} at {x},{y}"
    for e in spec.edges:
        src = port_cell(r, e.src, e.src_port, top=False)
        dst = port_cell(r, e.dst, e.dst_port, top=True)
        assert connected(r, src, dst), f"edge {e} is not drawn from port to port"


class TestPaperPipeline:
    def test_boxes_show_names_operations_attributes_and_ports(self) -> None:
        spec = paper_pipeline()
        r = render_graph(spec)
        text = r.text()
        for name in ("DownloadCIFAR10", "NormalizeData", "Train", "Test", "learning_rate=0.001"):
            assert name in text
        assert set(r.boxes) == {n.id for n in spec.nodes}
        train = r.boxes["train"]
        assert "data" in "".join(r.chars[train.y][train.x : train.right])  # inputs on top
        assert "model" in "".join(r.chars[train.bottom - 1][train.x : train.right])
        assert_sound(r, spec)

    def test_ranks_follow_data_flow(self) -> None:
        r = render_graph(paper_pipeline())
        order = ["download", "normalize", "train", "test", "out_acc"]
        ys = [r.boxes[k].y for k in order]
        assert ys == sorted(ys) and len(set(ys)) == len(ys)

    def test_selection_is_a_heavy_border_not_only_colour(self) -> None:
        r = render_graph(paper_pipeline("train"))
        rect = r.boxes["train"]
        assert r.chars[rect.y][rect.x] == "┏"
        assert r.styles[rect.y][rect.x] == "box.selected"
        other = r.boxes["test"]
        assert r.chars[other.y][other.x] == "┌"

    def test_ports_are_ordered_to_avoid_crossings(self) -> None:
        # Test's "model" comes from Train (left of the normalize->test line), so model is first.
        spec = paper_pipeline()
        r = render_graph(spec)
        model_x, _ = port_cell(r, "test", "model", top=True)
        data_x, _ = port_cell(r, "test", "data", top=True)
        train_out, _ = port_cell(r, "train", "model", top=False)
        norm_out, _ = port_cell(r, "normalize", "test", top=False)
        assert (model_x < data_x) == (train_out < norm_out)


class TestRouting:
    def test_skip_edge_goes_around_the_box_between(self) -> None:
        spec = GraphSpec(
            (
                NodeSpec("a", "A", outputs=("out",)),
                NodeSpec("b", "B", lines=("a wide attribute line",), inputs=("x",), outputs=("y",)),
                NodeSpec("c", "C", inputs=("x", "skip")),
            ),
            (
                EdgeSpec("a", "out", "b", "x"),
                EdgeSpec("b", "y", "c", "x"),
                EdgeSpec("a", "out", "c", "skip"),
            ),
        )
        r = render_graph(spec)
        assert r.boxes["a"].y < r.boxes["b"].y < r.boxes["c"].y
        assert_sound(r, spec)
        b = r.boxes["b"]
        beside = [
            x for x in range(r.width) if not b.x <= x < b.right and r.styles[b.y + 1][x] == "edge"
        ]
        assert beside, "the skip edge should run beside B"

    def test_fan_out_shares_one_junction(self) -> None:
        spec = GraphSpec(
            (
                NodeSpec("s", "Source", outputs=("out",)),
                *(NodeSpec(f"t{i}", f"T{i}", inputs=("in",)) for i in range(3)),
            ),
            tuple(EdgeSpec("s", "out", f"t{i}", "in") for i in range(3)),
        )
        r = render_graph(spec)
        assert_sound(r, spec)
        src_x, src_y = port_cell(r, "s", "out", top=False)
        track = r.boxes["t0"].y - 1
        assert track == src_y + 2, "one output port feeding three inputs needs a single track"
        assert r.chars[track][src_x] in "┴┼"  # the source joins the shared track
        assert r.lines()[track].strip(" ").count(" ") == 0  # one unbroken horizontal

    def test_cycle_edges_are_reported_not_drawn(self) -> None:
        spec = GraphSpec(
            (
                NodeSpec("a", "A", inputs=("i",), outputs=("o",)),
                NodeSpec("b", "B", inputs=("i",), outputs=("o",)),
            ),
            (EdgeSpec("a", "o", "b", "i"), EdgeSpec("b", "o", "a", "i")),
        )
        r = render_graph(spec)
        assert len(r.skipped_edges) == 1
        assert set(r.boxes) == {"a", "b"}

    def test_edges_to_missing_nodes_are_skipped(self) -> None:
        spec = GraphSpec((NodeSpec("a", "A", outputs=("o",)),), (EdgeSpec("a", "o", "gone", "i"),))
        r = render_graph(spec)
        assert r.skipped_edges == [spec.edges[0]]

    def test_labels_sit_beside_edges(self) -> None:
        spec = GraphSpec(
            (
                NodeSpec("a", "Conv2d", outputs=("",), extra="1.8k params"),
                NodeSpec("b", "ReLU", inputs=("",)),
            ),
            (EdgeSpec("a", "", "b", "", label="1×16×32×32"),),
        )
        r = render_graph(spec)
        assert "1×16×32×32" in r.text()
        assert "1.8k params" in r.text()
        assert_sound(r, spec)

    def test_empty_graph(self) -> None:
        r = render_graph(GraphSpec())
        assert (r.width, r.height, r.boxes) == (0, 0, {})


def _load_bench() -> ModuleType:
    """The TUI benchmark script, whose random DAGs the large-graph tests reuse."""
    path = Path(__file__).resolve().parents[2] / "scripts" / "bench_tui.py"
    spec = importlib.util.spec_from_file_location("bench_tui", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_bench = _load_bench()
random_dag = _bench.random_dag


class TestLargeGraphs:
    @pytest.mark.parametrize("seed", [1, 2])
    def test_hundred_nodes_no_overlap_no_edge_through_a_box(self, seed: int) -> None:
        spec = random_dag(100, seed)
        r = render_graph(spec)
        assert len(r.boxes) == 100 and not r.skipped_edges
        assert_sound(r, spec)

    def test_imported_transformer_stays_narrow(self) -> None:
        """Every residual block's bypass sits on one side; balanced placement keeps the chain
        from drifting sideways block after block (it was 905 columns wide at 500 layers)."""
        from forge_tui.app._graphs import architecture_spec

        arch = _bench.transformer_architecture(300)
        spec = architecture_spec({"architectures": {"a": arch}, "layers": {}}, "a")
        r = render_graph(spec)
        assert len(r.boxes) == len(arch["layers"]) and not r.skipped_edges
        assert_sound(r, spec)
        assert r.width < 200


class TestStatusAndPresence:
    def test_status_glyphs_and_borders(self) -> None:
        spec = GraphSpec(
            (
                NodeSpec("f", "Failing", status=Status.FAILED),
                NodeSpec("q", "Waiting", status=Status.QUEUED),
                NodeSpec("ok", "Done", status=Status.SUCCEEDED),
            )
        )
        r = render_graph(spec)
        f, q, ok = (r.boxes[k] for k in ("f", "q", "ok"))
        assert r.chars[f.y][f.x] == "╔"
        assert "┄" in "".join(r.chars[q.y][q.x : q.right])
        assert "✓ Done" in "".join(r.chars[ok.y + 1][ok.x : ok.right])
        assert "✗ Failing" in "".join(r.chars[f.y + 1][f.x : f.right])
        assert r.styles[f.y + 1][f.x + 2] == "status.failed"

    def test_presence_initials_on_the_box(self) -> None:
        spec = GraphSpec((NodeSpec("a", "Train", marks=(Mark("AB", 2), Mark("CD", 3))),))
        r = render_graph(spec)
        row = "".join(r.chars[1])
        assert "AB" in row and "CD" in row and "Train" in row
        col = row.index("AB")
        assert r.styles[1][col] == "mark.2"

    def test_long_text_is_clipped_to_the_box(self) -> None:
        spec = GraphSpec((NodeSpec("a", "x" * 80, lines=("y" * 90,)),))
        r = render_graph(spec, RenderOptions(max_inner_width=20))
        assert r.width == 24
        assert "…" in r.text()


class TestNavigation:
    def test_arrows_move_spatially(self) -> None:
        r = render_graph(paper_pipeline())
        assert nearest(r.boxes, "download", "down") == "normalize"
        assert nearest(r.boxes, "normalize", "up") == "download"
        left, right = sorted(["test", "out_model"], key=lambda k: r.boxes[k].x)
        assert nearest(r.boxes, left, "right") == right
        assert nearest(r.boxes, "download", "up") == "download"  # nothing above: stay
        assert nearest(r.boxes, None, "down") == "download"


def test_compact_view_is_shorter_and_keeps_ports() -> None:
    from forge_tui.render import COMPACT

    spec = paper_pipeline()
    full, compact = render_graph(spec), render_graph(spec, COMPACT)
    assert compact.height < full.height
    assert "learning_rate" not in compact.text() and "Train" in compact.text()
    assert_sound(compact, spec)
