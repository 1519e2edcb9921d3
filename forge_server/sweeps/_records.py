"""A sweep run as JSON for the API and ``forge sweep --json``: its settings, status and trials
(settings, status, objective, duration, execution), the best one marked."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from ._studies import TRIAL

if TYPE_CHECKING:
    from optuna.trial import FrozenTrial


def _duration(started: Any, finished: Any) -> float | None:
    try:
        return round((dt.datetime.fromisoformat(str(finished))
                      - dt.datetime.fromisoformat(str(started))).total_seconds(), 3)
    except ValueError:
        return None


def trial_json(trial: FrozenTrial, targets: dict[str, str]) -> dict[str, Any]:
    info = dict(trial.user_attrs.get(TRIAL) or {})
    status = info.get("status") or ("queued" if trial.state.name == "WAITING" else "starting")
    started, finished = info.get("started"), info.get("finished")
    return {
        "number": trial.number,
        "status": status,
        "execution": info.get("execution"),
        "values": dict(trial.params),
        "settings": {targets.get(name, name): value for name, value in trial.params.items()},
        "objective": trial.value if trial.state.name == "COMPLETE" else None,
        "last_value": trial.intermediate_values[trial.last_step]
        if trial.last_step is not None else None,
        "steps": len(trial.intermediate_values),
        "reason": info.get("reason"),
        "started": started,
        "finished": finished if status not in ("running", "starting") else None,
        "duration": _duration(started, finished) if started and finished else None,
        "commit": info.get("commit"),
        "retry_of": info.get("retry_of"),
    }


def run_json(run_id: str, run: dict[str, Any], state: dict[str, Any],
             trials: list[FrozenTrial], *, driving: bool) -> dict[str, Any]:
    """The record of a run (``driving``: whether this server drives it now)."""
    targets = dict(run.get("targets") or {})
    rows = [trial_json(trial, targets) for trial in trials]
    goal = (run.get("objective") or {}).get("goal", "minimize")
    scored = [row for row in rows if row["objective"] is not None]
    best = (min if goal == "minimize" else max)(scored, key=lambda r: r["objective"]) \
        if scored else None
    for row in rows:
        row["best"] = row is best
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["status"]] = counts.get(row["status"], 0) + 1
    return {
        "run": run_id,
        "project": run.get("project"),
        "branch": run.get("branch"),
        "sweep": run.get("sweep"),
        "sweep_name": run.get("sweep_name"),
        "pipeline": run.get("pipeline"),
        "pipeline_name": run.get("pipeline_name"),
        "commit": run.get("commit"),
        "tag": f"sweep/{run_id}",
        "executor": run.get("executor"),
        "by": run.get("by"),
        "created": run.get("created"),
        "status": state.get("status"),
        "note": state.get("note"),
        "ended": state.get("ended"),
        "elapsed_s": state.get("elapsed_s"),
        "running": driving,
        "objective": run.get("objective"),
        "budget": run.get("budget"),
        "sampler": run.get("sampler"),
        "parameters": targets,
        "counts": counts,
        "best": best["number"] if best is not None else None,
        "trials": rows,
    }


def run_summary(run_id: str, run: dict[str, Any], state: dict[str, Any]) -> dict[str, Any]:
    """A run in a listing (no trials)."""
    return {"run": run_id, "created": run.get("created"), "by": run.get("by"),
            "branch": run.get("branch"), "status": state.get("status"),
            "note": state.get("note"), "commit": run.get("commit")}
