"""Semantic diff and commit messages, in the words of issue 4."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forge_ops.schema import (
    Action,
    ProjectDoc,
    Target,
    commit_message,
    diff_projects,
    format_value,
)

TRAIN = "def train(model, data, learning_rate=0.01):\n    return model\n"


@pytest.fixture
def project() -> ProjectDoc:
    return ProjectDoc.create("demo")


class Snap:
    """Take a snapshot, let the test edit, diff against the new snapshot."""

    def __init__(self, project: ProjectDoc) -> None:
        self.project = project
        self.before = project.to_plain()

    def message(self) -> str:
        return commit_message(diff_projects(self.before, self.project.to_plain()))


@pytest.fixture
def cifar(project: ProjectDoc) -> dict[str, str]:
    ids = {
        "train": project.add_operation("Train", TRAIN),
        "norm": project.add_operation("NormalizeData", "def n(data):\n    return data\n"),
        "test": project.add_operation("Test", "def t(model):\n    pass\n"),
        "pipe": project.add_pipeline("cifar10"),
        "arch": project.add_architecture("vgg"),
    }
    ids["n_train"] = project.add_node(ids["pipe"], ids["train"], attributes={"learning_rate": 0.01})
    ids["n_norm"] = project.add_node(ids["pipe"], ids["norm"])
    return ids


class TestIssueExamples:
    def test_added_operation_to_pipeline(self, project: ProjectDoc, cifar: dict[str, str]) -> None:
        snap = Snap(project)
        project.add_node(cifar["pipe"], cifar["test"])
        assert snap.message() == "Added operation Test to pipeline cifar10"

    def test_set_attribute(self, project: ProjectDoc, cifar: dict[str, str]) -> None:
        snap = Snap(project)
        project.set_attribute(cifar["pipe"], cifar["n_train"], "learning_rate", 0.001)
        assert snap.message() == "Set Train.learning_rate 0.01 → 0.001 in pipeline cifar10"

    def test_connected(self, project: ProjectDoc, cifar: dict[str, str]) -> None:
        snap = Snap(project)
        project.connect(cifar["pipe"], cifar["n_norm"], "train", cifar["n_train"], "data")
        assert snap.message() == "Connected NormalizeData.train → Train.data"

    def test_edited_code(self, project: ProjectDoc, cifar: dict[str, str]) -> None:
        snap = Snap(project)
        body = "".join(f"    step_{i}()\n" for i in range(12))
        project.set_code(cifar["train"], "def train(model, data):\n" + body)
        assert snap.message() == "Edited code of operation Train (+13 −2 lines)"

    def test_renamed_architecture(self, project: ProjectDoc, cifar: dict[str, str]) -> None:
        snap = Snap(project)
        project.rename(cifar["arch"], "vgg16")
        assert snap.message() == "Renamed architecture vgg → vgg16"

    def test_many_changes_summarise(self, project: ProjectDoc, cifar: dict[str, str]) -> None:
        snap = Snap(project)
        pipe = cifar["pipe"]
        extra = [project.add_node(pipe, cifar["test"], f"Test{i}") for i in range(3)]
        project.connect(pipe, cifar["n_train"], "model", extra[0], "model")
        project.connect(pipe, cifar["n_train"], "model", extra[1], "model")
        assert snap.message() == "Edited pipeline cifar10: 3 nodes added, 2 connections changed"


class TestChanges:
    def test_no_change_is_empty(self, project: ProjectDoc, cifar: dict[str, str]) -> None:
        assert diff_projects(project.to_plain(), project.to_plain()) == []
        assert commit_message([]) == "No changes"

    def test_attribute_added_and_cleared(self, project: ProjectDoc, cifar: dict[str, str]) -> None:
        snap = Snap(project)
        project.set_attribute(cifar["pipe"], cifar["n_norm"], "mode", "std")
        project.remove_attribute(cifar["pipe"], cifar["n_train"], "learning_rate")
        changes = diff_projects(snap.before, project.to_plain())
        assert [c.text for c in changes] == [
            "Set NormalizeData.mode to 'std' in pipeline cifar10",
            "Cleared Train.learning_rate (was 0.01) in pipeline cifar10",
        ]
        assert changes[0].path == (
            "pipelines",
            cifar["pipe"],
            "nodes",
            cifar["n_norm"],
            "attributes",
            "mode",
        )

    def test_removed_node_names_its_disconnections(
        self, project: ProjectDoc, cifar: dict[str, str]
    ) -> None:
        project.connect(cifar["pipe"], cifar["n_norm"], "train", cifar["n_train"], "data")
        snap = Snap(project)
        project.remove_node(cifar["pipe"], cifar["n_norm"])
        changes = diff_projects(snap.before, project.to_plain())
        assert [c.text for c in changes] == [
            "Removed NormalizeData from pipeline cifar10",
            "Disconnected NormalizeData.train → Train.data",
        ]

    def test_rename_operation_and_node(self, project: ProjectDoc, cifar: dict[str, str]) -> None:
        snap = Snap(project)
        project.rename(cifar["test"], "Evaluate")
        project.rename_node(cifar["pipe"], cifar["n_train"], "TrainFast")
        assert snap.message() == (
            "Renamed operation Test → Evaluate; Renamed Train → TrainFast in pipeline cifar10"
        )

    def test_architecture_layers(self, project: ProjectDoc, cifar: dict[str, str]) -> None:
        arch = cifar["arch"]
        snap = Snap(project)
        conv = project.add_arch_layer(arch, "Conv2d", "conv1", {"out_channels": 64})
        relu = project.add_arch_layer(arch, "relu")
        project.connect_layers(arch, conv, relu)
        changes = diff_projects(snap.before, project.to_plain())
        assert [c.text for c in changes] == [
            "Added layer conv1 (Conv2d) to architecture vgg",
            "Added layer relu to architecture vgg",
            "Connected conv1 → relu in architecture vgg",
        ]
        snap = Snap(project)
        project.set_layer_attribute(arch, conv, "out_channels", 128)
        assert snap.message() == "Set conv1.out_channels 64 → 128 in architecture vgg"

    def test_created_pipeline_summary(self, project: ProjectDoc, cifar: dict[str, str]) -> None:
        snap = Snap(project)
        pipe = project.add_pipeline("mnist")
        a = project.add_node(pipe, cifar["norm"])
        b = project.add_node(pipe, cifar["train"])
        project.connect(pipe, a, "train", b, "data")
        project.set_attribute(pipe, b, "epochs", 3)  # part of the new node, not listed
        assert snap.message() == ("Created pipeline mnist: 2 nodes added, 1 connection changed")

    def test_many_entries_count(self, project: ProjectDoc) -> None:
        snap = Snap(project)
        for i in range(4):
            project.add_operation(f"Op{i}", "pass\n")
        project.add_pipeline("p")
        project.add_architecture("a")
        assert snap.message() == "Edited 4 operations, 1 pipeline, 1 architecture (6 changes)"

    def test_first_commit_from_nothing(self, project: ProjectDoc, cifar: dict[str, str]) -> None:
        changes = diff_projects(None, project.to_plain())
        assert {c.action for c in changes} == {Action.ADDED}
        assert any(c.target == Target.NODE for c in changes)

    def test_executions_and_artifacts(self, project: ProjectDoc, cifar: dict[str, str]) -> None:
        snap = Snap(project)
        ex = project.record_execution(cifar["pipe"], "abc", "alice", execution_id="e1")
        project.record_artifact("model", "h1", "model")
        assert snap.message() == "Ran pipeline cifar10 (execution e1); Recorded artifact model"
        snap = Snap(project)
        project.set_execution_status(ex, "succeeded")
        project.record_artifact("model", "h2", "model")
        assert snap.message() == (
            "Execution e1 of pipeline cifar10 succeeded; Updated artifact model"
        )

    def test_code_change_detail_and_json(self, project: ProjectDoc, cifar: dict[str, str]) -> None:
        snap = Snap(project)
        project.set_code(cifar["train"], TRAIN.replace("0.01", "0.1"))
        (change,) = diff_projects(snap.before, project.to_plain())
        assert change.lines_added == 1 and change.lines_removed == 1
        assert change.detail is not None and "+def train(model, data, learning_rate=0.1):" in (
            change.detail
        )
        assert json.loads(json.dumps(change.to_json()))["target"] == "code"


class TestFormatValue:
    @pytest.mark.parametrize(
        ("value", "text"),
        [
            (0.001, "0.001"),
            (3, "3"),
            ("adam", "'adam'"),
            (None, "None"),
            (True, "True"),
            ([3, 32, 32], "[3,32,32]"),
            ({"b": 1, "a": 2}, '{"a":2,"b":1}'),
            ("x" * 100, "'" + "x" * 38 + "…"),
        ],
    )
    def test_values(self, value: object, text: str) -> None:
        assert format_value(value) == text


def random_edit(project: ProjectDoc, data: st.DataObject) -> None:
    """One random edit through the helpers (names and values drawn by hypothesis)."""
    plain = project.to_plain()
    ops, pipes, archs = (list(plain[k]) for k in ("operations", "pipelines", "architectures"))
    name = data.draw(st.sampled_from(["A", "B", "Train", "Ü", "x y"]))
    value = data.draw(st.one_of(st.integers(-3, 3), st.floats(0, 1), st.text(max_size=3)))
    choice = data.draw(st.integers(0, 9))
    if choice == 0 or not ops:
        project.add_operation(name, f"x = {value!r}\n")
    elif choice == 1:
        project.rename(data.draw(st.sampled_from(ops)), name)
    elif choice == 2:
        project.set_code(data.draw(st.sampled_from(ops)), f"y = {value!r}\nz = 1\n")
    elif choice == 3 or not pipes:
        project.add_pipeline(name)
    elif choice == 4:
        pipe = data.draw(st.sampled_from(pipes))
        project.add_node(pipe, data.draw(st.sampled_from(ops)))
    elif choice in (5, 6, 7):
        pipe = data.draw(st.sampled_from(pipes))
        nodes = list(plain["pipelines"][pipe]["nodes"])
        if not nodes:
            return
        node = data.draw(st.sampled_from(nodes))
        if choice == 5:
            project.set_attribute(pipe, node, name, value)
        elif choice == 6:
            project.connect(pipe, node, "out", data.draw(st.sampled_from(nodes)), name)
        else:
            project.remove_node(pipe, node)
    elif choice == 8 or not archs:
        project.add_architecture(name, [1, 2])
    else:
        arch = data.draw(st.sampled_from(archs))
        layer = project.add_arch_layer(arch, "Linear", name, {"in_features": 3})
        project.set_layer_attribute(arch, layer, "out_features", value)


class TestProperties:
    @settings(max_examples=40, deadline=None)
    @given(st.data())
    def test_diff_is_empty_exactly_when_content_is_equal(self, data: st.DataObject) -> None:
        project = ProjectDoc.create("p")
        for _ in range(data.draw(st.integers(0, 6))):
            random_edit(project, data)
        before = project.to_plain()
        for _ in range(data.draw(st.integers(0, 4))):
            random_edit(project, data)
        after = project.to_plain()
        changes = diff_projects(before, after)
        assert (changes == []) == (before == after)
        message = commit_message(changes)
        assert (message == "No changes") == (before == after)
        assert "\n" not in message
        # Restoring the old snapshot undoes every edit exactly.
        project.restore(before)
        assert project.to_plain() == before
        assert diff_projects(before, project.to_plain()) == []
