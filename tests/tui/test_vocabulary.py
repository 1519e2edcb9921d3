"""The TUI speaks the domain's vocabulary (forge_ops, forge_server), not copies of it, and still
starts without torch."""

from __future__ import annotations

import subprocess
import sys

import pytest

from forge_ops.arch import FUNCTIONAL_OPS, INPUT, OUTPUT
from forge_ops.input_shape import InputShapeError, is_input_shape, parse_input_shape
from forge_ops.operations.types import TORCH_LOSSES
from forge_ops.schema import ProjectDoc
from forge_server.auth import InvalidName, validate_project_name
from forge_tui.app import check_project_name
from forge_tui.app.widgets.architecture_editor import layer_type_choices
from forge_tui.app.widgets.pipeline_editor import reference_choices


def test_the_app_and_the_cli_start_without_torch() -> None:
    code = (
        "import sys, forge_tui.app, forge_tui.cli; forge_tui.cli.build_parser(); "
        "assert 'torch' not in sys.modules, 'torch was imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


class TestInputShape:
    @pytest.mark.parametrize(
        ("text", "shape"),
        [
            ("1, 3, 32, 32", [1, 3, 32, 32]),
            ("1x3x32x32", [1, 3, 32, 32]),
            ("1×3×32×32", [1, 3, 32, 32]),
            ("2, 3, 64 x 64", [2, 3, 64, 64]),
        ],
    )
    def test_separators(self, text: str, shape: list[int]) -> None:
        assert parse_input_shape(text) == shape

    @pytest.mark.parametrize("text", ["", "3, 0", "3, -1", "a, b", "1.5"])
    def test_refused(self, text: str) -> None:
        with pytest.raises(InputShapeError, match="positive integers"):
            parse_input_shape(text)

    def test_stored_shapes(self) -> None:
        assert is_input_shape([1, 3, 8, 8])
        assert not any(is_input_shape(v) for v in ([], [0], [True, 2], "1,2", None))

    def test_the_schema_refuses_a_zero_size(self) -> None:
        from forge_ops.schema import SchemaError

        with pytest.raises(SchemaError, match="positive integers"):
            ProjectDoc.create("p").add_architecture("a", [3, 0])


class TestNames:
    @pytest.mark.parametrize("name", ["cifar10", "my-project", "a.b_c", ".hidden", "has space",
                                      "x" * 101, "-dash", "ü"])
    def test_project_names_follow_the_servers_rule(self, name: str) -> None:
        try:
            validate_project_name(name)
            server_accepts = True
        except InvalidName:
            server_accepts = False
        assert (check_project_name(name) is None) == server_accepts

    def test_empty_name_asks_for_one(self) -> None:
        assert check_project_name("") == "enter a project name"


class TestCatalogues:
    def test_every_functional_op_can_be_added(self) -> None:
        offered = [value for _, value in layer_type_choices(["Mine"], ["Conv2d"])]
        assert offered[0] == "Mine"
        assert {INPUT, OUTPUT, *FUNCTIONAL_OPS, "Conv2d"} <= set(offered)

    def test_every_torch_loss_can_be_a_criterion(self) -> None:
        project = ProjectDoc.create("p").to_plain()
        assert {value for _, value in reference_choices(project, "Criterion")} == TORCH_LOSSES
