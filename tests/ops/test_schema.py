"""Schema views: create, change, read back; malformed content skipped with warnings."""

from __future__ import annotations

import json
import logging

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pycrdt import Array, Doc, Map, Text

from forge_ops.schema import (
    SCHEMA_VERSION,
    ExecutionDoc,
    JobStatus,
    ProjectDoc,
    SchemaError,
    to_plain,
)

TRAIN = "def train(model, data, learning_rate=0.01):\n    return model\n"


def sync(a: Doc, b: Doc) -> None:
    """Exchange missing updates both ways, as two peers through a relay would."""
    a_update = a.get_update(b.get_state())
    b_update = b.get_update(a.get_state())
    b.apply_update(a_update)
    a.apply_update(b_update)


@pytest.fixture
def project() -> ProjectDoc:
    return ProjectDoc.create("cifar10")


class TestProject:
    def test_create_writes_meta(self, project: ProjectDoc) -> None:
        plain = project.to_plain()
        assert plain["meta"]["name"] == "cifar10"
        assert plain["meta"]["schema_version"] == SCHEMA_VERSION
        assert plain["meta"]["created"].endswith("+00:00")
        assert project.warnings == []

    def test_pipeline_round_trip(self, project: ProjectDoc) -> None:
        train = project.add_operation("Train", TRAIN)
        norm = project.add_operation("NormalizeData", "def normalize(data):\n    return data\n")
        pipe = project.add_pipeline("cifar10")
        n_norm = project.add_node(pipe, norm)
        n_train = project.add_node(
            pipe, train, attributes={"learning_rate": 0.01}, settings={"num_gpus": 1}
        )
        edge = project.connect(pipe, n_norm, "train", n_train, "data")
        project.set_attribute(pipe, n_train, "learning_rate", 0.001)
        project.set_reference(pipe, n_train, "model", "arch1")

        plain = project.to_plain()
        node = plain["pipelines"][pipe]["nodes"][n_train]
        assert node == {
            "operation": train,
            "name": "Train",
            "attributes": {"learning_rate": 0.001},
            "references": {"model": "arch1"},
            "settings": {"num_gpus": 1},
        }
        assert isinstance(node["settings"]["num_gpus"], int)  # Yjs floats normalised
        assert plain["pipelines"][pipe]["edges"][edge] == {
            "src": n_norm,
            "src_port": "train",
            "dst": n_train,
            "dst_port": "data",
        }
        assert plain["operations"][train] == {"name": "Train", "code": TRAIN, "builtin": False}

    def test_remove_node_drops_its_edges(self, project: ProjectDoc) -> None:
        op = project.add_operation("Op")
        pipe = project.add_pipeline("p")
        a, b, c = (project.add_node(pipe, op, name) for name in "abc")
        project.connect(pipe, a, "out", b, "in")
        keep = project.connect(pipe, b, "out", c, "in")
        project.connect(pipe, c, "out", a, "in2")
        project.remove_node(pipe, a)
        plain = project.to_plain()["pipelines"][pipe]
        assert set(plain["nodes"]) == {b, c}
        assert set(plain["edges"]) == {keep}

    def test_architecture_round_trip(self, project: ProjectDoc) -> None:
        arch = project.add_architecture("vgg", [3, 32, 32])
        conv = project.add_arch_layer(arch, "Conv2d", "conv1", {"in_channels": 3})
        relu = project.add_arch_layer(arch, "relu")
        edge = project.connect_layers(arch, conv, relu)
        project.set_layer_attribute(arch, conv, "out_channels", 64)
        project.rename(arch, "vgg16")
        plain = project.to_plain()["architectures"][arch]
        assert plain["name"] == "vgg16"
        assert plain["input_shape"] == [3, 32, 32]
        assert plain["layers"][conv] == {
            "type": "Conv2d",
            "name": "conv1",
            "attributes": {"in_channels": 3, "out_channels": 64},
        }
        assert plain["layers"][relu]["name"] == "relu"
        assert plain["edges"][edge] == {"src": conv, "dst": relu, "index": 0}
        project.remove_arch_layer(arch, conv)
        assert project.to_plain()["architectures"][arch]["edges"] == {}

    def test_custom_layer_and_artifact_and_execution(self, project: ProjectDoc) -> None:
        layer = project.add_layer("Block", "class Block: pass\n")
        project.record_artifact("model", "ab" * 32, "model", shape=[10], dtype="float32", nbytes=40)
        pipe = project.add_pipeline("p")
        ex = project.record_execution(pipe, "c0ffee", "alice")
        project.set_execution_status(ex, "running")
        plain = project.to_plain()
        assert plain["layers"][layer] == {"name": "Block", "code": "class Block: pass\n"}
        assert plain["artifacts"]["model"]["shape"] == [10]
        assert plain["artifacts"]["model"]["bytes"] == 40
        assert plain["executions"][ex]["status"] == "running"
        assert plain["executions"][ex]["by"] == "alice"

    def test_scalar_and_empty_artifacts_are_recorded(self, project: ProjectDoc) -> None:
        # An artifact's shape is an array's: [] for a scalar (an accuracy), 0 for an empty axis.
        project.record_artifact("accuracy", "ab" * 32, "tensor", shape=[], dtype="float64")
        project.record_artifact("none", "cd" * 32, "tensor", shape=[0, 3], dtype="float32")
        artifacts = project.to_plain()["artifacts"]
        assert (artifacts["accuracy"]["shape"], artifacts["none"]["shape"]) == ([], [0, 3])
        with pytest.raises(SchemaError, match="non-negative"):
            project.record_artifact("bad", "ef" * 32, "tensor", shape=[-1])
        arch = project.add_architecture("Net")
        with pytest.raises(SchemaError, match="positive integers"):
            project.set_input_shape(arch, [])

    def test_find_and_remove(self, project: ProjectDoc) -> None:
        op = project.add_operation("Train")
        assert project.find("operations", "Train") == op
        assert project.find("operations", "Nope") is None
        project.remove(op)
        assert project.to_plain()["operations"] == {}

    def test_to_plain_is_json(self, project: ProjectDoc) -> None:
        op = project.add_operation("Train", TRAIN)
        pipe = project.add_pipeline("p")
        project.add_node(pipe, op, attributes={"layers": [1, 2, {"a": None}], "flag": True})
        plain = project.to_plain()
        assert json.loads(json.dumps(plain)) == plain

    def test_restore_into_empty_doc_keeps_ids_and_content(self, project: ProjectDoc) -> None:
        op = project.add_operation("Train", TRAIN)
        pipe = project.add_pipeline("p")
        a = project.add_node(pipe, op)
        b = project.add_node(pipe, op, "Train2")
        project.connect(pipe, a, "model", b, "model")
        arch = project.add_architecture("net")
        layer = project.add_arch_layer(arch, "Linear", attributes={"in_features": 4})
        project.connect_layers(arch, layer, layer, 1)
        project.record_artifact("x", "h", "tensor")
        plain = project.to_plain()
        fresh = ProjectDoc(Doc())
        fresh.restore(plain)
        assert fresh.to_plain() == plain

    def test_concurrent_edits_merge(self, project: ProjectDoc) -> None:
        op = project.add_operation("Train", TRAIN)
        pipe = project.add_pipeline("p")
        node = project.add_node(pipe, op)
        other = ProjectDoc(Doc())
        sync(project.doc, other.doc)
        project.set_attribute(pipe, node, "learning_rate", 0.1)
        other.set_attribute(pipe, node, "epochs", 5)
        other.set_code(op, TRAIN.replace("return model", "return model  # trained"))
        project.set_code(op, "# header\n" + TRAIN)
        sync(project.doc, other.doc)
        assert project.to_plain() == other.to_plain()
        merged = project.to_plain()
        assert merged["pipelines"][pipe]["nodes"][node]["attributes"] == {
            "learning_rate": 0.1,
            "epochs": 5,
        }
        assert merged["operations"][op]["code"] == "# header\n" + TRAIN.replace(
            "return model", "return model  # trained"
        )


