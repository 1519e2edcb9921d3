"""The pipeline editor: operation nodes wired port to port, attributes and references typed by
each operation's interface, and running the pipeline on the server."""

from __future__ import annotations

import json
from typing import Any, ClassVar

from rich.text import Text

from forge_ops.graph_order import reaches
from forge_ops.operations import (
    Attribute,
    OperationInterface,
    PortTypeMismatch,
    Reference,
    check_connection,
)
from forge_ops.operations.types import TORCH_LOSSES
from forge_ops.schema import Project, ProjectDoc
from forge_tui.app._graphs import entry_name, interface_of, pipeline_spec
from forge_tui.app._values import parse_value, show_value
from forge_tui.app._workspace import Workspace
from forge_tui.app.api import ApiError, api_for
from forge_tui.app.screens.modals import FuzzyPicker, Prompt, if_chosen
from forge_tui.app.screens.run_dialog import RunOptions
from forge_tui.app.widgets.graph_editor import Graph, GraphEditor, Kind
from forge_tui.render import GraphSpec, Mark, Status


def reference_choices(project: Project, ref_type: str) -> list[tuple[str, str]]:
    """What a reference of ``ref_type`` may point at in ``project``, as picker options."""
    if ref_type == "Architecture":
        return [(a["name"], aid) for aid, a in project["architectures"].items()]
    if ref_type == "Criterion":
        return [(c, c) for c in sorted(TORCH_LOSSES)]
    if ref_type == "Layer":
        return [(f"{layer['name']} (custom)", lid) for lid, layer in project["layers"].items()]
    return [(name, name) for name in project["artifacts"]]


def typed_value(attr: Attribute, text: str) -> Any:
    """What the user typed for ``attr``: a literal, or the text itself for a ``str``."""
    value = parse_value(text)
    return text if attr.type == "str" and not isinstance(value, str) else value


