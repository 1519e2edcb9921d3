"""A sweep read from the example project: checked against its pipeline, trial values applied,
and Optuna's samplers driven through ask-and-tell (seeded proposals repeat)."""

from __future__ import annotations

from typing import Any

import pytest

from forge_ops.examples import PIPELINE_SYNTHETIC, example_document
from forge_ops.schema import Project, ProjectDoc
from forge_ops.sweeps import (
    Goal,
    NoScore,
    SamplerKind,
    SweepError,
    SweepSpec,
    find_sweep,
    graph_value,
    metric_value,
    optuna_module,
    pruner,
    read_sweep,
    sampler,
    suggest,
    trial_content,
)

LR_GRID = {"node": "Train", "attribute": "learning_rate", "values": [0.1, 0.01, 0.001, 0.0001]}
ACCURACY = {"artifact": "synthetic-accuracies", "key": "accuracy", "goal": "maximize"}


def project_with(**parts: Any) -> tuple[Project, str]:
    doc = example_document("cifar10", "demo")
    pipeline = doc.find("pipelines", PIPELINE_SYNTHETIC)
    assert pipeline is not None
    sweep = ProjectDoc(doc.doc).set_sweep("lr", pipeline, {"parameters": {"lr": LR_GRID},
                                                           "objective": ACCURACY, **parts})
    return doc.to_plain(), sweep


def spec_of(**parts: Any) -> SweepSpec:
    project, sweep = project_with(**parts)
    return read_sweep(project, sweep)


def proposals(spec: SweepSpec, count: int) -> list[dict[str, Any]]:
    optuna = optuna_module()
    study = optuna.create_study(direction=str(spec.objective.goal), sampler=sampler(spec))
    asked = []
    for _ in range(count):
        trial = study.ask()
        values = suggest(trial, spec)
        asked.append(values)
        study.tell(trial, float(len(asked)))
    return asked


class TestReading:
    def test_a_grid_over_learning_rates(self) -> None:
        spec = spec_of()
        assert spec.sampler is SamplerKind.GRID
        assert spec.budget.trials == 4 and spec.budget.concurrency == 2
        assert spec.objective.goal is Goal.MAXIMIZE
        assert spec.parameters[0].target == "Train.learning_rate"
        project, sweep = project_with()
        assert find_sweep(project, "lr") == sweep

    def test_every_problem_is_named(self) -> None:
        with pytest.raises(SweepError) as caught:
            spec_of(parameters={
                "a": {"node": "Trian", "attribute": "learning_rate", "values": [1.0]},
                "b": {"node": "Train", "attribute": "learning_rate", "low": 1, "high": 0.1},
                "c": {"node": "Train", "attribute": "batch_size", "values": ["big"]},
                "d": {"node": "Train", "attribute": "momentum", "low": 0.5, "high": 0.99,
                      "when": {"parameter": "nope", "equals": "sgd"}},
            }, objective={"artifact": "accuracies", "goal": "best"},
                budget={"concurrency": 0}, sampler={"kind": "tpe"})
        text = str(caught.value)
        assert "no node 'Trian' in pipeline train-synthetic" in text
        assert "parameter b: 'low' and 'high' must be numbers with low < high" in text
        assert "parameter d: 'when' names parameter 'nope'" in text
        assert "publishes no artifact 'accuracies'" in text
        assert "'goal' is 'best'; use minimize or maximize" in text
        assert "budget: 'concurrency' must be a whole number ≥ 1" in text

    def test_values_are_checked_against_the_operation(self) -> None:
        with pytest.raises(SweepError, match=r"parameter c: value 'big' for Train.batch_size: "
                                             r".*'batch_size' is 'big' but must be int"):
            spec_of(parameters={"c": {"node": "Train", "attribute": "batch_size",
                                      "values": [16, "big"]}})

    def test_a_grid_needs_finite_values(self) -> None:
        with pytest.raises(SweepError, match="lr is a continuous range; give it 'count'"):
            spec_of(parameters={"lr": {"node": "Train", "attribute": "learning_rate",
                                       "low": 1e-4, "high": 1e-1, "log": True}},
                    sampler={"kind": "grid"})

    def test_ranges_spread_into_grids(self) -> None:
        spec = spec_of(parameters={
            "lr": {"node": "Train", "attribute": "learning_rate", "low": 1e-4, "high": 1e-1,
                   "log": True, "count": 4},
            "batch": {"node": "Train", "attribute": "batch_size", "low": 16, "high": 64,
                      "step": 16}})
        assert spec.grid() == {"lr": [0.0001, 0.001, 0.01, 0.1], "batch": [16, 32, 48, 64]}
        assert spec.budget.trials == 16

    def test_trial_content_sets_the_node(self) -> None:
        project, sweep = project_with()
        spec = read_sweep(project, sweep)
        content = trial_content(project, spec, {"lr": 0.01})
        nodes = content["pipelines"][spec.pipeline]["nodes"]
        train = next(n for n in nodes.values() if n["name"] == "Train")
        assert train["attributes"]["learning_rate"] == 0.01
        original = next(n for n in project["pipelines"][spec.pipeline]["nodes"].values()
                        if n["name"] == "Train")
        assert original["attributes"]["learning_rate"] == 0.001  # untouched


