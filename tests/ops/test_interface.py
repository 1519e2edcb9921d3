"""Operation interfaces are read from code with ast: ports, attributes, references, outputs."""

from __future__ import annotations

import pytest

from forge_ops.operations import (
    Attribute,
    InterfaceError,
    InterfaceTracker,
    Port,
    PortTypeMismatch,
    Reference,
    check_connection,
    parse_interface,
    types_compatible,
)

TRAIN = '''
from typing import Literal

def _helper(x):
    return x

def train(data: Dataset, extra: Tensor = None, /, *, lr: float = 0.01, steps=10,
          optimizer: Literal["adam", "sgd"] = "adam", note: str | None = None,
          net: Architecture, criterion: Criterion = "CrossEntropyLoss") -> Model:
    """Fit the net."""
    return net
'''


class TestPorts:
    def test_positional_parameters_are_inputs_in_order(self) -> None:
        interface = parse_interface(TRAIN)
        assert interface.function == "train"
        assert interface.inputs == (Port("data", "Dataset"), Port("extra", "Tensor", False))
        assert interface.doc == "Fit the net."
        assert interface.line == 7

    def test_missing_annotation_means_any(self) -> None:
        interface = parse_interface("def f(a, b: 'Tensor'): return a")
        assert interface.inputs == (Port("a", "Any"), Port("b", "Tensor"))

    def test_aliases_normalise_torch_spellings(self) -> None:
        interface = parse_interface("def f(a: torch.Tensor, b: nn.Module) -> typing.Any: ...")
        assert [port.type for port in interface.inputs] == ["Tensor", "Model"]
        assert interface.outputs == (Port("out", "Any"),)

    def test_last_public_function_is_the_operation(self) -> None:
        code = "def first(a): ...\ndef second(b): ...\ndef _private(c): ...\n"
        interface = parse_interface(code)
        assert interface.function == "second"
        assert [port.name for port in interface.inputs] == ["b"]

    def test_star_args_are_rejected(self) -> None:
        with pytest.raises(InterfaceError, match=r"\*rest cannot be a port") as info:
            parse_interface("\n\ndef f(a, *rest): ...")
        assert info.value.line == 3

    def test_star_kwargs_are_rejected(self) -> None:
        with pytest.raises(InterfaceError, match=r"\*\*options cannot be an attribute"):
            parse_interface("def f(a, **options): ...")


class TestAttributes:
    def test_types_from_annotation_or_default(self) -> None:
        interface = parse_interface(TRAIN)
        assert interface.attributes == (
            Attribute("lr", "float", 0.01),
            Attribute("steps", "int", 10),
            Attribute("optimizer", "str", "adam", choices=("adam", "sgd")),
            Attribute("note", "str", None, nullable=True),
        )
        assert interface.attribute_defaults()["steps"] == 10

    def test_collections_and_optional(self) -> None:
        code = ("from typing import Optional\n"
                "def f(*, sizes: list[int] = [1, 2], opts: dict = {}, seed: Optional[int] = None,"
                " pair=(1, 2)): ...")
        attributes = {a.name: a for a in parse_interface(code).attributes}
        assert attributes["sizes"] == Attribute("sizes", "list", [1, 2])
        assert attributes["opts"].type == "dict"
        assert attributes["seed"] == Attribute("seed", "int", None, nullable=True)
        assert attributes["pair"] == Attribute("pair", "list", [1, 2])

    def test_accepts_checks_type_choices_and_none(self) -> None:
        attributes = {a.name: a for a in parse_interface(TRAIN).attributes}
        assert attributes["lr"].accepts(1) and attributes["lr"].accepts(0.5)
        assert not attributes["lr"].accepts("fast") and not attributes["lr"].accepts(True)
        assert attributes["steps"].accepts(3) and not attributes["steps"].accepts(2.5)
        assert attributes["optimizer"].accepts("sgd") and not attributes["optimizer"].accepts("x")
        assert attributes["note"].accepts(None) and not attributes["steps"].accepts(None)

    def test_attribute_without_default_is_an_error(self) -> None:
        with pytest.raises(InterfaceError, match="attribute 'epochs' needs a default") as info:
            parse_interface("def f(x,\n      *, epochs: int): ...")
        assert info.value.line == 2

    def test_non_literal_default_is_an_error(self) -> None:
        with pytest.raises(InterfaceError, match="must be a literal"):
            parse_interface("def f(*, n: int = len('ab')): ...")

    def test_default_of_the_wrong_type_is_an_error(self) -> None:
        with pytest.raises(InterfaceError, match="default 'ten' of attribute 'n' is not of type"):
            parse_interface("def f(*, n: int = 'ten'): ...")

    def test_unsupported_attribute_type_is_an_error(self) -> None:
        with pytest.raises(InterfaceError, match="unsupported type 'Dataset'"):
            parse_interface("def f(*, data: Dataset = None): ...")


    def test_defaults_are_copies_of_the_cached_interface(self) -> None:
        code = "def f(*, sizes: list = [1, 2]): ..."
        parse_interface(code).attribute_defaults()["sizes"].append(3)
        assert parse_interface(code).attribute_defaults() == {"sizes": [1, 2]}


