"""Edge cases of reading interfaces and validating pipelines: hostile or odd code is reported
as a problem to fix, never a crash, and validation catches what would otherwise fail a run."""

from __future__ import annotations

from typing import Any

import pytest

from forge_ops.execution import normalize_code
from forge_ops.operations import (
    InterfaceError,
    Port,
    ProblemKind,
    find_problems,
    parse_interface,
)

DEEP_SUM = "def a(*, n=" + "+".join(["1"] * 100_000) + "): ...\n"
DEEP_NEGATION = "x = " + "-" * 100_000 + "1\n\ndef a(): ...\n"
# Parses, but ast.unparse (and our own walk) recurse deeper than the stack allows.
UNPARSEABLE_SUM = "\n\ndef a(x: " + "|".join(["int"] * 2_000) + "): ...\n"


class TestDeepNesting:
    @pytest.mark.parametrize("code", [DEEP_SUM, DEEP_NEGATION], ids=["sum", "negation"])
    def test_parser_overflow_is_an_interface_error(self, code: str) -> None:
        with pytest.raises(InterfaceError, match="nested too deeply") as info:
            parse_interface(code)
        assert info.value.line == 1

    def test_overflow_reading_the_function_names_its_line(self) -> None:
        with pytest.raises(InterfaceError, match="nested too deeply") as info:
            parse_interface(UNPARSEABLE_SUM)
        assert info.value.line == 3

    def test_validation_reports_it(self) -> None:
        operations = {"deep": {"name": "Deep", "code": DEEP_NEGATION}}
        found = find_problems(as_read({"n": {"operation": "deep"}}, operations=operations),
                              operations)
        assert [(p.kind, p.node) for p in found] == [(ProblemKind.INVALID_CODE, "n")]
        assert "nested too deeply" in found[0].message

    @pytest.mark.parametrize("code", [DEEP_SUM, DEEP_NEGATION, UNPARSEABLE_SUM],
                             ids=["sum", "negation", "unparseable"])
    def test_cache_key_falls_back_to_tokens(self, code: str) -> None:
        normalized = normalize_code(code + "# a comment\n")
        assert normalized == normalize_code(code)
        assert "comment" not in normalized

    def test_ordinary_code_keeps_its_normal_form(self) -> None:
        # Cache keys of existing runs hash this form: it must not change.
        code = "def f(x):  # why\n\n    return x+1\n"
        assert normalize_code(code) == "def f(x):\n    return x + 1"


class TestDuplicateParameters:
    @pytest.mark.parametrize("code", [
        "def d(x, x): ...",
        "def d(x, *, x=1): ...",
        "def d(x, /, x): ...",
        "def d(x, **x): ...",
        "def a(\ufb01, fi): ...",  # ﬁ is fi after NFKC, as Python reads identifiers
    ])
    def test_rejected_with_the_line(self, code: str) -> None:
        with pytest.raises(InterfaceError, match=r"parameter '\w+' is declared twice") as info:
            parse_interface("\n" + code)
        assert info.value.line == 2

    def test_distinct_names_are_accepted(self) -> None:
        interface = parse_interface("def d(x, y, *, z=1): ...")
        assert [port.name for port in interface.inputs] == ["x", "y"]


class TestJsonDefaults:
    @pytest.mark.parametrize("default", ["{1, 2}", "b'x'", "1j", "...", "1e400", "-1e400",
                                         "{1: 2}", "[1, {2}]", "{'a': (1, b'x')}"])
    def test_non_json_default_is_rejected(self, default: str) -> None:
        with pytest.raises(InterfaceError, match=r"JSON data .*finite float.* string keys"):
            parse_interface(f"def f(*, n={default}): ...")

    def test_non_json_literal_choice_is_rejected(self) -> None:
        with pytest.raises(InterfaceError, match="JSON data"):
            parse_interface("def f(*, n: Literal[b'a', b'b'] = b'a'): ...")

    def test_json_defaults_are_kept_with_tuples_as_lists(self) -> None:
        code = ("def f(*, a=None, b=True, c=-3, d=2.5, e='s', "
                "g=(1, (2, 3)), h={'k': [1.0, None, {'x': (True,)}]}): ...")
        assert parse_interface(code).attribute_defaults() == {
            "a": None, "b": True, "c": -3, "d": 2.5, "e": "s",
            "g": [1, [2, 3]], "h": {"k": [1.0, None, {"x": [True]}]},
        }


