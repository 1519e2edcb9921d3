"""What a pipeline's setting differs in from another's, in words (the demo's twin vs the paper's).

Read from the project's plain data, so what is said is what will run, edits included. Compares
each pipeline's data source (the operation with no inputs that feeds the rest) and its Train
node's effective settings: the operation's defaults, overridden by the node's attributes and
references (architectures by name).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from forge_ops.operations import InterfaceError, parse_interface

__all__ = ["setting_differences"]

_TRAIN = "Train"


def _operation(project: Mapping[str, Any], node: Mapping[str, Any]) -> Mapping[str, Any]:
    return project["operations"].get(node["operation"], {})


def _find_pipeline(project: Mapping[str, Any], name: str) -> Mapping[str, Any] | None:
    return next((p for p in project["pipelines"].values() if p.get("name") == name), None)


def _source(project: Mapping[str, Any], pipeline: Mapping[str, Any]) -> str | None:
    """The data source's description: its operation and the attributes set on it."""
    fed = {edge["dst"] for edge in pipeline["edges"].values()}
    for node_id, node in pipeline["nodes"].items():
        operation = _operation(project, node)
        if node_id in fed or operation.get("name") in (None, "Output", "Input"):
            continue
        attributes = ", ".join(f"{k}={v}" for k, v in sorted(node["attributes"].items()))
        name = str(operation["name"])
        return f"{name} ({attributes})" if attributes else name
    return None


def _train_settings(project: Mapping[str, Any], pipeline: Mapping[str, Any]) -> dict[str, Any]:
    for node in pipeline["nodes"].values():
        operation = _operation(project, node)
        if operation.get("name") != _TRAIN:
            continue
        settings: dict[str, Any] = {}
        try:
            interface = parse_interface(str(operation.get("code", "")))
            settings.update({a.name: a.default for a in interface.attributes})
        except InterfaceError:
            pass  # a broken Train still has its node's values to compare
        settings.update(node["attributes"])
        for key, value in node["references"].items():
            arch = project["architectures"].get(str(value))
            settings[key] = arch["name"] if arch is not None else value
        return settings
    return {}


def setting_differences(
    project: Mapping[str, Any], pipeline: str, reference: str
) -> list[str]:
    """Phrases saying how ``pipeline`` differs from ``reference`` ("net SlimVGG11 instead of
    VGG16"); empty when either is missing or they agree."""
    ours, theirs = _find_pipeline(project, pipeline), _find_pipeline(project, reference)
    if ours is None or theirs is None:
        return []
    differences = []
    source, reference_source = _source(project, ours), _source(project, theirs)
    if source != reference_source:
        differences.append(f"data from {source} instead of {reference_source}")
    settings, reference_settings = _train_settings(project, ours), _train_settings(project, theirs)
    for key in sorted(set(settings) | set(reference_settings)):
        mine, paper = settings.get(key), reference_settings.get(key)
        if mine != paper:
            differences.append(f"{key} {mine} instead of {paper}")
    return differences
