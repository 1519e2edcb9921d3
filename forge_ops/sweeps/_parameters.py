"""A sweep's parameters: what each one sets (a node's attribute or reference) and the values it
may take (a list, or a range on a linear or log scale, of integers or floats), read from the
plain JSON of the project document with every problem named."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from forge_ops.schema import Pipeline

#: Significant digits of the points a float range's ``count`` spreads (0.0031622776601683794
#: reads as 0.00316228 in trials and commits).
GRID_DIGITS = 6


@dataclass(frozen=True)
class Parameter:
    """One searched setting: node ``node``'s ``field`` ("attributes" or "references") ``key``."""

    name: str
    node: str
    node_name: str
    field: str
    key: str
    values: tuple[Any, ...] | None = None  # a list of choices (categorical)
    low: float | None = None
    high: float | None = None
    log: bool = False
    integer: bool = False
    step: float | None = None
    count: int | None = None  # a grid of this many points over [low, high]
    when: tuple[str, Any] | None = None  # (parameter, value): searched only then

    @property
    def target(self) -> str:
        """What it sets, as people write it: ``Train.learning_rate``."""
        return f"{self.node_name}.{self.key}"

    def grid(self) -> list[Any] | None:
        """The finite list of values it takes in a grid, or None for a continuous range."""
        if self.values is not None:
            return list(self.values)
        assert self.low is not None and self.high is not None
        if self.integer and self.count is None:
            return list(range(int(self.low), int(self.high) + 1, int(self.step or 1)))
        if self.count is None and self.step is not None:
            steps = math.floor((self.high - self.low) / self.step + 1e-9)
            return [_tidy(self.low + i * self.step) for i in range(steps + 1)]
        if self.count is None:
            return None
        if self.count == 1:
            return [int(self.low) if self.integer else self.low]
        if self.log:
            ends = math.log(self.low), math.log(self.high)
            points = [math.exp(ends[0] + i * (ends[1] - ends[0]) / (self.count - 1))
                      for i in range(self.count)]
        else:
            points = [self.low + i * (self.high - self.low) / (self.count - 1)
                      for i in range(self.count)]
        if self.integer:
            return sorted({round(p) for p in points})
        return [_tidy(p) for p in points]

    def probes(self) -> list[Any]:
        """Values to check against the node's interface before the sweep runs."""
        grid = self.grid()
        if grid is not None:
            return grid
        assert self.low is not None and self.high is not None
        return [int(v) if self.integer else v for v in (self.low, self.high)]


def _tidy(value: float) -> float:
    return float(f"{value:.{GRID_DIGITS}g}")


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def find_node(pipeline: Pipeline, ref: Any) -> tuple[str | None, str]:
    """A node's id from its id or its (unique) name, else None and what went wrong."""
    nodes = pipeline["nodes"]
    if isinstance(ref, str) and ref in nodes:
        return ref, ""
    matches = [nid for nid, node in nodes.items() if node["name"] == ref]
    if len(matches) == 1:
        return matches[0], ""
    if matches:
        return None, f"{len(matches)} nodes are called {ref!r}; give one of their ids: " + \
            ", ".join(sorted(matches))
    names = ", ".join(sorted(node["name"] for node in nodes.values())) or "none"
    return None, f"no node {ref!r} in pipeline {pipeline['name']} (nodes: {names})"


def read_parameters(raw: Mapping[str, Any], pipeline: Pipeline,
                    problems: list[str]) -> tuple[Parameter, ...]:
    """The parameters of ``raw`` (name → definition), each problem appended to ``problems``."""
    if not raw:
        problems.append("parameters: none given; add at least one, e.g. "
                        '{"lr": {"node": "Train", "attribute": "learning_rate", '
                        '"values": [0.01, 0.001]}}')
    found: list[Parameter] = []
    for name, spec in raw.items():
        parameter = _read_one(name, spec, pipeline, problems)
        if parameter is not None:
            found.append(parameter)
    names = {p.name for p in found}
    conditional = [p for p in found if p.when is not None]
    for parameter in conditional:
        assert parameter.when is not None
        other = parameter.when[0]
        if other not in names:
            problems.append(f"parameter {parameter.name}: 'when' names parameter {other!r}, "
                            "which this sweep does not have")
        elif any(p.name == other and p.when is not None for p in found):
            problems.append(f"parameter {parameter.name}: 'when' names {other!r}, which is "
                            "conditional itself; condition on an unconditional parameter")
    # The unconditional ones first: they decide whether the others are searched.
    return tuple(sorted(found, key=lambda p: p.when is not None))