class TestLiteralTypes:
    @pytest.mark.parametrize("code", [
        "def f(*, n: Literal[1, 2] = True): ...",
        "def f(*, n: Literal[1, 2] = 1.0): ...",
        "def f(*, n: Literal[True, False] = 0): ...",
        "def f(*, n: Literal[0, 1] = False): ...",
    ])
    def test_equal_value_of_another_type_is_not_a_choice(self, code: str) -> None:
        with pytest.raises(InterfaceError, match="is not of type one of"):
            parse_interface(code)

    def test_choices_match_by_type_and_value(self) -> None:
        interface = parse_interface("def f(*, n: Literal[1, 2] = 2, b: Literal[True] = True,"
                                    " x: Literal[0.5, 1.0] = 0.5): ...")
        n, b, x = interface.attributes
        assert n.accepts(1) and n.accepts(2)
        assert not n.accepts(True) and not n.accepts(1.0) and not n.accepts("1")
        assert b.accepts(True) and not b.accepts(1)
        assert x.accepts(1.0) and x.accepts(1)  # like a float attribute, an int may be a float
        assert not x.accepts(True)

    def test_validation_uses_the_same_rule(self) -> None:
        operations = {"op": {"name": "Op",
                             "code": "def op(*, n: Literal[1, 2] = 1): ..."}}
        for value, ok in [(True, False), (1.0, False), (2, True)]:
            pipeline = as_read({"n": {"operation": "op", "attributes": {"n": value}}},
                               operations=operations)
            kinds = [p.kind for p in find_problems(pipeline, operations)]
            assert kinds == ([] if ok else [ProblemKind.ATTRIBUTE_TYPE]), value


class TestOptionalPortTypes:
    @pytest.mark.parametrize("annotation", ["Tensor | None", "None | Tensor", "Optional[Tensor]",
                                            "typing.Optional[Tensor]", "'Tensor | None'",
                                            "torch.Tensor | None"])
    def test_none_is_unwrapped_from_input_types(self, annotation: str) -> None:
        interface = parse_interface(f"def f(x: {annotation}, y: {annotation} = None): ...")
        assert interface.inputs == (Port("x", "Tensor"), Port("y", "Tensor", required=False))

    def test_optional_input_connects_to_a_tensor_output(self) -> None:
        operations = {
            "make": {"name": "Make", "code": "def make() -> Tensor: ..."},
            "use": {"name": "Use", "code": "def use(x: Optional[Tensor] = None) -> None: ..."},
        }
        pipeline = as_read({"m": {"operation": "make"}, "u": {"operation": "use"}},
                           {"e": {"src": "m", "src_port": "out", "dst": "u", "dst_port": "x"}},
                           operations=operations)
        assert find_problems(pipeline, operations) == []

    def test_other_unions_stay_as_written(self) -> None:
        interface = parse_interface("def f(x: Tensor | Dataset) -> Tensor | None: ...")
        assert interface.inputs == (Port("x", "Tensor | Dataset"),)
        assert interface.outputs == (Port("out", "Tensor | None"),)


def edge(src: str, dst: str, dst_port: str = "x", src_port: str = "out") -> dict[str, str]:
    return {"src": src, "src_port": src_port, "dst": dst, "dst_port": dst_port}


OPERATIONS: dict[str, dict[str, Any]] = {
    "make": {"name": "Make", "code": "def make() -> Tensor: ..."},
    "pass": {"name": "Pass", "code": "def pass_(x: Tensor) -> Tensor: ..."},
    "join": {"name": "Join", "code": "def join(x: Tensor, y: Tensor) -> Tensor: ..."},
    "gap": {"name": "Gap", "code": "def g(x: Tensor = None, y: Tensor = None) -> None: ..."},
    "net": {"name": "Net", "code": "def net(*, net: Architecture) -> None: ..."},
}


def as_read(nodes: dict[str, dict[str, Any]], edges: dict[str, dict[str, str]] | None = None,
            operations: dict[str, dict[str, Any]] = OPERATIONS) -> dict[str, Any]:
    """The pipeline as the project reader hands it out: each node named after its operation
    unless named, with its (maybe empty) attributes, references and settings."""
    def read(node: dict[str, Any]) -> dict[str, Any]:
        return {"name": operations[node["operation"]]["name"], "attributes": {},
                "references": {}, "settings": {}, **node}

    return {"name": "p", "nodes": {key: read(node) for key, node in nodes.items()},
            "edges": edges or {}}


