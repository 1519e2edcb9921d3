"""What the executions list and the compare view say about runs, pure (no widgets, no I/O):
each run's published metrics and key metric, the order of the list, and the table of what
differs between runs (attributes, references, code, metrics, durations).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from forge_ops.operations import InterfaceError, parse_interface
from forge_ops.schema import Execution
from forge_tui.app._values import show_value

__all__ = [
    "LAST_SUFFIX",
    "SORT_KEYS",
    "CompareRow",
    "RunDetails",
    "compare_rows",
    "default_metric",
    "execution_graphs",
    "flatten_metrics",
    "format_metric",
    "metric_names",
    "metric_value",
    "sort_runs",
]

LAST_SUFFIX = " (last)"
"""Marks a metric read from a plot (the last point of a line) rather than a published one."""


@dataclass
class RunDetails:
    """What is known about one execution beyond its summary in the project document."""

    execution_id: str
    duration: float | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    """Published metrics: what the run's Output operations published, flattened."""
    execution: Execution | None = None
    """The execution document, when it was read (plots, the pipeline as it ran)."""
    finished: bool = False


def flatten_metrics(published: Mapping[str, Any]) -> dict[str, float]:
    """Numbers among published values (artifact name → JSON value): a dict of numbers gives
    its keys (``accuracy``, ``accuracy/cat``), a number its artifact's name; a key two
    artifacts share is prefixed with the artifact's name."""
    metrics: dict[str, float] = {}
    for name in sorted(published):
        value = published[name]
        entries = value.items() if isinstance(value, Mapping) else [(name, value)]
        for key, number in entries:
            if isinstance(number, bool) or not isinstance(number, int | float):
                continue
            if not math.isfinite(float(number)):
                continue
            label = str(key) if key not in metrics else f"{name}/{key}"
            metrics[label] = float(number)
    return metrics


def execution_graphs(execution: Execution) -> dict[str, dict[str, Any]]:
    """All jobs' graphs of one execution merged; a line two jobs share is named by job."""
    specs = execution["meta"]["pipeline"].get("jobs") or {}
    merged: dict[str, dict[str, Any]] = {}
    for job_id, graphs in sorted(execution["graphs"].items()):
        for title, lines in graphs.items():
            target = merged.setdefault(title, {})
            for line, points in lines.items():
                name = line
                if name in target:
                    name = f"{(specs.get(job_id) or {}).get('name', job_id)}.{line}"
                target[name] = points
    return merged


def _plotted(details: RunDetails) -> dict[str, float]:
    """The last point of every plotted line, as ``"line (last)"``."""
    if details.execution is None:
        return {}
    found: dict[str, float] = {}
    graphs = execution_graphs(details.execution)
    for title in sorted(graphs):
        for line in sorted(graphs[title]):
            points = graphs[title][line]
            if points:
                found.setdefault(f"{line}{LAST_SUFFIX}", float(points[-1][1]))
    return found


def metric_value(details: RunDetails | None, name: str) -> float | None:
    if details is None:
        return None
    if name.endswith(LAST_SUFFIX):
        return _plotted(details).get(name)
    return details.metrics.get(name)


def metric_names(runs: Sequence[RunDetails]) -> list[str]:
    """Every metric the runs have: published ones first (in the order runs publish them), then
    the last points of plotted lines."""
    names: dict[str, None] = {}
    for details in runs:
        names.update(dict.fromkeys(details.metrics))
    for details in runs:
        names.update(dict.fromkeys(_plotted(details)))
    return list(names)


def default_metric(runs: Sequence[RunDetails]) -> str | None:
    """The key metric until the user picks one: the first metric the newest run that published
    any published (``runs`` newest first), else the last point of the first plotted line."""
    for details in runs:
        if details.metrics:
            return next(iter(details.metrics))
    for details in runs:
        plotted = _plotted(details)
        if plotted:
            return next(iter(plotted))
    return None


def format_metric(value: float | None) -> str:
    return "" if value is None else f"{value:.4g}"


