"""A sweep as it will run: read from a project snapshot and checked whole, every problem named
(:class:`SweepError`), and the project content of one trial (:func:`trial_content`)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from forge_ops.schema import Pipeline, Project, Sweep

from ._parameters import Parameter, apply_values, find_node, read_parameters

#: Trials of a random or TPE sweep whose budget names no number.
DEFAULT_TRIALS = 10
DEFAULT_CONCURRENCY = 2
#: The built-in operation whose ``name`` attribute names the artifact it publishes.
OUTPUT_OPERATION = "Output"


class SweepError(ValueError):
    """A sweep that cannot run; ``problems`` lists everything to fix."""

    def __init__(self, sweep: str, problems: list[str]) -> None:
        self.sweep = sweep
        self.problems = problems
        count = f"{len(problems)} problem{'s' if len(problems) != 1 else ''}"
        lines = "\n".join(f"- {problem}" for problem in problems)
        super().__init__(f"sweep {sweep} cannot run ({count}):\n{lines}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.sweep, self.problems))


class Goal(StrEnum):
    MINIMIZE = "minimize"
    MAXIMIZE = "maximize"


class SamplerKind(StrEnum):
    GRID = "grid"
    RANDOM = "random"
    TPE = "tpe"


class PruneRule(StrEnum):
    MEDIAN = "median"
    HALVING = "halving"


@dataclass(frozen=True)
class Objective:
    """What a trial scores: a key of a published metrics artifact, or a graph line's last
    value (of node ``node``'s graph)."""

    goal: Goal
    artifact: str | None = None
    key: str | None = None
    node: str | None = None
    node_name: str | None = None
    graph: str | None = None
    line: str | None = None

    def describe(self) -> str:
        if self.artifact is not None:
            what = f"{self.key} of artifact {self.artifact}" if self.key else \
                f"artifact {self.artifact}"
        else:
            what = f"last {self.graph}/{self.line} of {self.node_name}"
        return f"{self.goal} {what}"


@dataclass(frozen=True)
class Budget:
    trials: int
    concurrency: int = DEFAULT_CONCURRENCY
    time_s: float | None = None


@dataclass(frozen=True)
class Pruner:
    """Early stopping on node ``node``'s graph line, as it is plotted."""

    rule: PruneRule
    node: str
    node_name: str
    graph: str
    line: str
    goal: Goal = Goal.MINIMIZE
    warmup_steps: int = 0
    startup_trials: int = 1
    min_resource: int | None = None
    reduction_factor: int = 3


@dataclass(frozen=True)
class SweepSpec:
    id: str
    name: str
    pipeline: str
    pipeline_name: str
    parameters: tuple[Parameter, ...]
    objective: Objective
    budget: Budget
    sampler: SamplerKind
    seed: int | None = None
    pruner: Pruner | None = None

    def grid(self) -> dict[str, list[Any]] | None:
        """Every parameter's grid values, or None when one is a continuous range."""
        grids = {p.name: p.grid() for p in self.parameters}
        if any(values is None for values in grids.values()):
            return None
        return {name: list(values) for name, values in grids.items() if values is not None}

    def grid_size(self) -> int | None:
        grid = self.grid()
        return None if grid is None else math.prod(len(values) for values in grid.values())

    def describe(self, values: Mapping[str, Any]) -> str:
        """``Train.learning_rate=0.01, Train.batch_size=32``"""
        return ", ".join(f"{p.target}={values[p.name]!r}" for p in self.parameters
                         if p.name in values)


def find_sweep(project: Project, ref: str) -> str:
    """A sweep's id from its id or its (unique) name; KeyError saying what exists otherwise."""
    sweeps = project.get("sweeps", {})
    if ref in sweeps:
        return ref
    matches = [sid for sid, s in sweeps.items() if s["name"] == ref]
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise KeyError(f"{len(matches)} sweeps are called {ref!r}; give one of their ids: "
                       f"{', '.join(sorted(matches))}")
    names = ", ".join(sorted(s["name"] for s in sweeps.values())) or "none yet"
    raise KeyError(f"no sweep {ref!r} in this project; sweeps: {names}")


def read_sweep(project: Project, sweep_id: str, definition: Sweep | None = None) -> SweepSpec:
    """The sweep ``sweep_id`` of ``project`` (or ``definition``, e.g. as a run froze it),
    checked against its pipeline; :class:`SweepError` lists every problem."""
    raw = definition or project.get("sweeps", {})[sweep_id]
    name = raw["name"]
    problems: list[str] = []
    pipeline = project["pipelines"].get(raw["pipeline"])
    if pipeline is None:
        raise SweepError(name, [f"its pipeline {raw['pipeline']!r} does not exist (deleted?); "
                                "point the sweep at an existing pipeline"])
    parameters = read_parameters(raw["parameters"], pipeline, problems)
    objective = _objective(raw["objective"], pipeline, project, problems)
    pruner = _pruner(raw["pruner"], pipeline, problems)
    sampler, seed = _sampler(raw["sampler"], parameters, problems)
    spec_grid = {p.name: p.grid() for p in parameters}
    size = math.prod(len(v) for v in spec_grid.values() if v is not None)
    budget = _budget(raw["budget"], sampler, size, problems)
    if not problems:
        _check_values(project, pipeline, parameters, problems)
    if problems:
        raise SweepError(name, problems)
    assert objective is not None and budget is not None
    return SweepSpec(sweep_id, name, raw["pipeline"], pipeline["name"], parameters, objective,
                     budget, sampler, seed, pruner)


def trial_content(project: Project, spec: SweepSpec, values: Mapping[str, Any]) -> Project:
    """``project`` with the trial's ``values`` set on its pipeline's nodes."""
    content = project.copy()
    pipelines = dict(content["pipelines"])
    pipelines[spec.pipeline] = apply_values(pipelines[spec.pipeline], spec.parameters, values)
    content["pipelines"] = pipelines
    return content


def _check_values(project: Project, pipeline: Pipeline, parameters: tuple[Parameter, ...],
                  problems: list[str]) -> None:
    """Every value a parameter may take must suit its node (checked as a run would)."""
    from forge_ops.operations import find_problems

    before = {(p.node, p.message) for p in _problems(project, pipeline, find_problems)}
    for parameter in parameters:
        for value in parameter.probes():
            trial = apply_values(pipeline, [parameter], {parameter.name: value})
            for problem in _problems(project, trial, find_problems):
                if problem.node == parameter.node and (problem.node, problem.message) \
                        not in before:
                    problems.append(f"parameter {parameter.name}: value {value!r} for "
                                    f"{parameter.target}: {problem.message}")
                    break


def _problems(project: Project, pipeline: Pipeline, find: Any) -> list[Any]:
    result: list[Any] = find(pipeline, project["operations"],
                             architectures=project["architectures"], layers=project["layers"],
                             artifacts=project["artifacts"])
    return result


def _goal(raw: Mapping[str, Any], where: str, problems: list[str],
          default: str | None = None) -> Goal:
    value = raw.get("goal", default)
    try:
        return Goal(value)
    except ValueError:
        problems.append(f"{where}: 'goal' is {value!r}; use minimize or maximize")
        return Goal.MINIMIZE


def _objective(raw: Mapping[str, Any], pipeline: Pipeline, project: Project,
               problems: list[str]) -> Objective | None:
    where = "objective"
    if not raw:
        problems.append(f"{where}: none given; e.g. {{\"artifact\": \"metrics\", \"key\": "
                        "\"accuracy\", \"goal\": \"maximize\"} or {\"node\": \"Train\", "
                        "\"graph\": \"Training Error\", \"line\": \"error\", \"goal\": "
                        "\"minimize\"}")
        return None
    goal = _goal(raw, where, problems)
    if "artifact" in raw:
        artifact, key = raw["artifact"], raw.get("key")
        operations = project["operations"]
        published = {str(n["attributes"].get("name", "output"))
                     for n in pipeline["nodes"].values()
                     if n["operation"] in operations
                     and operations[n["operation"]]["name"] == OUTPUT_OPERATION}
        if artifact not in published:
            problems.append(f"{where}: pipeline {pipeline['name']} publishes no artifact "
                            f"{artifact!r} (its Output operations publish: "
                            f"{', '.join(sorted(published)) or 'none'})")
        if key is not None and not isinstance(key, str):
            problems.append(f"{where}: 'key' must be the name of a metric, e.g. \"accuracy\"")
        return Objective(goal, artifact=str(artifact), key=key)
    node, why = find_node(pipeline, raw.get("node"))
    graph, line = raw.get("graph"), raw.get("line")
    if node is None or not isinstance(graph, str) or not isinstance(line, str):
        extra = f"; {why}" if why and "node" in raw else ""
        problems.append(f"{where}: give 'artifact' (and 'key') of a published metric, or "
                        f"'node', 'graph' and 'line' of a plotted line{extra}")
        return None
    return Objective(goal, node=node, node_name=pipeline["nodes"][node]["name"], graph=graph,
                     line=line)


def _pruner(raw: Mapping[str, Any], pipeline: Pipeline, problems: list[str]) -> Pruner | None:
    where = "pruner"
    rule = raw.get("rule", "none")
    if not raw or rule == "none":
        return None
    try:
        prune_rule = PruneRule(rule)
    except ValueError:
        problems.append(f"{where}: 'rule' is {rule!r}; use median, halving or none")
        return None
    node, why = find_node(pipeline, raw.get("node"))
    graph, line = raw.get("graph"), raw.get("line")
    if node is None or not isinstance(graph, str) or not isinstance(line, str):
        extra = f"; {why}" if why and "node" in raw else ""
        problems.append(f"{where}: give 'node', 'graph' and 'line' of the plotted line to "
                        f"watch (e.g. Train, \"Training Error\", \"error\"){extra}")
        return None
    numbers = {}
    for key, default, least in (("warmup_steps", 0, 0), ("startup_trials", 1, 0),
                                ("reduction_factor", 3, 2), ("min_resource", None, 1)):
        value = raw.get(key, default)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)
                                  or value < least):
            problems.append(f"{where}: {key!r} must be a whole number ≥ {least}")
        numbers[key] = value
    return Pruner(prune_rule, node, pipeline["nodes"][node]["name"], graph, line,
                  _goal(raw, where, problems, "minimize"), numbers["warmup_steps"] or 0,
                  numbers["startup_trials"] or 0, numbers["min_resource"],
                  numbers["reduction_factor"] or 3)