class TestSetCode:
    @settings(max_examples=60, deadline=None)
    @given(st.text(max_size=30), st.text(max_size=30))
    def test_any_unicode_edit(self, before: str, after: str) -> None:
        project = ProjectDoc.create("p")
        op = project.add_operation("Op", before)
        project.set_code(op, after)
        assert str(project.code_text(op)) == after

    def test_small_edit_touches_only_the_changed_span(self, project: ProjectDoc) -> None:
        op = project.add_operation("Op", "é中文😀 abc")
        peer = ProjectDoc(Doc())
        sync(project.doc, peer.doc)
        project.set_code(op, "é中文😀 abXc")
        peer.set_code(op, "Yé中文😀 abc")
        sync(project.doc, peer.doc)
        assert str(project.code_text(op)) == "Yé中文😀 abXc"


class TestErrors:
    def test_unknown_ids_say_what_is_missing(self, project: ProjectDoc) -> None:
        with pytest.raises(SchemaError, match="no pipeline with id 'nope'"):
            project.add_node("nope", "op", "x")
        pipe = project.add_pipeline("q")
        with pytest.raises(SchemaError, match="no operation 'op'"):
            project.add_node(pipe, "op")
        with pytest.raises(SchemaError, match="has no node 'a'"):
            project.connect(pipe, "a", "out", "b", "in")

    def test_bad_values_rejected_without_writing(self, project: ProjectDoc) -> None:
        op = project.add_operation("Op")
        pipe = project.add_pipeline("p")
        node = project.add_node(pipe, op)
        before = project.to_plain()
        with pytest.raises(ValueError, match="not a plain JSON value"):
            project.set_attribute(pipe, node, "x", object())
        with pytest.raises(SchemaError, match="non-empty string"):
            project.rename(op, "  ")
        with pytest.raises(SchemaError, match="positive integers"):
            project.add_architecture("a", [3, -1])
        assert project.to_plain() == before


