"""A finished trial's score: a key of the metrics an Output published, or the last value of a
plotted line, as plain numbers (errors say what the trial produced instead)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from ._spec import Objective


class NoScore(ValueError):
    """The trial produced nothing the objective can score; the message says why."""


def metric_value(value: Any, objective: Objective) -> float:
    """The objective's number in a published artifact's value (a metrics map or a number)."""
    if objective.key is not None:
        if not isinstance(value, Mapping):
            raise NoScore(f"artifact {objective.artifact} is not a map of metrics, so it has "
                          f"no {objective.key!r}")
        if objective.key not in value:
            keys = ", ".join(sorted(map(str, value))) or "none"
            raise NoScore(f"artifact {objective.artifact} has no metric {objective.key!r} "
                          f"(it has: {keys})")
        value = value[objective.key]
    return _number(value, f"{objective.key or 'artifact ' + str(objective.artifact)}")


def graph_value(graphs: Mapping[str, Any], objective: Objective) -> float:
    """The last point's value of the objective's line in a job's ``graphs`` (title → line →
    points)."""
    points = (graphs.get(str(objective.graph)) or {}).get(str(objective.line)) or []
    if not points:
        raise NoScore(f"{objective.node_name} plotted no {objective.graph}/{objective.line}")
    return _number(points[-1][1], f"{objective.graph}/{objective.line}")


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise NoScore(f"{what} is {value!r}, not a number")
    if not math.isfinite(value):
        raise NoScore(f"{what} is {value!r}")
    return float(value)
