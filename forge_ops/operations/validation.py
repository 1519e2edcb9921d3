"""Check a pipeline before anything runs; report every problem at once.

A pure function over the project reader's plain views (the pipeline's nodes and edges, the
operations' code and, when given, the project's architectures, layers and artifacts that
references point at). Each Problem names the node (by its display name) and says what to do.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from forge_ops.graph_order import all_cycles
from forge_ops.schema import Architecture, Artifact, Layer, Node, Operation, Pipeline, Project

from ._connections import types_compatible
from ._interface import InterfaceError, OperationInterface
from ._parse import parse_interface
from .types import TORCH_LOSSES

#: The built-in operation whose ``name`` attribute names the artifact it publishes.
OUTPUT_OPERATION = "Output"

__all__ = [
    "PipelineInvalid",
    "Problem",
    "ProblemKind",
    "find_problems",
    "validate_pipeline",
    "validate_project_pipeline",
]


class ProblemKind(StrEnum):
    UNKNOWN_OPERATION = "unknown_operation"
    INVALID_CODE = "invalid_code"
    CYCLE = "cycle"
    DANGLING_EDGE = "dangling_edge"
    UNKNOWN_PORT = "unknown_port"
    TYPE_MISMATCH = "type_mismatch"
    INPUT_CONNECTED_TWICE = "input_connected_twice"
    UNCONNECTED_INPUT = "unconnected_input"
    UNKNOWN_ATTRIBUTE = "unknown_attribute"
    ATTRIBUTE_TYPE = "attribute_type"
    MISSING_REFERENCE = "missing_reference"
    DANGLING_REFERENCE = "dangling_reference"
    AMBIGUOUS_REFERENCE = "ambiguous_reference"
    UNKNOWN_REFERENCE = "unknown_reference"
    SETTING = "setting"
    OUTPUT_NAME = "output_name"
    EMPTY = "empty"


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a pipeline. ``node``/``edge`` are ids (None when not about one)."""

    kind: ProblemKind
    message: str
    node: str | None = None
    edge: str | None = None

    def __str__(self) -> str:
        return self.message