class TestMalformed:
    def test_malformed_entries_are_skipped_with_warnings(
        self, project: ProjectDoc, caplog: pytest.LogCaptureFixture
    ) -> None:
        good = project.add_operation("Good", "x = 1\n")
        pipe = project.add_pipeline("p")
        node = project.add_node(pipe, good)
        with project.doc.transaction():
            project.operations["noname"] = Map({"code": Text("")})
            project.operations["wrongtype"] = Map({"name": 3, "code": Text("")})
            project.operations["scalar"] = "not a map"
            nodes = project.pipelines[pipe]["nodes"]
            nodes["badnode"] = Map({"name": "x"})
            project.pipelines[pipe]["edges"]["dangling"] = Map(
                {"src": node, "src_port": "o", "dst": "ghost", "dst_port": "i"}
            )
            project.artifacts["weird"] = Map({"hash": "h", "kind": "t", "shape": ["a"]})
        with caplog.at_level(logging.WARNING, logger="forge_ops.schema"):
            plain = project.to_plain()
        assert set(plain["operations"]) == {good}
        assert set(plain["pipelines"][pipe]["nodes"]) == {node}
        assert plain["pipelines"][pipe]["edges"] == {}
        assert plain["artifacts"] == {}
        problems = {w.path: w.problem for w in project.warnings}
        assert "missing key 'name'" in problems["operations/noname"]
        assert "expected a string" in problems["operations/wrongtype"]
        assert "expected a map" in problems["operations/scalar"]
        assert "missing key 'operation'" in problems[f"pipelines/{pipe}/nodes/badnode"]
        assert "missing node 'ghost'" in problems[f"pipelines/{pipe}/edges/dangling"]
        assert "integers" in problems["artifacts/weird"]
        assert "operations/noname" in caplog.text

    def test_plain_dict_entries_from_simple_peers_are_read(self, project: ProjectDoc) -> None:
        project.operations["plain"] = {"name": "Plain", "code": "pass"}
        assert project.to_plain()["operations"]["plain"] == {
            "name": "Plain",
            "code": "pass",
            "builtin": False,
        }

    def test_newer_schema_version_reported(self, project: ProjectDoc) -> None:
        project.meta["schema_version"] = SCHEMA_VERSION + 1
        project.meta["future_thing"] = Map({"x": 1})
        project.add_operation("Still read")
        plain = project.to_plain()
        assert [o["name"] for o in plain["operations"].values()] == ["Still read"]
        assert "future_thing" not in plain["meta"]
        assert any("newer than this reader" in str(w) for w in project.warnings)

    def test_wrong_root_content_does_not_crash(self) -> None:
        doc = Doc()
        doc["operations"] = Array([1, 2])
        plain = to_plain(doc)
        assert plain["operations"] == {}