class TestSearch:
    def test_a_grid_proposes_every_point_once(self) -> None:
        spec = spec_of()
        assert sorted(v["lr"] for v in proposals(spec, 4)) == [0.0001, 0.001, 0.01, 0.1]

    @pytest.mark.parametrize("kind", ["random", "tpe"])
    def test_a_seeded_sampler_proposes_the_same_trials_twice(self, kind: str) -> None:
        spec = spec_of(parameters={
            "lr": {"node": "Train", "attribute": "learning_rate", "low": 1e-4, "high": 1e-1,
                   "log": True},
            "optimizer": {"node": "Train", "attribute": "optimizer", "values": ["adam", "sgd"]},
            "momentum": {"node": "Train", "attribute": "momentum", "low": 0.5, "high": 0.99,
                         "when": {"parameter": "optimizer", "equals": "sgd"}}},
            sampler={"kind": kind, "seed": 42}, budget={"trials": 12})
        first, second = proposals(spec, 12), proposals(spec, 12)
        assert first == second
        assert len({v["lr"] for v in first}) == 12
        for values in first:  # momentum only where the optimizer is sgd
            assert ("momentum" in values) == (values["optimizer"] == "sgd")

    @pytest.mark.parametrize(("rule", "kind"), [("median", "MedianPruner"),
                                                 ("halving", "SuccessiveHalvingPruner")])
    def test_pruners(self, rule: str, kind: str) -> None:
        spec = spec_of(pruner={"rule": rule, "node": "Train", "graph": "Training Error",
                               "line": "error", "warmup_steps": 5, "reduction_factor": 2})
        assert spec.pruner is not None and spec.pruner.node_name == "Train"
        assert type(pruner(spec)).__name__ == kind
        with pytest.raises(SweepError, match="pruner: give 'node', 'graph' and 'line'"):
            spec_of(pruner={"rule": rule, "node": "Train"})

    def test_without_a_seed_proposals_differ(self) -> None:
        spec = spec_of(parameters={"lr": {"node": "Train", "attribute": "learning_rate",
                                          "low": 1e-4, "high": 1e-1}},
                       sampler={"kind": "random"})
        assert proposals(spec, 3) != proposals(spec, 3)


class TestScores:
    def test_metric_and_graph_values(self) -> None:
        spec = spec_of()
        assert metric_value({"accuracy": 0.75, "accuracy/cat": 0.5}, spec.objective) == 0.75
        with pytest.raises(NoScore, match="has no metric 'accuracy' \\(it has: acc\\)"):
            metric_value({"acc": 1.0}, spec.objective)
        graph = spec_of(objective={"node": "Train", "graph": "Training Error", "line": "error",
                                   "goal": "minimize"}).objective
        assert graph_value({"Training Error": {"error": [[1, 2.5], [2, 1.5]]}}, graph) == 1.5
        with pytest.raises(NoScore, match="plotted no Training Error/error"):
            graph_value({}, graph)
        with pytest.raises(NoScore, match="nan"):
            graph_value({"Training Error": {"error": [[1, float("nan")]]}}, graph)