class PipelineInvalid(ValueError):
    """The pipeline cannot run; ``problems`` lists everything that must be fixed."""

    def __init__(self, pipeline: str, problems: list[Problem]) -> None:
        self.pipeline = pipeline
        self.problems = problems
        lines = "\n".join(f"- {problem.message}" for problem in problems)
        count = f"{len(problems)} problem{'s' if len(problems) != 1 else ''}"
        super().__init__(f"pipeline {pipeline} cannot run ({count}):\n{lines}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.pipeline, self.problems))


def validate_pipeline(
    pipeline: Pipeline,
    operations: Mapping[str, Operation],
    *,
    architectures: Mapping[str, Architecture] | None = None,
    layers: Mapping[str, Layer] | None = None,
    artifacts: Mapping[str, Artifact] | None = None,
) -> None:
    """Raise PipelineInvalid listing every problem (see ``find_problems``)."""
    problems = find_problems(
        pipeline, operations, architectures=architectures, layers=layers, artifacts=artifacts
    )
    if problems:
        raise PipelineInvalid(pipeline["name"] or "(unnamed)", problems)


def validate_project_pipeline(project: Project, pipeline_id: str) -> None:
    """``validate_pipeline`` for a pipeline of a plain project snapshot (all references checked)."""
    pipelines = project["pipelines"]
    if pipeline_id not in pipelines:
        raise PipelineInvalid(pipeline_id, [Problem(ProblemKind.EMPTY, f"there is no pipeline "
                                                    f"with id {pipeline_id!r} in this project")])
    validate_pipeline(
        pipelines[pipeline_id],
        project["operations"],
        architectures=project["architectures"],
        layers=project["layers"],
        artifacts=project["artifacts"],
    )


def find_problems(
    pipeline: Pipeline,
    operations: Mapping[str, Operation],
    *,
    architectures: Mapping[str, Architecture] | None = None,
    layers: Mapping[str, Layer] | None = None,
    artifacts: Mapping[str, Artifact] | None = None,
) -> list[Problem]:
    """Every problem of the pipeline, in node order then edge order.

    Reference targets are checked against ``architectures``/``layers``/``artifacts`` when those
    are given (None skips that check, e.g. when the caller does not have them).
    """
    checker = _Checker(pipeline, operations, architectures, layers, artifacts)
    return checker.run()


class _Checker:
    def __init__(
        self,
        pipeline: Pipeline,
        operations: Mapping[str, Operation],
        architectures: Mapping[str, Architecture] | None,
        layers: Mapping[str, Layer] | None,
        artifacts: Mapping[str, Artifact] | None,
    ) -> None:
        self.nodes = pipeline["nodes"]
        self.edges = pipeline["edges"]
        self.operations = operations
        self.architectures = architectures
        self.layers = layers
        self.artifacts = artifacts
        self.problems: list[Problem] = []
        self.interfaces: dict[str, OperationInterface] = {}
        self.labels = self._labels()

    def run(self) -> list[Problem]:
        if not self.nodes:
            self.add(ProblemKind.EMPTY, "the pipeline has no operations; add at least one")
        for node_id, node in self.nodes.items():
            self.check_node(node_id, node)
        connected = self.check_edges()
        self.check_unconnected(connected)
        self.check_cycles()
        self.check_output_names()
        return self.problems

    def add(self, kind: ProblemKind, message: str, node: str | None = None,
            edge: str | None = None) -> None:
        self.problems.append(Problem(kind, message, node, edge))

    def _labels(self) -> dict[str, str]:
        names: dict[str, str] = {}
        for node_id, node in self.nodes.items():
            operation = self.operations.get(node["operation"])
            names[node_id] = node["name"] or (operation["name"] if operation else "") or node_id
        counts: defaultdict[str, int] = defaultdict(int)
        for name in names.values():
            counts[name] += 1
        return {node_id: name if counts[name] == 1 else f"{name} (node {node_id})"
                for node_id, name in names.items()}

    # Nodes: operation, code, attributes, references, settings.

    def check_node(self, node_id: str, node: Node) -> None:
        label = self.labels[node_id]
        operation_id = node["operation"]
        operation = self.operations.get(operation_id)
        if operation is None:
            self.add(ProblemKind.UNKNOWN_OPERATION, f"{label}: its operation {operation_id!r} "
                     "does not exist (deleted?); pick an existing operation or remove the node",
                     node_id)
            return
        try:
            interface = parse_interface(operation["code"])
        except InterfaceError as exc:
            self.add(ProblemKind.INVALID_CODE, f"{label}: the code of operation "
                     f"{operation['name']!r} is invalid ({exc}); fix the code", node_id)
            return
        self.interfaces[node_id] = interface
        self.check_attributes(node_id, label, interface, node["attributes"])
        self.check_references(node_id, label, interface, node["references"])
        self.check_settings(node_id, label, node["settings"])

    def check_attributes(self, node_id: str, label: str, interface: OperationInterface,
                         values: Mapping[str, Any]) -> None:
        known = ", ".join(attribute.name for attribute in interface.attributes) or "none"
        for name, value in values.items():
            attribute = interface.attribute(name)
            if attribute is None:
                self.add(ProblemKind.UNKNOWN_ATTRIBUTE, f"{label}: unknown attribute {name!r} "
                         f"(its attributes are: {known}); remove it", node_id)
            elif isinstance(value, float) and not math.isfinite(value):
                self.add(ProblemKind.ATTRIBUTE_TYPE, f"{label}: attribute {name!r} is "
                         f"{value!r}; set a finite number", node_id)
            elif not attribute.accepts(value):
                self.add(ProblemKind.ATTRIBUTE_TYPE, f"{label}: attribute {name!r} is "
                         f"{value!r} but must be {attribute.describe_type()}; set a valid value",
                         node_id)

    def check_references(self, node_id: str, label: str, interface: OperationInterface,
                         values: Mapping[str, Any]) -> None:
        for name in values:
            if interface.reference(name) is None:
                self.add(ProblemKind.UNKNOWN_REFERENCE, f"{label}: unknown reference {name!r}; "
                         "remove it", node_id)
        for reference in interface.references:
            value = values.get(reference.name) or reference.default
            if value is None:
                self.add(ProblemKind.MISSING_REFERENCE, f"{label}: reference {reference.name!r} "
                         f"is not set; choose {_article(reference.type)}", node_id)
            elif not isinstance(value, str):
                self.add(ProblemKind.DANGLING_REFERENCE, f"{label}: reference "
                         f"{reference.name!r} is {value!r}; set it to {_article(reference.type)}'s "
                         "name or id", node_id)
            elif ids := self.ambiguous_ids(reference.type, value):
                self.add(ProblemKind.AMBIGUOUS_REFERENCE, f"{label}: reference "
                         f"{reference.name!r} points at {value!r}, the name of several "
                         f"architectures (ids {', '.join(ids)}); set it to one of these ids",
                         node_id)
            elif not self.reference_exists(reference.type, value):
                self.add(ProblemKind.DANGLING_REFERENCE, f"{label}: reference "
                         f"{reference.name!r} points at {value!r}, which is not "
                         f"{_reference_hint(reference.type)}; choose an existing one", node_id)

    def reference_exists(self, kind: str, value: str) -> bool:
        if kind == "Architecture":
            return self.architectures is None or _has_id_or_name(self.architectures, value)
        if kind in ("Criterion", "Layer"):
            if self.layers is not None and _has_id_or_name(self.layers, value):
                return True
            if kind == "Criterion":
                return value in TORCH_LOSSES
            return self.layers is None or value.isidentifier()
        if kind == "Artifact":
            return self.artifacts is None or value in self.artifacts
        return True

    def ambiguous_ids(self, kind: str, value: str) -> list[str]:
        """Ids of the architectures named ``value`` when more than one is (jobs resolve an
        architecture by id, else by a unique name)."""
        if kind != "Architecture" or self.architectures is None or value in self.architectures:
            return []
        ids = [item_id for item_id, item in self.architectures.items()
               if item["name"] == value]
        return ids if len(ids) > 1 else []

    def check_settings(self, node_id: str, label: str, settings: Mapping[str, Any]) -> None:
        for name in ("num_cpus", "num_gpus"):
            value = settings.get(name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)
                                      or not math.isfinite(value) or value < 0):
                self.add(ProblemKind.SETTING, f"{label}: setting {name} is {value!r}; set a "
                         "finite number ≥ 0", node_id)
        for name in ("always_recompute", "network"):
            flag = settings.get(name)
            if flag is not None and not isinstance(flag, bool):
                self.add(ProblemKind.SETTING, f"{label}: setting {name} is {flag!r}; "
                         "set true or false", node_id)

    # Edges: endpoints, ports, types, one source per input.

    def check_edges(self) -> set[tuple[str, str]]:
        """Check every edge; return the (node, input port) pairs that are fed."""
        fed: dict[tuple[str, str], str] = {}
        for edge_id, edge in self.edges.items():
            src, dst = edge["src"], edge["dst"]
            src_port, dst_port = edge["src_port"], edge["dst_port"]
            missing = [end for end in (src, dst) if end not in self.nodes]
            if missing:
                self.add(ProblemKind.DANGLING_EDGE, f"a connection {src}.{src_port} → "
                         f"{dst}.{dst_port} points at a missing node ({', '.join(missing)}); "
                         "delete the connection", edge=edge_id)
                continue
            source_label, target_label = self.labels[src], self.labels[dst]
            if dst == src:
                self.add(ProblemKind.CYCLE, f"{target_label}: it is connected to itself "
                         f"({src_port} → {dst_port}); delete that connection", dst, edge_id)
            source = self.interfaces.get(src)
            target = self.interfaces.get(dst)
            output = source.output(src_port) if source else None
            target_input = target.input(dst_port) if target else None
            if source is not None and output is None:
                self.add(ProblemKind.UNKNOWN_PORT, f"{source_label}: it has no output "
                         f"{src_port!r} (outputs: {_names(source.outputs)}); reconnect "
                         f"{target_label}.{dst_port} from an existing output", src, edge_id)
            if target is not None and target_input is None:
                self.add(ProblemKind.UNKNOWN_PORT, f"{target_label}: it has no input "
                         f"{dst_port!r} (inputs: {_names(target.inputs)}); reconnect "
                         f"{source_label}.{src_port} to an existing input", dst, edge_id)
            if target is not None and target_input is not None:
                previous = fed.get((dst, dst_port))
                if previous is not None:
                    self.add(ProblemKind.INPUT_CONNECTED_TWICE, f"{target_label}: input "
                             f"{dst_port!r} has more than one incoming connection; keep one",
                             dst, edge_id)
                fed[(dst, dst_port)] = edge_id
            if (output is not None and target_input is not None
                    and not types_compatible(output.type, target_input.type)):
                self.add(ProblemKind.TYPE_MISMATCH, f"{target_label}: cannot connect "
                         f"{source_label}.{src_port} ({output.type}) to "
                         f"{target_label}.{dst_port} ({target_input.type}); connect a "
                         f"{target_input.type} output instead", dst, edge_id)
        return set(fed)

    def check_unconnected(self, connected: set[tuple[str, str]]) -> None:
        for node_id, interface in self.interfaces.items():
            label = self.labels[node_id]
            fed = [(node_id, port.name) in connected for port in interface.inputs]
            # Inputs are passed by position, so an optional input left open before a connected
            # one cannot be skipped (the job would fail).
            last_fed = max((index for index, is_fed in enumerate(fed) if is_fed), default=-1)
            for index, port in enumerate(interface.inputs):
                if fed[index]:
                    continue
                if port.required:
                    self.add(ProblemKind.UNCONNECTED_INPUT, f"{label}: input {port.name!r} "
                             f"({port.type}) is not connected; connect an output to it", node_id)
                elif index < last_fed:
                    later = interface.inputs[last_fed].name
                    self.add(ProblemKind.UNCONNECTED_INPUT, f"{label}: optional input "
                             f"{port.name!r} ({port.type}) is not connected but input {later!r} "
                             "after it is (inputs are passed by position); connect "
                             f"{port.name!r} too, or disconnect {later!r}", node_id)

    def check_output_names(self) -> None:
        """Output operations publish artifacts by name: each name once per pipeline."""
        publishers: defaultdict[str, list[str]] = defaultdict(list)
        for node_id, interface in self.interfaces.items():
            node = self.nodes[node_id]
            operation = self.operations[node["operation"]]
            if operation["name"] != OUTPUT_OPERATION or interface.attribute("name") is None:
                continue
            name = node["attributes"].get("name", interface.attribute_defaults()["name"])
            if not isinstance(name, str):
                continue  # reported as an attribute of the wrong type
            if not name.strip():
                self.add(ProblemKind.OUTPUT_NAME, f"{self.labels[node_id]}: the artifact name "
                         "is empty; set the name attribute", node_id)
            else:
                publishers[name].append(node_id)
        for name, node_ids in publishers.items():
            if len(node_ids) > 1:
                labels = " and ".join(self.labels[node_id] for node_id in node_ids)
                self.add(ProblemKind.OUTPUT_NAME, f"{labels} all publish the artifact {name!r}; "
                         "give each Output a different name", node_ids[1])

    def check_cycles(self) -> None:
        """Report every cycle, one per tangled group of nodes (self-loops are reported with the
        edges; dangling edges are left out)."""
        sources: dict[str, list[str]] = {node_id: [] for node_id in self.nodes}
        for edge in self.edges.values():
            if edge["src"] in sources and edge["dst"] in sources:
                sources[edge["dst"]].append(edge["src"])
        for nodes in all_cycles(sources):
            cycle = [self.labels[node] for node in nodes]
            self.add(ProblemKind.CYCLE, f"{cycle[0]}: operations {' → '.join(cycle)} form "
                     "a cycle; remove one of these connections", nodes[0])


def _names(ports: tuple[Any, ...]) -> str:
    return ", ".join(port.name for port in ports) or "none"


def _has_id_or_name(
    items: Mapping[str, Architecture] | Mapping[str, Layer], value: str
) -> bool:
    return value in items or any(item["name"] == value for item in items.values())


def _article(noun: str) -> str:
    return f"{'an' if noun[:1].lower() in 'aeiou' else 'a'} {noun}"


def _reference_hint(kind: str) -> str:
    return {
        "Architecture": "an architecture of this project",
        "Criterion": "a torch.nn loss (e.g. CrossEntropyLoss) or a custom layer",
        "Layer": "a custom layer or torch.nn layer class",
        "Artifact": "an artifact of this project",
    }.get(kind, f"a {kind}")