class TestReferences:
    def test_reference_types_become_references(self) -> None:
        interface = parse_interface(TRAIN)
        assert interface.references == (
            Reference("net", "Architecture"),
            Reference("criterion", "Criterion", "CrossEntropyLoss"),
        )
        assert interface.references[0].required and not interface.references[1].required

    def test_reference_default_must_be_a_string(self) -> None:
        with pytest.raises(InterfaceError, match="default of reference 'layer' must be a string"):
            parse_interface("def f(*, layer: Layer = 3): ...")


class TestOutputs:
    def test_single_type_is_port_out(self) -> None:
        interface = parse_interface(TRAIN)
        assert interface.outputs == (Port("out", "Model"),)
        assert interface.single_output

    def test_none_means_no_outputs(self) -> None:
        interface = parse_interface("def f(x) -> None: ...")
        assert interface.outputs == () and not interface.single_output

    def test_dict_literal_names_outputs(self) -> None:
        interface = parse_interface('def f(x) -> {"train": Dataset, "test": Dataset}: ...')
        assert interface.outputs == (Port("train", "Dataset"), Port("test", "Dataset"))
        assert not interface.single_output

    def test_named_tuple_class_names_outputs(self) -> None:
        code = ("from typing import NamedTuple\n"
                "class Result(NamedTuple):\n    model: Model\n    metrics: Metrics\n"
                "def f(x) -> Result: ...")
        assert parse_interface(code).outputs == (Port("model", "Model"),
                                                 Port("metrics", "Metrics"))

    def test_plain_class_return_is_rejected(self) -> None:
        with pytest.raises(InterfaceError, match="must be a NamedTuple or TypedDict"):
            parse_interface("class R:\n    a: int\ndef f(x) -> R: ...")

    def test_duplicate_and_invalid_output_names(self) -> None:
        with pytest.raises(InterfaceError, match="declared twice"):
            parse_interface('def f(x) -> {"a": Tensor, "a": Tensor}: ...')
        with pytest.raises(InterfaceError, match="must be a Python identifier"):
            parse_interface('def f(x) -> {"not valid": Tensor}: ...')
        with pytest.raises(InterfaceError, match="must be string literals"):
            parse_interface("def f(x) -> {1: Tensor}: ...")


class TestPlain:
    def test_to_plain_is_json(self) -> None:
        import json

        plain = parse_interface(TRAIN).to_plain()
        assert json.loads(json.dumps(plain)) == plain
        assert plain["inputs"][1] == {"name": "extra", "type": "Tensor", "required": False}
        assert plain["attributes"][2]["choices"] == ["adam", "sgd"]
        assert plain["references"][1] == {"name": "criterion", "type": "Criterion",
                                          "default": "CrossEntropyLoss"}
        assert plain["outputs"] == [{"name": "out", "type": "Model"}]


class TestErrors:
    def test_syntax_error_gives_line_and_message(self) -> None:
        with pytest.raises(InterfaceError, match="syntax error") as info:
            parse_interface("def f(x):\n    return x +\n")
        assert info.value.line == 2
        assert str(info.value).startswith("line 2: ")

    def test_error_pickles(self) -> None:
        import pickle

        error = pickle.loads(pickle.dumps(InterfaceError(3, "bad")))
        assert (error.line, error.message, str(error)) == (3, "bad", "line 3: bad")

    def test_no_function(self) -> None:
        with pytest.raises(InterfaceError, match="no operation function"):
            parse_interface("x = 1\ndef _hidden(): ...")

    def test_async_function_is_rejected(self) -> None:
        with pytest.raises(InterfaceError, match="must be a plain `def`"):
            parse_interface("async def f(x): ...")

    def test_code_is_never_executed(self) -> None:
        code = "raise SystemExit('executed!')\nimport os\ndef f(x) -> Tensor: os.remove('/')\n"
        assert parse_interface(code).function == "f"


class TestTracker:
    def test_syntax_error_keeps_last_good_interface(self) -> None:
        tracker = InterfaceTracker("def f(a: Tensor) -> Tensor: ...")
        good = tracker.interface
        assert good is not None and tracker.error is None
        assert tracker.update("def f(a: Tensor) -> Tensor:\n  return (") is good
        error: InterfaceError | None = tracker.error
        assert error is not None and error.line == 2
        fixed = tracker.update("def g(a, b): ...")
        assert fixed is not None and fixed.function == "g" and tracker.error is None

    def test_starts_empty_when_first_code_is_invalid(self) -> None:
        tracker = InterfaceTracker("def (")
        assert tracker.interface is None and tracker.error is not None


class TestConnections:
    def test_compatible_types(self) -> None:
        assert types_compatible("Dataset", "Dataset")
        assert types_compatible("Any", "Model") and types_compatible("Tensor", "Any")
        assert not types_compatible("Dataset", "Model")

    def test_mismatch_names_both_ports_and_types(self) -> None:
        check_connection("Synthetic", Port("train", "Dataset"), "Train", Port("data", "Any"))
        with pytest.raises(PortTypeMismatch) as info:
            check_connection("Normalize", Port("train", "Dataset"), "Test", Port("model", "Model"))
        message = str(info.value)
        for part in ("Normalize.train", "(Dataset)", "Test.model", "(Model)"):
            assert part in message
