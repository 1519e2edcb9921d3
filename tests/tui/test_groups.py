"""Collapsing an imported network's blocks into group boxes (pure, then in the editor)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

from forge_tui.app._graphs import architecture_spec
from forge_tui.app._groups import GROUP, collapse, members, parent_prefix
from forge_tui.render import render_graph


def _bench() -> ModuleType:
    path = Path(__file__).resolve().parents[2] / "scripts" / "bench_tui.py"
    spec = importlib.util.spec_from_file_location("bench_tui", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


ARCH = _bench().transformer_architecture(120)
PROJECT = {"architectures": {"a": ARCH}, "layers": {}}


def test_a_block_takes_its_layers_and_the_functional_nodes_inside_it() -> None:
    inside = members(ARCH["layers"], ARCH["edges"].values(), "blocks.1")
    names = {ARCH["layers"][i]["name"] for i in inside}
    assert {"blocks.1.norm1", "blocks.1.attn.qkv", "blocks.1.mlp.fc2"} <= names
    assert {"reshape", "unbind", "getitem", "scaled_dot_product_attention", "size"} <= {
        ARCH["layers"][i]["type"] for i in inside
    }
    adds = [i for i in inside if ARCH["layers"][i]["type"] == "add"]
    assert len(adds) == 1  # the inner residual add; the last one only leaves the block
    assert parent_prefix("blocks.1.attn.qkv") == "blocks.1.attn"
    assert parent_prefix("head") is None


def test_collapsed_blocks_draw_as_one_box_each_with_their_edges() -> None:
    spec = architecture_spec(PROJECT, "a")  # type: ignore[arg-type]
    blocks = [f"blocks.{i}" for i in range(5)]
    small, owner = collapse(spec, ARCH, blocks, selected=GROUP + "blocks.2")
    assert len(small.nodes) < len(spec.nodes) // 3
    group = next(n for n in small.nodes if n.id == GROUP + "blocks.2")
    assert group.selected and group.subtitle.startswith("group of ")
    rendered = render_graph(small)
    assert GROUP + "blocks.2" in rendered.boxes and not rendered.skipped_edges
    into = [e for e in small.edges if e.dst == GROUP + "blocks.2"]
    out = [e for e in small.edges if e.src == GROUP + "blocks.2"]
    assert into and out  # the residual stream passes through the box
    assert all(owner[m] == GROUP + "blocks.2" for m in members(
        ARCH["layers"], ARCH["edges"].values(), "blocks.2"))