SORT_KEYS = ("when", "metric", "duration", "pipeline", "status", "by")
"""Columns the executions list sorts by."""


def sort_runs(
    ids: Sequence[str],
    key: str,
    *,
    descending: bool,
    summaries: Mapping[str, Mapping[str, Any]],
    details: Mapping[str, RunDetails],
    metric: str | None,
    pipeline_name: Callable[[str], str],
) -> list[str]:
    """``ids`` in the list's order; runs without the value (not read yet) go last."""

    def value(xid: str) -> Any:
        summary = summaries[xid]
        if key == "when":
            return summary["created"]
        if key == "pipeline":
            return pipeline_name(xid).lower()
        if key in ("status", "by"):
            return str(summary.get(key) or "")
        if key == "duration":
            return details[xid].duration if xid in details else None
        return metric_value(details.get(xid), metric) if metric else None

    values = {xid: value(xid) for xid in ids}
    known = [xid for xid in ids if values[xid] is not None]
    unknown = [xid for xid in ids if values[xid] is None]
    known.sort(key=lambda xid: (values[xid], summaries[xid]["created"], xid), reverse=descending)
    unknown.sort(key=lambda xid: (summaries[xid]["created"], xid), reverse=True)
    return known + unknown


@dataclass(frozen=True)
class CompareRow:
    """One line of the compare table: what it is, and one cell per run."""

    label: str
    cells: tuple[str, ...]
    kind: str
    """``run`` (status, when, duration), ``setting`` (an attribute, reference or code that
    differs) or ``metric``."""


def _settings(execution: Execution | None) -> dict[str, str]:
    """``"Job.attribute"`` → value shown, for every attribute, reference and code of a run."""
    if execution is None:
        return {}
    found: dict[str, str] = {}
    for spec in (execution["meta"]["pipeline"].get("jobs") or {}).values():
        job = str(spec.get("name") or spec.get("operation") or "?")
        code = str(spec.get("code") or "")
        # The run's snapshot names the values set on the node; the others are the code's.
        attributes: dict[str, Any] = {}
        try:
            attributes = {a.name: a.default for a in parse_interface(code).attributes}
        except InterfaceError:
            pass
        attributes.update(spec.get("attributes") or {})
        for key, value in sorted(attributes.items()):
            found[f"{job}.{key}"] = show_value(value, 24)
        for key, value in sorted((spec.get("references") or {}).items()):
            found[f"{job}.{key} (reference)"] = show_value(value, 24)
        digest = hashlib.sha256(code.strip().encode()).hexdigest()[:8]
        found[f"{job} code"] = f"code {digest}"
    return found


def compare_rows(
    runs: Sequence[RunDetails], summaries: Mapping[str, Mapping[str, Any]]
) -> list[CompareRow]:
    """The compare table: status, when and duration of each run; every attribute, reference
    and code that differs between them (a job one run lacks shows "—"); every metric."""
    from forge_tui.app.widgets.job_output import format_elapsed

    def row(label: str, cells: list[str], kind: str) -> CompareRow:
        return CompareRow(label, tuple(cells), kind)

    names = [
        str(d.execution["meta"]["pipeline"].get("name") or "") if d.execution else ""
        for d in runs
    ]
    rows = [row("pipeline", names, "run")] if len(set(names)) > 1 else []
    rows += [
        row("status", [str(summaries.get(d.execution_id, {}).get("status", "")) for d in runs],
            "run"),
        row("when", [str(summaries.get(d.execution_id, {}).get("created", ""))
                     .replace("T", " ")[:16] for d in runs], "run"),
        row("duration", [format_elapsed(d.duration) for d in runs], "run"),
    ]
    settings = [_settings(d.execution) for d in runs]
    for label in sorted({key for found in settings for key in found}):
        cells = [found.get(label, "—") for found in settings]
        if len(set(cells)) > 1:
            rows.append(row(label, cells, "setting"))
    for name in metric_names(runs):
        values = [metric_value(d, name) for d in runs]
        if any(v is not None for v in values):
            rows.append(row(name, [format_metric(v) for v in values], "metric"))
    return rows