def _read_one(name: str, spec: Any, pipeline: Pipeline, problems: list[str]
              ) -> Parameter | None:
    where = f"parameter {name}"
    if not isinstance(spec, Mapping):
        problems.append(f"{where}: must be a map such as "
                        '{"node": "Train", "attribute": "learning_rate", "values": [0.1, 0.01]}')
        return None
    count = len(problems)
    node, why = find_node(pipeline, spec.get("node"))
    if node is None:
        problems.append(f"{where}: {why}" if spec.get("node") is not None else
                        f"{where}: say which node it sets with 'node' (a name or id)")
    has_attribute, has_reference = "attribute" in spec, "reference" in spec
    if has_attribute == has_reference:
        problems.append(f"{where}: give either 'attribute' or 'reference' (the name of what "
                        "it sets on the node)")
    field = "attributes" if has_attribute else "references"
    key: Any = spec.get("attribute") if has_attribute else spec.get("reference")
    if not isinstance(key, str) or not key:
        problems.append(f"{where}: the {field[:-1]} name must be a non-empty string")
    values = spec.get("values")
    ranged = "low" in spec or "high" in spec
    if (values is None) == (not ranged):
        problems.append(f"{where}: give 'values' (a list) or a range 'low' and 'high'")
    low: Any = spec.get("low")
    high: Any = spec.get("high")
    log: Any = spec.get("log", False)
    step: Any = spec.get("step")
    grid_count: Any = spec.get("count")
    integer = False
    if values is not None and (not isinstance(values, list) or not values):
        problems.append(f"{where}: 'values' must be a non-empty list")
    elif values is None and ranged:
        kind = spec.get("type", "int" if isinstance(low, int) and isinstance(high, int)
                        and not isinstance(step, float) else "float")
        integer = kind == "int"
        if kind not in ("int", "float"):
            problems.append(f"{where}: 'type' is {kind!r}; use int or float (a list of "
                            "choices goes in 'values')")
        elif not (_number(low) and _number(high)) or low >= high:
            problems.append(f"{where}: 'low' and 'high' must be numbers with low < high, got "
                            f"{low!r} and {high!r}")
        elif not isinstance(log, bool) or (log and low <= 0):
            problems.append(f"{where}: 'log' must be true or false, and a log range needs "
                            "low > 0")
        if step is not None and (not _number(step) or step <= 0 or (log and step)):
            problems.append(f"{where}: 'step' must be a positive number (and not on a log "
                            "scale)")
        if grid_count is not None and (not isinstance(grid_count, int)
                                       or isinstance(grid_count, bool) or grid_count < 1):
            problems.append(f"{where}: 'count' (points in a grid) must be a whole number ≥ 1")
    when = spec.get("when")
    condition = None
    if when is not None:
        if not (isinstance(when, Mapping) and isinstance(when.get("parameter"), str)
                and "equals" in when):
            problems.append(f"{where}: 'when' must look like "
                            '{"parameter": "optimizer", "equals": "sgd"}')
        else:
            condition = (when["parameter"], when["equals"])
    unknown = sorted(set(spec) - {"node", "attribute", "reference", "values", "low", "high",
                                  "log", "type", "step", "count", "when"})
    if unknown:
        problems.append(f"{where}: unknown key {unknown[0]!r}")
    if len(problems) > count or node is None:
        return None
    return Parameter(
        name, node, pipeline["nodes"][node]["name"], field, key,
        values=tuple(values) if values is not None else None,
        low=low, high=high, log=bool(log), integer=integer, step=step, count=grid_count,
        when=condition)


def apply_values(pipeline: Pipeline, parameters: Sequence[Parameter],
                 values: Mapping[str, Any]) -> Pipeline:
    """A copy of ``pipeline`` with each parameter's value in ``values`` set on its node."""
    nodes: dict[str, Any] = dict(pipeline["nodes"])
    for parameter in parameters:
        if parameter.name not in values:
            continue  # a conditional parameter that was not searched
        node = dict(nodes[parameter.node])
        node[parameter.field] = {**node[parameter.field], parameter.key: values[parameter.name]}
        nodes[parameter.node] = node
    copy: Any = dict(pipeline)
    copy["nodes"] = nodes
    result: Pipeline = copy
    return result