def _sampler(raw: Mapping[str, Any], parameters: tuple[Parameter, ...],
             problems: list[str]) -> tuple[SamplerKind, int | None]:
    finite = all(p.grid() is not None for p in parameters)
    kind = raw.get("kind", "grid" if finite else "tpe")
    seed = raw.get("seed")
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
        problems.append("sampler: 'seed' must be a whole number")
        seed = None
    try:
        sampler = SamplerKind(kind)
    except ValueError:
        problems.append(f"sampler: 'kind' is {kind!r}; use grid, random or tpe")
        return SamplerKind.TPE, seed
    if sampler is SamplerKind.GRID:
        ranges = [p.name for p in parameters if p.grid() is None]
        if ranges:
            problems.append(f"sampler: a grid needs finite values, but {', '.join(ranges)} "
                            "is a continuous range; give it 'count' or 'step', or use the "
                            "random or tpe sampler")
        conditional = [p.name for p in parameters if p.when is not None]
        if conditional:
            problems.append(f"sampler: a grid cannot search conditional parameters "
                            f"({', '.join(conditional)}); use the random or tpe sampler")
    return sampler, seed


def _budget(raw: Mapping[str, Any], sampler: SamplerKind, grid_size: int,
            problems: list[str]) -> Budget | None:
    default_trials = grid_size if sampler is SamplerKind.GRID else DEFAULT_TRIALS
    trials = raw.get("trials", default_trials)
    concurrency = raw.get("concurrency", DEFAULT_CONCURRENCY)
    time_s = raw.get("time_s")
    for key, value in (("trials", trials), ("concurrency", concurrency)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            problems.append(f"budget: {key!r} must be a whole number ≥ 1, got {value!r}")
            return None
    if time_s is not None and (not isinstance(time_s, int | float) or isinstance(time_s, bool)
                               or time_s <= 0):
        problems.append(f"budget: 'time_s' must be a number of seconds > 0, got {time_s!r}")
        return None
    if sampler is SamplerKind.GRID:
        trials = min(trials, grid_size)  # a grid runs each point once
    return Budget(trials, concurrency, float(time_s) if time_s is not None else None)