def found(pipeline: dict[str, Any], **context: Any) -> list[tuple[ProblemKind, str | None]]:
    return [(p.kind, p.node) for p in find_problems(pipeline, OPERATIONS, **context)]


def text(pipeline: dict[str, Any], **context: Any) -> str:
    return "\n".join(p.message for p in find_problems(pipeline, OPERATIONS, **context))


class TestOptionalInputGap:
    def pipeline(self, *ports: str) -> dict[str, Any]:
        return as_read({"m": {"operation": "make"}, "g": {"operation": "gap"}},
                       {port: edge("m", "g", port) for port in ports})

    def test_later_optional_input_alone_is_a_problem(self) -> None:
        pipeline = self.pipeline("y")
        assert found(pipeline) == [(ProblemKind.UNCONNECTED_INPUT, "g")]
        assert ("Gap: optional input 'x' (Tensor) is not connected but input 'y' after it is"
                in text(pipeline))
        assert "connect 'x' too, or disconnect 'y'" in text(pipeline)

    @pytest.mark.parametrize("ports", [(), ("x",), ("x", "y")])
    def test_leading_inputs_connected_is_fine(self, ports: tuple[str, ...]) -> None:
        assert found(self.pipeline(*ports)) == []


class TestSettings:
    @pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
    def test_non_finite_settings_are_rejected(self, value: float) -> None:
        pipeline = as_read({"m": {"operation": "make",
                                  "settings": {"num_cpus": value, "num_gpus": value}}})
        assert found(pipeline) == [(ProblemKind.SETTING, "m")] * 2
        assert "setting num_gpus is" in text(pipeline)
        assert "set a finite number ≥ 0" in text(pipeline)

    def test_finite_settings_pass(self) -> None:
        pipeline = as_read({"m": {"operation": "make",
                                  "settings": {"num_cpus": 0.5, "num_gpus": 0}}})
        assert found(pipeline) == []


class TestCycles:
    def test_each_separate_cycle_is_reported(self) -> None:
        nodes = {name: {"operation": "pass", "name": name.upper()} for name in "abcde"}
        edges = {"ab": edge("a", "b"), "ba": edge("b", "a"),
                 "cd": edge("c", "d"), "dc": edge("d", "c"), "de": edge("d", "e")}
        problems = [p for p in find_problems(as_read(nodes, edges), OPERATIONS)
                    if p.kind == ProblemKind.CYCLE]
        assert sorted(p.node for p in problems) in (["a", "c"], ["a", "d"], ["b", "c"],
                                                    ["b", "d"])
        messages = sorted(p.message for p in problems)
        assert any("A → B → A" in m or "B → A → B" in m for m in messages)
        assert any("C → D → C" in m or "D → C → D" in m for m in messages)

    def test_cycles_sharing_a_node_stop_once_broken(self) -> None:
        nodes = {"a": {"operation": "pass"}, "b": {"operation": "join"},
                 "c": {"operation": "pass"}}
        edges = {"ab": edge("a", "b", "x"), "ba": edge("b", "a", src_port="out"),
                 "cb": edge("c", "b", "y"), "bc": edge("b", "c", src_port="out")}
        kinds = [kind for kind, _ in found(as_read(nodes, edges))]
        assert kinds == [ProblemKind.CYCLE]


ARCHITECTURES = {"a1": {"name": "Same"}, "a2": {"name": "Same"}, "a3": {"name": "Other"}}


class TestAmbiguousArchitecture:

    def pipeline(self, value: str) -> dict[str, Any]:
        return as_read({"n": {"operation": "net", "references": {"net": value}}})

    def test_shared_name_lists_the_ids(self) -> None:
        pipeline = self.pipeline("Same")
        assert (found(pipeline, architectures=ARCHITECTURES)
                == [(ProblemKind.AMBIGUOUS_REFERENCE, "n")])
        assert ("the name of several architectures (ids a1, a2); set it to one of these ids"
                in text(pipeline, architectures=ARCHITECTURES))

    @pytest.mark.parametrize("value", ["a1", "a2", "Other"])
    def test_id_or_unique_name_is_fine(self, value: str) -> None:
        assert found(self.pipeline(value), architectures=ARCHITECTURES) == []

    def test_an_id_wins_over_names(self) -> None:
        architectures = {"Same": {"name": "x"}, "a1": {"name": "Same"}, "a2": {"name": "Same"}}
        assert found(self.pipeline("Same"), architectures=architectures) == []
