"""What the sweep view shows, as plain text from a run's record (no Textual here): the trials as
sortable rows, the best marked, a one-line summary, and a compact importance summary (how far
the objective moves across each parameter's values)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

#: Sort orders the view cycles through (``s``).
SORTS = ("number", "objective", "duration", "status")
COLUMNS = ("", "trial", "status", "objective", "duration", "execution", "settings")
_STATUS_ORDER = {"running": 0, "starting": 1, "queued": 2, "succeeded": 3, "pruned": 4,
                 "failed": 5, "cancelled": 6, "interrupted": 7}


def number(value: Any) -> str:
    return "-" if value is None else f"{value:.4g}"


def settings_text(trial: Mapping[str, Any]) -> str:
    return ", ".join(f"{target.split('.', 1)[-1]}={value}"
                     for target, value in trial["settings"].items())


def sorted_trials(record: Mapping[str, Any], sort: str = "number") -> list[dict[str, Any]]:
    """The trials in ``sort`` order: the best objective first, the longest first, running
    first, or by number."""
    trials = [dict(t) for t in record.get("trials") or []]
    goal = (record.get("objective") or {}).get("goal", "minimize")
    if sort == "objective":
        sign = 1 if goal == "minimize" else -1
        return sorted(trials, key=lambda t: (t["objective"] is None,
                                             sign * (t["objective"] or 0.0), t["number"]))
    if sort == "duration":
        return sorted(trials, key=lambda t: (-(t["duration"] or 0.0), t["number"]))
    if sort == "status":
        return sorted(trials, key=lambda t: (_STATUS_ORDER.get(t["status"], 9), t["number"]))
    return sorted(trials, key=lambda t: t["number"])


def trial_cells(trial: Mapping[str, Any]) -> tuple[str, ...]:
    """A trial's row, in :data:`COLUMNS` order."""
    duration = f"{trial['duration']:.1f}s" if trial.get("duration") is not None else "-"
    status = trial["status"]
    if trial.get("reason") and status in ("pruned", "failed"):
        status = f"{status}: {trial['reason']}"
    return ("★" if trial.get("best") else " ", str(trial["number"]), status,
            number(trial.get("objective")), duration, trial.get("execution") or "-",
            settings_text(trial))


def summary(record: Mapping[str, Any]) -> str:
    """``lr · run 1a2b3c4d running · 3/4 trials · best #2 0.81 (maximize accuracy …)``"""
    counts = record.get("counts") or {}
    done = sum(counts.get(s, 0) for s in ("succeeded", "failed", "pruned"))
    budget = (record.get("budget") or {}).get("trials", "?")
    text = (f"{record.get('sweep_name')} · run {record.get('run')} {record.get('status')} · "
            f"{done}/{budget} trials")
    if counts.get("pruned"):
        text += f" ({counts['pruned']} pruned)"
    best = next((t for t in record.get("trials") or [] if t.get("best")), None)
    if best is not None:
        text += f" · best #{best['number']} {number(best['objective'])}"
    describe = (record.get("objective") or {}).get("describe")
    if describe:
        text += f" ({describe})"
    if record.get("note") and record.get("status") != "running":
        text += f" · {record['note']}"
    return text


def importance(record: Mapping[str, Any], buckets: int = 3) -> list[str]:
    """Per parameter, how far the mean objective moves across its values (continuous values
    in ``buckets`` quantile groups), the widest first, with the value that scored best."""
    scored = [t for t in record.get("trials") or [] if t.get("objective") is not None]
    if len(scored) < 2:
        return []
    goal = (record.get("objective") or {}).get("goal", "minimize")
    pick = min if goal == "minimize" else max
    spreads: list[tuple[float, str]] = []
    for target in record.get("parameters", {}).values():
        groups = _groups([(t["settings"].get(target), t["objective"]) for t in scored
                          if target in t["settings"]], buckets)
        if len(groups) < 2:
            continue
        means = {label: sum(values) / len(values) for label, values in groups.items()}
        best = pick(means, key=lambda label: means[label])
        spread = max(means.values()) - min(means.values())
        spreads.append((spread, f"{target}: spread {number(spread)}, best at {best}"))
    total = sum(spread for spread, _ in spreads) or 1.0
    return [f"{line} ({spread / total:.0%})" for spread, line in
            sorted(spreads, key=lambda item: -item[0])]


def _groups(pairs: Sequence[tuple[Any, float]], buckets: int) -> dict[str, list[float]]:
    values = [value for value, _ in pairs]
    numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
    if not numeric or len(set(values)) <= buckets:
        grouped: dict[str, list[float]] = {}
        for value, objective in pairs:
            grouped.setdefault(str(value), []).append(objective)
        return grouped
    ordered = sorted(pairs, key=lambda pair: pair[0])
    size = math.ceil(len(ordered) / buckets)
    grouped = {}
    for start in range(0, len(ordered), size):
        chunk = ordered[start:start + size]
        label = f"{number(chunk[0][0])}…{number(chunk[-1][0])}"
        grouped[label] = [objective for _, objective in chunk]
    return grouped