class TestExecution:
    def test_jobs_console_graphs_images(self) -> None:
        ex = ExecutionDoc(console_cap=3)
        ex.init({"name": "cifar10", "nodes": {}}, "c0ffee", "local")
        job = ex.add_job("node1", "op1")
        ex.set_job_status(job, JobStatus.RUNNING)
        ex.append_console(job, ["a", "b"])
        ex.append_console(job, ["c", "d", "e"])
        ex.add_points(job, "loss", "train", [(0, 2.5), (1, 1.25)])
        ex.add_points(job, "loss", "train", [(2, 1.0)])
        ex.set_image(job, "confusion", "h1")
        ex.set_output(job, "model", "h2")
        ex.set_job_fields(job, cache_key="k")
        ex.set_job_status(job, "succeeded")
        ex.set_status("succeeded")
        plain = ex.to_plain()
        assert plain["console"][job] == ["c", "d", "e"]
        assert plain["console_dropped"][job] == 2
        assert plain["graphs"][job]["loss"]["train"] == [[0, 2.5], [1, 1.25], [2, 1]]
        assert plain["images"][job] == {"confusion": "h1"}
        got = plain["jobs"][job]
        assert got["status"] == "succeeded" and got["outputs"] == {"model": "h2"}
        assert got["started"] and got["finished"] and got["cache_key"] == "k"
        assert plain["meta"]["commit"] == "c0ffee" and plain["meta"]["finished"]
        assert json.loads(json.dumps(plain)) == plain
        assert ExecutionDoc.from_plain(plain).to_plain() == plain

    def test_a_restart_starts_the_execution_clock_again(self) -> None:
        ex = ExecutionDoc()
        ex.set_status("running")
        ex.set_status("succeeded")
        ex.meta["started"] = "2026-01-01T10:00:00+00:00"  # the first run, an hour earlier
        ex.meta["finished"] = "2026-01-01T10:01:00+00:00"
        ex.set_status("running")  # a job of it restarted
        meta = ex.to_plain()["meta"]
        assert meta["started"] > "2026-01-01T10:01:00+00:00" and meta["finished"] is None
        ex.set_status("succeeded")
        meta = ex.to_plain()["meta"]
        assert meta["finished"] is not None and meta["started"] <= meta["finished"]

    def test_failed_job_keeps_error_and_requeue_clears(self) -> None:
        ex = ExecutionDoc()
        job = ex.add_job("n", "o")
        ex.set_job_status(job, "failed", error="ZeroDivisionError: division by zero")
        assert ex.to_plain()["jobs"][job]["error"].startswith("ZeroDivisionError")
        ex.set_job_status(job, "queued")
        assert ex.to_plain()["jobs"][job]["error"] is None

    def test_bad_status_and_fields_rejected(self) -> None:
        ex = ExecutionDoc()
        job = ex.add_job("n", "o")
        with pytest.raises(ValueError, match="'done' is not a valid JobStatus"):
            ex.set_job_status(job, "done")
        with pytest.raises(SchemaError, match="unknown job field"):
            ex.set_job_fields(job, colour="red")
        with pytest.raises(SchemaError, match="no job 'zz'"):
            ex.set_job_status("zz", "running")

    def test_malformed_job_skipped(self) -> None:
        ex = ExecutionDoc()
        good = ex.add_job("n", "o")
        ex.jobs["bad"] = Map({"node": "n", "operation": "o", "status": "exploded"})
        ex.console["x"] = "not lines"
        plain = ex.to_plain()
        assert set(plain["jobs"]) == {good}
        assert plain["console"] == {}
        assert {w.path for w in ex.warnings} == {"jobs/bad", "console/x"}


class TestRestore:
    def test_restore_old_snapshot_exactly(self, project: ProjectDoc) -> None:
        op = project.add_operation("Train", TRAIN)
        pipe = project.add_pipeline("p")
        node = project.add_node(pipe, op, attributes={"lr": 0.1})
        arch = project.add_architecture("net", [1, 28, 28])
        project.add_arch_layer(arch, "Linear", attributes={"in_features": 784})
        old = project.to_plain()
        project.set_code(op, "# changed\n" + TRAIN)
        project.set_attribute(pipe, node, "lr", 0.5)
        project.remove_node(pipe, node)
        project.add_operation("Extra")
        project.rename(arch, "net2")
        project.set_input_shape(arch, None)
        project.restore(old)
        assert project.to_plain() == old

    def test_restore_only_touches_what_differs(self, project: ProjectDoc) -> None:
        op = project.add_operation("Train", TRAIN)
        pipe = project.add_pipeline("p")
        node = project.add_node(pipe, op, attributes={"lr": 0.1})
        old = project.to_plain()
        project.set_attribute(pipe, node, "lr", 0.5)
        peer = ProjectDoc(Doc())
        sync(project.doc, peer.doc)
        # A peer edits code concurrently with the restore of the attribute.
        peer.set_code(op, TRAIN + "# peer\n")
        text_before = project.code_text(op)
        project.restore(old)
        assert project.code_text(op) is text_before or str(project.code_text(op)) == TRAIN
        sync(project.doc, peer.doc)
        merged = project.to_plain()
        assert merged["operations"][op]["code"] == TRAIN + "# peer\n"
        assert merged["pipelines"][pipe]["nodes"][node]["attributes"] == {"lr": 0.1}
        assert merged == peer.to_plain()
