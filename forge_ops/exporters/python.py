"""The built-in ``python`` exporter: a standalone folder that reruns a pipeline with PyTorch.

Layout of the folder::

    run.py                 the runner (python run.py --artifact NAME=PATH ...)
    forge_standalone.py    stand-ins for Forge's feedback API and type names
    pipeline.json          steps in run order: operation file, inputs, attributes, references
    operations/NAME.py     each node's operation code (imports of forge_ops rewritten)
    architectures/NAME.py  each referenced architecture as plain PyTorch source
    layers/NAME.py         custom layers referenced as a Criterion or Layer
    README.txt

Operation interfaces are read with ``ast`` (``forge_ops.operations.parse_interface``); nothing
the user wrote is executed while exporting.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

from forge_ops.arch import (
    ArchitectureError,
    class_name,
    export_source,
    identifier,
    parse_custom_layer,
)
from forge_ops.exporters import ExportError
from forge_ops.graph_order import CycleFound, topological_order
from forge_ops.operations import InterfaceError, parse_interface

_FORGE_IMPORT = re.compile(
    r"^(\s*)from\s+forge_ops\.(?:runtime|operations\.types)\s+import\b", re.MULTILINE
)
_README = """{name}: exported from Forge.

Run it with plain PyTorch (Forge is not needed):

    python run.py{artifact_args}

