"""Semantic diff of two plain project snapshots (pure functions, no pycrdt).

Each :class:`Change` carries a sentence a person would write ("Set Train.learning_rate
0.01 → 0.001 in pipeline cifar10") plus the structured facts behind it, so commit messages,
``forge show`` and ``forge diff`` all speak the same language. Snapshots are the validated
views the project reader returns (:class:`~forge_ops.schema.Project`); pipelines and
architectures are diffed in their own modules.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from ._changes import Action, Change, Target, code_diff, format_value
from ._diff_architectures import architecture_changes
from ._diff_common import display_name, entry_changes, ordered_keys
from ._diff_pipelines import pipeline_changes
from ._types import (
    SCHEMA_VERSION,
    Artifact,
    ExecutionSummary,
    Layer,
    Operation,
    Pipeline,
    Project,
    ProjectMeta,
    Sweep,
)

__all__ = ["Action", "Change", "Target", "code_diff", "diff_projects", "format_value"]


def diff_projects(old: Project | None, new: Project) -> list[Change]:
    """List the semantic changes from snapshot ``old`` (None: empty project) to ``new``."""
    old = old or _empty_project()
    changes: list[Change] = []
    changes += _meta(old["meta"], new["meta"])
    changes += _code_entries("operations", Target.OPERATION, old["operations"], new["operations"])
    changes += _code_entries("layers", Target.LAYER, old["layers"], new["layers"])
    changes += pipeline_changes(old, new)
    changes += architecture_changes(old, new)
    changes += _executions(old, new)
    changes += _artifacts(old["artifacts"], new["artifacts"])
    # Snapshots committed before sweeps existed have none.
    changes += _sweeps(old.get("sweeps", {}), new.get("sweeps", {}), new["pipelines"])
    return changes


def _empty_project() -> Project:
    return Project(
        meta=ProjectMeta(name="", schema_version=SCHEMA_VERSION, created=""),
        operations={},
        pipelines={},
        layers={},
        architectures={},
        executions={},
        artifacts={},
        sweeps={},
    )


def _meta(old: ProjectMeta, new: ProjectMeta) -> list[Change]:
    before, after = old["name"], new["name"]
    scope = ("meta", "", after or before)
    if before and after and before != after:
        return [
            Change(
                Action.RENAMED,
                Target.PROJECT,
                f"Renamed project {before} → {after}",
                scope,
                ("meta", "name"),
                before,
                after,
            )
        ]
    return []


def _code_entries(
    collection: Literal["operations", "layers"],
    target: Target,
    old: Mapping[str, Operation] | Mapping[str, Layer],
    new: Mapping[str, Operation] | Mapping[str, Layer],
) -> list[Change]:
    """Operations and custom layers: added, deleted, renamed, code edited."""
    changes: list[Change] = []
    for key in ordered_keys(old, new):
        a, b = old.get(key), new.get(key)
        name = display_name(b or a, key)
        scope = (collection, key, name)
        path = (collection, key)
        changes += entry_changes(target, collection, key, a, b, added="Added")
        if a is None or b is None:
            continue
        if a["code"] != b["code"]:
            plus, minus, detail = code_diff(a["code"], b["code"], name)
            changes.append(
                Change(
                    Action.EDITED,
                    Target.CODE,
                    f"Edited code of {target} {name} (+{plus} −{minus} lines)",
                    scope,
                    (*path, "code"),
                    lines_added=plus,
                    lines_removed=minus,
                    detail=detail,
                )
            )
        # Only operations have the flag; custom layers never differ here.
        if bool(a.get("builtin")) != bool(b.get("builtin")):
            state = "built-in" if b.get("builtin") else "user-defined"
            changes.append(
                Change(
                    Action.CHANGED,
                    target,
                    f"Marked {target} {name} {state}",
                    scope,
                    (*path, "builtin"),
                    a.get("builtin"),
                    b.get("builtin"),
                )
            )
    return changes


def _executions(old_root: Project, new_root: Project) -> list[Change]:
    old, new = old_root["executions"], new_root["executions"]
    pipelines = {**old_root["pipelines"], **new_root["pipelines"]}
    changes: list[Change] = []
    for key in ordered_keys(old, new):
        a, b = old.get(key), new.get(key)
        entry: ExecutionSummary | None = b or a
        assert entry is not None
        pipe = display_name(pipelines.get(entry["pipeline"]), entry["pipeline"])
        scope = ("executions", key, f"execution {key}")
        path = ("executions", key)
        if a is None:
            text = f"Ran pipeline {pipe} (execution {key})"
            changes.append(Change(Action.ADDED, Target.EXECUTION, text, scope, path, None, key))
        elif b is None:
            text = f"Deleted execution {key} of pipeline {pipe}"
            changes.append(Change(Action.REMOVED, Target.EXECUTION, text, scope, path, key, None))
        elif a["status"] != b["status"]:
            text = f"Execution {key} of pipeline {pipe} {b['status']}"
            changes.append(
                Change(
                    Action.CHANGED,
                    Target.EXECUTION,
                    text,
                    scope,
                    (*path, "status"),
                    a["status"],
                    b["status"],
                )
            )
    return changes


def _artifacts(old: Mapping[str, Artifact], new: Mapping[str, Artifact]) -> list[Change]:
    changes: list[Change] = []
    for key in ordered_keys(old, new):
        a, b = old.get(key), new.get(key)
        scope = ("artifacts", key, key)
        path = ("artifacts", key)
        if b is None:
            assert a is not None
            changes.append(
                Change(
                    Action.REMOVED,
                    Target.ARTIFACT,
                    f"Removed artifact {key}",
                    scope,
                    path,
                    a["hash"],
                    None,
                )
            )
        elif a is None:
            changes.append(
                Change(
                    Action.ADDED,
                    Target.ARTIFACT,
                    f"Recorded artifact {key}",
                    scope,
                    path,
                    None,
                    b["hash"],
                )
            )
        elif a["hash"] != b["hash"]:
            changes.append(
                Change(
                    Action.CHANGED,
                    Target.ARTIFACT,
                    f"Updated artifact {key}",
                    scope,
                    path,
                    a["hash"],
                    b["hash"],
                )
            )
    return changes


_SWEEP_PARTS = ("pipeline", "parameters", "objective", "budget", "sampler", "pruner")


def _sweeps(old: Mapping[str, Sweep], new: Mapping[str, Sweep],
            pipelines: Mapping[str, Pipeline]) -> list[Change]:
    """Sweeps: added, deleted, renamed, and which parts of their definition changed."""
    changes: list[Change] = []
    for key in ordered_keys(old, new):
        a, b = old.get(key), new.get(key)
        changes += entry_changes(Target.SWEEP, "sweeps", key, a, b, added="Defined")
        if a is None or b is None:
            continue
        name = display_name(b, key)
        changed = [part for part in _SWEEP_PARTS if a.get(part) != b.get(part)]
        if changed:
            what = ", ".join("pipeline " + display_name(pipelines.get(b["pipeline"]),
                                                        b["pipeline"])
                             if part == "pipeline" else part for part in changed)
            changes.append(Change(Action.CHANGED, Target.SWEEP, f"Changed sweep {name}: {what}",
                                  ("sweeps", key, name), ("sweeps", key, changed[0]),
                                  {p: a.get(p) for p in changed}, {p: b.get(p) for p in changed}))
    return changes