class PipelineEditor(GraphEditor):
    """Nodes are operations; connections join an output port to a free input port."""

    kind: ClassVar[Kind] = "pipeline"
    collection: ClassVar[str] = "pipelines"
    members: ClassVar[str] = "nodes"

    def __init__(self, workspace: Workspace, entry_id: str) -> None:
        super().__init__(workspace, entry_id)
        self.run_problems: dict[str, Any] = {}  # nodes a refused run named (issue 8)

    # ----- drawing ------------------------------------------------------------------------

    def graph_spec(self, project: Project, marks: dict[str, list[Mark]]) -> GraphSpec:
        return pipeline_spec(
            project, self.entry_id, selected=self.selected, marks=marks, statuses=self.run_problems
        )

    def inspect_node(self, text: Text, project: Project, graph: Graph, node_id: str) -> None:
        node = graph["nodes"][node_id]
        iface = interface_of(project, node["operation"])
        op = project["operations"].get(node["operation"])
        text.append(f"\n{node['name']}", style="bold")
        text.append(f"  {op['name'] if op else '?'}\n", style="italic")
        if not isinstance(iface, OperationInterface):
            text.append(f"\n{iface.message if iface else 'operation missing'}\n", style="red")
            return
        if iface.inputs:
            text.append("\nInputs\n", style="underline")
            for port in iface.inputs:
                text.append(f"  {port.name}: {port.type}\n")
        if iface.outputs:
            text.append("Outputs\n", style="underline")
            for port in iface.outputs:
                text.append(f"  {port.name}: {port.type}\n")
        if iface.attributes:
            text.append("Attributes (e)\n", style="underline")
            for attr in iface.attributes:
                overridden = attr.name in node["attributes"]
                value = node["attributes"].get(attr.name, attr.default)
                text.append(
                    f"  {attr.name} = {show_value(value, 40)}", style="bold" if overridden else ""
                )
                text.append(f"  {attr.describe_type()}\n", style="dim")
        if iface.references:
            text.append("References (f)\n", style="underline")
            for ref in iface.references:
                target = node["references"].get(ref.name, ref.default)
                shown = entry_name(project, target) if isinstance(target, str) else "— unset"
                text.append(f"  {ref.name} → {shown}  ", style="")
                text.append(f"{ref.type}\n", style="dim")

    # ----- nodes --------------------------------------------------------------------------

    def pick_new_node(self, project: Project) -> None:
        options = sorted(
            (f"{op['name']}{'  (built-in)' if op['builtin'] else ''}", op_id)
            for op_id, op in project["operations"].items()
        )
        if not options:
            self.say("No operations yet: create one from the sidebar (n)")
            return
        self.app.push_screen(FuzzyPicker("Add node: operation", options), self._add_node)

    def _add_node(self, op_id: str | None) -> None:
        if op_id is not None:
            self._add_and_select("Add node", lambda p: p.add_node(self.entry_id, op_id))

    def remove_node(self, project: ProjectDoc, node_id: str) -> None:
        project.remove_node(self.entry_id, node_id)

    def rename_node(self, project: ProjectDoc, node_id: str, name: str) -> None:
        project.rename_node(self.entry_id, node_id, name)

    def open_code(self, node_id: str, graph: Graph) -> None:
        self.post_message(self.OpenCode("operation", graph["nodes"][node_id]["operation"]))

    # ----- connections --------------------------------------------------------------------

    def connect_from(self, src: str, project: Project, graph: Graph) -> None:
        iface = interface_of(project, graph["nodes"][src]["operation"])
        if not isinstance(iface, OperationInterface) or not iface.outputs:
            self.say("This node has no output ports")
            return
        if len(iface.outputs) == 1:
            self._pick_target(src, iface.outputs[0].name)
            return
        options = [(f"{p.name}: {p.type}", p.name) for p in iface.outputs]
        self.app.push_screen(
            FuzzyPicker("Connect which output?", options),
            if_chosen(lambda port: self._pick_target(src, port)),
        )

    def _pick_target(self, src: str, src_port: str) -> None:
        project, graph = self._current_graph()
        taken = {(e["dst"], e["dst_port"]) for e in graph["edges"].values()}
        options = []
        for node_id, node in graph["nodes"].items():
            if node_id == src:
                continue
            iface = interface_of(project, node["operation"])
            if not isinstance(iface, OperationInterface):
                continue
            for port in iface.inputs:
                if (node_id, port.name) not in taken:
                    options.append(
                        (f"{node['name']}.{port.name}: {port.type}", (node_id, port.name))
                    )
        if not options:
            self.say("No free input ports to connect to")
            return
        self.app.push_screen(
            FuzzyPicker(f"Connect {src_port} to input", options),
            if_chosen(lambda target: self._connect(src, src_port, *target)),
        )

    def _connect(self, src: str, src_port: str, dst: str, dst_port: str) -> bool:
        project, graph = self._current_graph()
        nodes = graph["nodes"]
        src_iface = interface_of(project, nodes[src]["operation"])
        dst_iface = interface_of(project, nodes[dst]["operation"])
        if isinstance(src_iface, OperationInterface) and isinstance(dst_iface, OperationInterface):
            out, inp = src_iface.output(src_port), dst_iface.input(dst_port)
            if out is not None and inp is not None:
                try:
                    check_connection(nodes[src]["name"], out, nodes[dst]["name"], inp)
                except PortTypeMismatch as exc:
                    self.say(str(exc).split(": the port types")[0] + ": types differ")
                    return False
        edges = [(e["src"], e["dst"]) for e in graph["edges"].values()]
        if reaches(edges, dst, src):
            self.say(
                f"Refused: connecting {nodes[src]['name']} → {nodes[dst]['name']} makes a cycle"
            )
            return False
        return self._apply(
            "Connect", lambda p: p.connect(self.entry_id, src, src_port, dst, dst_port)
        )

    def edge_label(self, graph: Graph, edge: dict[str, Any]) -> str:
        a, b = graph["nodes"][edge["src"]]["name"], graph["nodes"][edge["dst"]]["name"]
        return f"{a}.{edge['src_port']} → {b}.{edge['dst_port']}"

    def disconnect(self, project: ProjectDoc, edge_id: str) -> None:
        project.disconnect(self.entry_id, edge_id)

    # ----- attributes and references ------------------------------------------------------

    def edit_attributes(self, node_id: str, project: Project, graph: Graph) -> None:
        node = graph["nodes"][node_id]
        iface = interface_of(project, node["operation"])
        if not isinstance(iface, OperationInterface) or not iface.attributes:
            self.say("This operation has no attributes")
            return
        options = []
        for attr in iface.attributes:
            value = node["attributes"].get(attr.name, attr.default)
            options.append(
                (f"{attr.name} = {show_value(value, 30)}  ({attr.describe_type()})", attr)
            )
        self.app.push_screen(
            FuzzyPicker("Edit attribute", options),
            if_chosen(lambda attr: self._edit_attribute(node_id, attr)),
        )

    def _edit_attribute(self, node_id: str, attr: Attribute) -> None:
        _, graph = self._current_graph()
        current = graph["nodes"][node_id]["attributes"].get(attr.name, attr.default)

        def validate(text: str) -> str | None:
            if not attr.accepts(typed_value(attr, text)):
                return f"{attr.name} takes {attr.describe_type()}, not {text!r}"
            return None

        def done(text: str | None) -> None:
            if text is None:
                return
            value = typed_value(attr, text)
            self._apply(
                "Set attribute", lambda p: p.set_attribute(self.entry_id, node_id, attr.name, value)
            )

        shown = current if isinstance(current, str) else json.dumps(current)
        self.app.push_screen(
            Prompt(
                f"{attr.name} ({attr.describe_type()})",
                shown,
                validate,
                f"default: {json.dumps(attr.default)}",
            ),
            done,
        )

    def action_set_reference(self) -> None:
        if self.selected is None:
            super().action_set_reference()
            return
        project, graph = self._current_graph()
        node_id = self.selected
        iface = interface_of(project, graph["nodes"][node_id]["operation"])
        if not isinstance(iface, OperationInterface) or not iface.references:
            self.say("This operation has no references")
            return
        options = [(f"{r.name} ({r.type})", r) for r in iface.references]
        self.app.push_screen(
            FuzzyPicker("Set reference", options),
            if_chosen(lambda ref: self._pick_reference_target(node_id, ref)),
        )

    def _pick_reference_target(self, node_id: str, ref: Reference) -> None:
        options = reference_choices(self.workspace.snapshot(), ref.type)
        if not options:
            self.say(f"Nothing of type {ref.type} in this project yet")
            return
        self.app.push_screen(
            FuzzyPicker(f"{ref.name} →", options),
            if_chosen(
                lambda target: self._apply(
                    "Set reference",
                    lambda p: p.set_reference(self.entry_id, node_id, ref.name, target),
                )
            ),
        )

    # ----- running ------------------------------------------------------------------------

    def run_graph(self, options: RunOptions | None = None) -> None:
        """Run the pipeline on the server (with the run dialog's ``options``); open its
        monitor, or mark the nodes it refused."""
        # The monitor (and its plotting) loads on the first run, not with the editor.
        from forge_tui.app.screens.monitor import open_monitor

        app = self.app
        api = api_for(app.backend, self.workspace.project_name)  # type: ignore[attr-defined]
        if api is None:
            self.say("Running needs a Forge server: open the project with --server URL")
            return

        async def go() -> None:
            self.say("Starting the run…")
            try:
                chosen = options or RunOptions()
                record = await api.run(
                    self.entry_id,
                    branch=getattr(app, "branch", "main"),
                    executor=chosen.executor,
                    no_cache=chosen.recompute,
                    gpus=chosen.gpus,
                )
            except ApiError as exc:
                problems = {p["node"]: p for p in exc.problems if p.get("node")}
                self.run_problems = {node: Status.FAILED for node in problems}
                self.redraw()
                lines = [
                    f"{p.get('node_name') or n}: {p.get('message')}" for n, p in problems.items()
                ]
                self.say(exc.message if not lines else "✗ " + "; ".join(lines))
                app.notify(exc.message, title="Run refused", severity="error")
                return
            self.run_problems = {}
            self.redraw()
            self.say("")  # the monitor shows the run; a line here would outlive it
            await open_monitor(app, self.workspace.project_name, str(record["execution"]))

        self.run_worker(go(), group="run", exclusive=True)