Artifacts this pipeline reads: {artifacts}.
Each is loaded from inputs/NAME.pt unless given with --artifact NAME=PATH (torch.save files
or .npy arrays). Values published by Output operations are written to outputs/NAME.pt
(models as state dicts, which load into their class in architectures/).
"""


def standalone_code(code: str) -> str:
    """Operation code with its Forge runtime imports pointed at ``forge_standalone``."""
    return _FORGE_IMPORT.sub(r"\1from forge_standalone import", code)


def _by_id_or_name(items: Mapping[str, Mapping[str, Any]], value: str) -> tuple[str, Any] | None:
    if value in items:
        return value, items[value]
    matches = [(k, v) for k, v in items.items() if v.get("name") == value]
    return matches[0] if len(matches) == 1 else None


class PythonExporter:
    """Writes a folder with a runner script, operation code, attributes and architectures."""

    description = "standalone folder: run.py + operation code + architectures (plain PyTorch)"

    def export(self, project: Mapping[str, Any], pipeline_id: str, destination: Path) -> list[Path]:
        pipeline = project.get("pipelines", {}).get(pipeline_id)
        if pipeline is None:
            raise ExportError(f"the project has no pipeline {pipeline_id!r}")
        nodes: Mapping[str, Any] = pipeline.get("nodes", {})
        edges: Mapping[str, Any] = pipeline.get("edges", {})
        operations: Mapping[str, Any] = project.get("operations", {})
        if not nodes:
            raise ExportError(f"pipeline {pipeline['name']!r} is empty; add operations first")
        destination = Path(destination)
        if destination.exists() and any(destination.iterdir()):
            raise ExportError(f"{destination} is not empty; choose a new folder")
        written: dict[str, str] = {}  # relative path -> content

        order = self._order(nodes, edges)
        names = self._step_names(nodes, operations)
        steps = []
        artifacts: list[str] = []
        for node_id in order:
            node = nodes[node_id]
            operation = operations.get(node["operation"])
            if operation is None:
                raise ExportError(
                    f"node {names[node_id]!r} uses a missing operation {node['operation']!r}"
                )
            try:
                interface = parse_interface(operation["code"])
            except InterfaceError as exc:
                raise ExportError(
                    f"operation {operation['name']!r} has invalid code: {exc}"
                ) from exc
            file = f"operations/{names[node_id]}.py"
            written[file] = standalone_code(operation["code"])
            incoming = {e["dst_port"]: e for e in edges.values() if e["dst"] == node_id}
            inputs = []
            for port in interface.inputs:
                edge = incoming.get(port.name)
                if edge is None:
                    if port.required:
                        raise ExportError(
                            f"input {port.name!r} of {names[node_id]!r} is not connected"
                        )
                    break  # later optional inputs stay unset, as in Forge
                inputs.append({"node": edge["src"], "port": edge["src_port"]})
            references = {}
            for ref in interface.references:
                value = (node.get("references") or {}).get(ref.name) or ref.default
                if value is None:
                    raise ExportError(f"reference {ref.name!r} of {names[node_id]!r} is not set")
                references[ref.name] = self._reference(project, ref.type, str(value), written)
                if ref.type == "Artifact":
                    artifacts.append(str(value))
            steps.append(
                {
                    "node": node_id,
                    "name": names[node_id],
                    "operation": operation["name"],
                    "file": file,
                    "function": interface.function,
                    "inputs": inputs,
                    "outputs": [port.name for port in interface.outputs],
                    "single_output": interface.single_output,
                    "attributes": dict(node.get("attributes") or {}),
                    "references": references,
                    "publishes": bool(operation.get("builtin")) and operation["name"] == "Output",
                }
            )
        written["pipeline.json"] = (
            json.dumps({"name": pipeline["name"], "steps": steps}, indent=1) + "\n"
        )
        templates = resources.files("forge_ops.exporters._templates")
        for template in ("run.py", "forge_standalone.py"):
            written[template] = templates.joinpath(template).read_text()
        written["README.txt"] = _README.format(
            name=pipeline["name"],
            artifacts=", ".join(sorted(set(artifacts))) or "none",
            artifact_args="".join(f" --artifact {a}={a}.pt" for a in sorted(set(artifacts))),
        )
        paths = []
        for relative, content in sorted(written.items()):
            path = destination / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content)
            paths.append(path)
        return paths

    @staticmethod
    def _order(nodes: Mapping[str, Any], edges: Mapping[str, Any]) -> list[str]:
        graph: dict[str, set[str]] = {node_id: set() for node_id in nodes}
        for edge in edges.values():
            if edge["src"] in nodes and edge["dst"] in nodes:
                graph[edge["dst"]].add(edge["src"])
        try:
            return topological_order(graph)
        except CycleFound as exc:
            raise ExportError("the pipeline has a cycle; remove one of its edges") from exc

    @staticmethod
    def _step_names(nodes: Mapping[str, Any], operations: Mapping[str, Any]) -> dict[str, str]:
        names: dict[str, str] = {}
        taken: set[str] = set()
        for node_id in sorted(nodes):
            node = nodes[node_id]
            operation = operations.get(node["operation"], {})
            base = identifier(str(node.get("name") or operation.get("name") or "step"), "step")
            name, count = base, 1
            while name in taken:
                count += 1
                name = f"{base}_{count}"
            taken.add(name)
            names[node_id] = name
        return names

    @staticmethod
    def _reference(
        project: Mapping[str, Any], kind: str, value: str, written: dict[str, str]
    ) -> dict[str, Any]:
        layers = project.get("layers", {})
        custom = {str(layer["name"]): str(layer["code"]) for layer in layers.values()}
        reference: dict[str, Any] = {"type": kind, "value": value}
        if kind == "Architecture":
            found = _by_id_or_name(project.get("architectures", {}), value)
            if found is None:
                raise ExportError(f"no architecture {value!r} in the project")
            arch = found[1]
            cls = class_name(str(arch.get("name") or "Network"))
            file = f"architectures/{identifier(str(arch.get('name')), 'arch')}.py"
            try:
                written[file] = export_source(arch, custom, cls)
            except ArchitectureError as exc:
                raise ExportError(f"architecture {arch.get('name')!r}: {exc}") from exc
            reference.update(file=file, **{"class": cls})
        elif kind in {"Criterion", "Layer"}:
            found = _by_id_or_name(layers, value)
            if found is not None:
                name, code = str(found[1]["name"]), str(found[1]["code"])
                spec = parse_custom_layer(code, name)
                file = f"layers/{identifier(name, 'layer')}.py"
                written[file] = code
                reference.update(file=file, **{"class": spec.name})
        return reference
