"""The layout keeps existing boxes in place where it can: a box with no connection yet (a
layer just added) waits in a row under the graph instead of reshuffling it."""

from __future__ import annotations

from forge_tui.render import EdgeSpec, GraphSpec, NodeSpec, render_graph


def paper_pipeline(extra: tuple[NodeSpec, ...] = ()) -> GraphSpec:
    """Figure 3's shape: a source with two outputs, a fork and a join, then outputs."""
    nodes = (
        NodeSpec("download", "DownloadCIFAR10", outputs=("train", "test")),
        NodeSpec("normalize", "NormalizeData", inputs=("train", "test"),
                 outputs=("train", "test")),
        NodeSpec("train", "Train", inputs=("data",), outputs=("model",)),
        NodeSpec("test", "Test", inputs=("data", "model"), outputs=("accuracy",)),
        NodeSpec("out", "Output", inputs=("data",)),
        *extra,
    )
    edges = (
        EdgeSpec("download", "train", "normalize", "train"),
        EdgeSpec("download", "test", "normalize", "test"),
        EdgeSpec("normalize", "train", "train", "data"),
        EdgeSpec("normalize", "test", "test", "data"),
        EdgeSpec("train", "model", "test", "model"),
        EdgeSpec("test", "accuracy", "out", "data"),
    )
    return GraphSpec(nodes, edges)


def test_an_unconnected_box_leaves_the_others_in_place() -> None:
    before = render_graph(paper_pipeline()).boxes
    # "a" sorts first, so the old layout put it in the top row, beside the source.
    after = render_graph(paper_pipeline((NodeSpec("a-new", "A wide new operation"),))).boxes
    for node, rect in before.items():
        assert after[node] == rect, f"{node} moved"
    new = after["a-new"]
    assert new.x == 0 and new.y > max(rect.bottom for rect in before.values())


def test_a_new_layer_does_not_shift_a_chain_of_layers() -> None:
    layers = tuple(NodeSpec(f"l{i}", f"layer {i}", outputs=("",), inputs=("",) if i else ())
                   for i in range(4))
    edges = tuple(EdgeSpec(f"l{i}", "", f"l{i + 1}", "") for i in range(3))
    before = render_graph(GraphSpec(layers, edges)).boxes
    after = render_graph(GraphSpec((NodeSpec("a", "BatchNorm2d"), *layers), edges)).boxes
    assert {k: after[k] for k in before} == before
    assert after["a"].y > before["l3"].bottom


def test_a_graph_of_only_unconnected_boxes_is_one_row() -> None:
    boxes = render_graph(GraphSpec((NodeSpec("a", "A"), NodeSpec("b", "B")))).boxes
    assert boxes["a"].y == boxes["b"].y == 0 and boxes["a"].right < boxes["b"].x
