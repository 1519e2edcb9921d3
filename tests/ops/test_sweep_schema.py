"""Sweeps in the project document: stored, read back, merged, diffed; older snapshots have none."""

from __future__ import annotations

import pytest
from pycrdt import Doc

from forge_ops.schema import ProjectDoc, SchemaError, commit_message, diff_projects

LR = {"node": "n1", "attribute": "learning_rate", "values": [0.1, 0.01]}


def sync(a: Doc, b: Doc) -> None:
    b.apply_update(a.get_update(b.get_state()))
    a.apply_update(b.get_update(a.get_state()))


@pytest.fixture
def project() -> ProjectDoc:
    project = ProjectDoc.create("demo")
    project.add_pipeline("train", pipeline_id="p1")
    return project


class TestSweepEntries:
    def test_round_trip(self, project: ProjectDoc) -> None:
        sweep = project.set_sweep("lr-search", "p1", {
            "parameters": {"lr": LR}, "objective": {"artifact": "metrics", "key": "accuracy",
                                                   "goal": "maximize"},
            "budget": {"concurrency": 2}, "sampler": {"kind": "grid"}})
        plain = project.to_plain()["sweeps"][sweep]
        assert plain == {"name": "lr-search", "pipeline": "p1", "parameters": {"lr": LR},
                         "objective": {"artifact": "metrics", "key": "accuracy",
                                       "goal": "maximize"},
                         "budget": {"concurrency": 2}, "sampler": {"kind": "grid"},
                         "pruner": {}}
        assert project.find("sweeps", "lr-search") == sweep
        project.rename(sweep, "lr")
        assert project.to_plain()["sweeps"][sweep]["name"] == "lr"
        project.remove(sweep)
        assert project.to_plain()["sweeps"] == {}

    def test_bad_parts_are_refused(self, project: ProjectDoc) -> None:
        with pytest.raises(SchemaError, match="a sweep has no part 'space'"):
            project.set_sweep("s", "p1", {"space": {}})
        with pytest.raises(ValueError, match="sweep s: budget"):
            project.set_sweep("s", "p1", {"budget": {"trials": object()}})
        assert project.to_plain()["sweeps"] == {}

    def test_replacing_a_definition_merges_with_a_concurrent_rename(
            self, project: ProjectDoc) -> None:
        sweep = project.set_sweep("s", "p1", {"parameters": {"lr": LR}})
        peer = ProjectDoc(Doc())
        sync(project.doc, peer.doc)
        peer.rename(sweep, "renamed")
        project.set_sweep("s", "p1", {"parameters": {"lr": LR}, "budget": {"trials": 3}},
                          sweep_id=sweep)
        sync(project.doc, peer.doc)
        assert project.to_plain()["sweeps"][sweep]["name"] == "renamed"
        assert peer.to_plain()["sweeps"][sweep]["budget"] == {"trials": 3}

    def test_malformed_sweep_is_skipped_with_a_warning(self, project: ProjectDoc) -> None:
        project.sweeps["bad"] = {"name": 3}
        assert project.to_plain()["sweeps"] == {}
        assert any("sweeps/bad" in str(w) for w in project.warnings)

    def test_restore_brings_sweeps_back(self, project: ProjectDoc) -> None:
        project.set_sweep("s", "p1", {"parameters": {"lr": LR}}, sweep_id="s1")
        snapshot = project.to_plain()
        project.remove("s1")
        project.restore(snapshot)
        assert project.to_plain()["sweeps"] == snapshot["sweeps"]


class TestSweepDiff:
    def test_messages(self, project: ProjectDoc) -> None:
        before = project.to_plain()
        project.set_sweep("lr-search", "p1", {"parameters": {"lr": LR}}, sweep_id="s1")
        defined = project.to_plain()
        assert commit_message(diff_projects(before, defined)) == "Defined sweep lr-search"
        project.set_sweep("lr-search", "p1", {"parameters": {"lr": {**LR, "values": [1.0]}},
                                              "budget": {"trials": 2}}, sweep_id="s1")
        assert commit_message(diff_projects(defined, project.to_plain())) == (
            "Changed sweep lr-search: parameters, budget")
        project.remove("s1")
        assert commit_message(diff_projects(defined, project.to_plain())) == (
            "Deleted sweep lr-search")

    def test_a_snapshot_from_before_sweeps_diffs(self, project: ProjectDoc) -> None:
        old = project.to_plain()
        del old["sweeps"]  # what commits made before sweeps existed hold
        project.set_sweep("s", "p1", {}, sweep_id="s1")
        assert commit_message(diff_projects(old, project.to_plain())) == "Defined sweep s"
        assert diff_projects(project.to_plain(), old)[0].text == "Deleted sweep s"
