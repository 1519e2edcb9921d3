"""The one ordering and cycle helper that the planner, validator, architectures, exporter and
TUI share (forge_ops.graph_order)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from forge_ops.graph_order import (
    CycleFound,
    all_cycles,
    find_cycle,
    reaches,
    static_order,
    topological_order,
)


class TestOrder:
    def test_every_node_comes_after_what_it_depends_on(self) -> None:
        deps = {"c": ["a", "b"], "b": ["a"], "a": [], "d": []}
        order = topological_order(deps)
        assert order == ["a", "d", "b", "c"]  # ready together: sorted
        assert topological_order(deps, key=lambda n: -ord(n)) == ["d", "a", "b", "c"]
        assert static_order(deps) == ["a", "d", "b", "c"]

    def test_static_order_is_graphlibs_own(self) -> None:
        # Ready together, nodes keep the order graphlib first met them (n3, as n1's input,
        # before n2), where topological_order sorts them.
        deps = {"n1": ["n3"], "n2": [], "n3": [], "n4": ["n2"]}
        assert static_order(deps) == ["n3", "n2", "n1", "n4"]
        assert topological_order(deps) == ["n2", "n3", "n1", "n4"]

    def test_a_cycle_is_named(self) -> None:
        with pytest.raises(CycleFound) as found:
            topological_order({"a": ["b"], "b": ["a"]})
        assert found.value.cycle[0] == found.value.cycle[-1]
        assert set(found.value.cycle) == {"a", "b"}
        with pytest.raises(CycleFound):
            static_order({"a": ["a"]})


class TestCycles:
    def test_find_cycle(self) -> None:
        assert find_cycle({"a": [], "b": ["a"]}) is None
        assert find_cycle({"a": ["b"], "b": ["a"], "c": []}) in (["a", "b", "a"],
                                                                 ["b", "a", "b"])

    def test_all_separate_cycles_without_self_loops(self) -> None:
        deps = {"a": ["b"], "b": ["a"], "c": ["d"], "d": ["c"], "e": ["e"], "f": ["a"]}
        cycles = all_cycles(deps)
        assert sorted(sorted(set(c)) for c in cycles) == [["a", "b"], ["c", "d"]]

    def test_the_named_cycle_does_not_depend_on_the_hash_seed(self) -> None:
        # String hashes change from one process to the next; the validator's message must not.
        script = ("from forge_ops.graph_order import all_cycles; "
                  "print(all_cycles({'n0': ['n1'], 'n1': ['n3', 'n4'], 'n2': ['n3', 'n4'], "
                  "'n3': ['n2', 'n4'], 'n4': ['n2', 'n3']}))")
        answers = {subprocess.run([sys.executable, "-c", script], capture_output=True,
                                  text=True, check=True,
                                  env={**os.environ, "PYTHONHASHSEED": str(seed)}).stdout
                   for seed in range(6)}
        assert len(answers) == 1, answers


def test_reaches() -> None:
    edges = [("a", "b"), ("b", "c"), ("d", "a")]
    assert reaches(edges, "a", "c") and reaches(edges, "d", "c")
    assert not reaches(edges, "c", "a")
    assert reaches(edges, "a", "a")
