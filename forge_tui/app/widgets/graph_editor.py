"""The diagram editor for pipelines and architectures: keyboard-first, one transaction per edit."""

from __future__ import annotations

import ast
import json
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.message import Message
from textual.reactive import reactive
from textual.widget import Widget
from textual.widgets import Static

from forge_ops.operations import (
    Attribute,
    OperationInterface,
    PortTypeMismatch,
    check_connection,
)
from forge_ops.schema import Project, SchemaError
from forge_tui.app._graphs import (
    architecture_spec,
    entry_name,
    interface_of,
    pipeline_spec,
    show_value,
)
from forge_tui.app._workspace import Workspace
from forge_tui.app.screens.modals import FuzzyPicker, Prompt, if_chosen
from forge_tui.app.widgets.graph_canvas import GraphCanvas
from forge_tui.render import COMPACT, Mark, RenderOptions, nearest, render_graph

Kind = Literal["pipeline", "architecture"]
CRITERIA = (
    "CrossEntropyLoss",
    "NLLLoss",
    "MSELoss",
    "L1Loss",
    "BCELoss",
    "BCEWithLogitsLoss",
    "HuberLoss",
    "SmoothL1Loss",
    "KLDivLoss",
)
FUNCTIONAL = ("relu", "add", "cat", "flatten", "Input", "Output")


def parse_value(text: str) -> Any:
    """A Python literal (numbers, strings, lists, True/None) or else the text itself."""
    try:
        return ast.literal_eval(text.strip())
    except (ValueError, SyntaxError):
        return text


def reaches(edges: list[tuple[str, str]], start: str, goal: str) -> bool:
    succ: dict[str, list[str]] = {}
    for u, v in edges:
        succ.setdefault(u, []).append(v)
    stack, seen = [start], set()
    while stack:
        n = stack.pop()
        if n == goal:
            return True
        if n not in seen:
            seen.add(n)
            stack.extend(succ.get(n, ()))
    return False


class GraphEditor(Widget):
    """A pipeline or an architecture drawn by the renderer, with an inspector beside it."""

    DEFAULT_CSS = """
    GraphEditor { layout: vertical; height: 1fr; }
    GraphEditor > Horizontal { height: 1fr; }
    GraphEditor GraphCanvas { width: 1fr; }
    GraphEditor #inspector { width: 32; border-left: solid $primary; padding: 0 1; }
    GraphEditor #message { height: 1; padding: 0 1; color: $warning; }
    GraphEditor.narrow #inspector { display: none; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up,k", "move('up')", "Up", show=False),
        Binding("down,j", "move('down')", "Down", show=False),
        Binding("left,h", "move('left')", "Left", show=False),
        Binding("right,l", "move('right')", "Right", show=False),
        Binding("shift+up,K", "pan(0, -4)", "Pan up", show=False),
        Binding("shift+down,J", "pan(0, 4)", "Pan down", show=False),
        Binding("shift+left,H", "pan(-8, 0)", "Pan left", show=False),
        Binding("shift+right,L", "pan(8, 0)", "Pan right", show=False),
        Binding("a", "add_node", "Add"),
        Binding("c", "connect", "Connect"),
        Binding("x", "disconnect", "Disconnect"),
        Binding("d,delete", "delete_node", "Delete"),
        Binding("r", "rename", "Rename"),
        Binding("e,enter", "edit_attribute", "Attribute"),
        Binding("f", "set_reference", "Reference"),
        Binding("o", "open_code", "Code"),
        Binding("s", "input_shape", "Input shape", show=False),
        Binding("z", "toggle_compact", "Compact view", show=False),
        Binding("u,ctrl+z", "undo", "Undo"),
        Binding("U,ctrl+y", "redo", "Redo"),
        Binding("ctrl+r", "run", "Run", show=False),
        Binding("ctrl+t", "run_with_options", "Run with options…", show=False),
    ]

    selected: reactive[str | None] = reactive(None, init=False)

    @dataclass
    class OpenCode(Message):
        """The user asked to edit the code behind the selected node."""

        kind: str
        entry_id: str

    def __init__(self, workspace: Workspace, kind: Kind, entry_id: str) -> None:
        super().__init__(id=f"editor-{kind}-{entry_id}")
        self.workspace = workspace
        self.kind: Kind = kind
        self.entry_id = entry_id
        self.options = RenderOptions()
        self._ready = False
        self.stale = False
        # Architectures: shapes and parameter counts, inferred off the UI thread per version.
        self._shape_key: str | None = None
        self.edge_shapes: dict[str, Any] = {}
        self.parameters: dict[str, int] = {}
        self.shape_error = ""
        self.run_problems: dict[str, Any] = {}  # nodes a refused run named (issue 8)

    def compose(self) -> ComposeResult:
        with Horizontal():
            yield GraphCanvas(id="canvas")
            with VerticalScroll(id="inspector"):
                yield Static("", id="inspector-body")
        yield Static("", id="message")

    def on_mount(self) -> None:
        self._ready = True
        self.redraw()
        self.workspace.set_presence(view={"kind": self.kind, "id": self.entry_id})

    def on_resize(self) -> None:
        self.set_class(self.size.width < 70, "narrow")

    # ----- drawing ------------------------------------------------------------------------

    @property
    def canvas(self) -> GraphCanvas:
        return self.query_one(GraphCanvas)

    def say(self, message: str) -> None:
        self.query_one("#message", Static).update(message)

    def _graph(self, project: Project) -> dict[str, Any] | None:
        collection = project["pipelines"] if self.kind == "pipeline" else project["architectures"]
        return collection.get(self.entry_id)  # type: ignore[return-value]

    def _current_graph(self) -> tuple[Project, dict[str, Any]]:
        """A snapshot of the project and the graph being edited in it (it exists while editing)."""
        project = self.workspace.snapshot()
        graph = self._graph(project)
        assert graph is not None
        return project, graph

    def _selection(
        self, hint: str = "Select a node first"
    ) -> tuple[str, Project, dict[str, Any]] | None:
        """The selected node with the project snapshot and graph, or None after saying ``hint``."""
        if self.selected is None:
            self.say(hint)
            return None
        return (self.selected, *self._current_graph())

    def node_ids(self) -> list[str]:
        graph = self._graph(self.workspace.snapshot())
        if graph is None:
            return []
        return list(graph["nodes"] if self.kind == "pipeline" else graph["layers"])

    def redraw(self) -> None:
        if not self._ready:
            return
        self.stale = False
        project = self.workspace.snapshot()
        if self.selected is not None and self.selected not in self.node_ids():
            self.selected = None
        marks: dict[str, list[Mark]] = {}
        for peer in self.workspace.peers():
            if peer.view == (self.kind, self.entry_id) and peer.selection:
                marks.setdefault(peer.selection, []).append(Mark(peer.initials, peer.colour))
        if self.kind == "pipeline":
            spec = pipeline_spec(
                project,
                self.entry_id,
                selected=self.selected,
                marks=marks,
                statuses=self.run_problems,
            )
        else:
            self._maybe_infer_shapes(project)
            spec = architecture_spec(
                project,
                self.entry_id,
                selected=self.selected,
                marks=marks,
                edge_shapes=self.edge_shapes,
                parameters=self.parameters,
            )
        rendered = render_graph(spec, self.options)
        empty = "Empty: press a to add a node" if self._graph(project) is not None else "Deleted"
        self.canvas.show(rendered, empty)
        self.canvas.follow(self.selected)
        self.query_one("#inspector-body", Static).update(self._inspector(project))

    def _maybe_infer_shapes(self, project: Project) -> None:
        arch = project["architectures"].get(self.entry_id)
        if arch is None:
            return
        key = json.dumps(arch, sort_keys=True)
        if key == self._shape_key:
            return
        self._shape_key = key
        custom = {layer["name"] for layer in project["layers"].values()}
        if any(layer["type"] in custom for layer in arch["layers"].values()):
            # Custom layers are user code: it runs only inside jobs, never in the TUI.
            self._shapes_done(key, {}, {}, "shapes: not inferred here (custom layers run in jobs)")
            return
        self._infer_shapes(key, dict(arch))

    @work(thread=True, exclusive=True, group="shapes")
    def _infer_shapes(self, key: str, arch: dict[str, Any]) -> None:
        """Shape inference builds torch.nn layers on the meta device: slow, so in a thread."""
        try:
            from forge_ops.arch.shapes import infer_shapes

            report = infer_shapes(arch)
        except Exception as exc:  # any refusal becomes a message; the diagram stays usable
            self.app.call_from_thread(self._shapes_done, key, {}, {}, f"shapes: {exc}")
            return
        self.app.call_from_thread(
            self._shapes_done, key, dict(report.edge_shapes), dict(report.parameters), ""
        )

    def _shapes_done(
        self, key: str, edges: dict[str, Any], parameters: dict[str, int], error: str
    ) -> None:
        if key != self._shape_key:
            return  # the architecture changed meanwhile; a newer inference is coming
        self.edge_shapes, self.parameters, self.shape_error = edges, parameters, error
        self.redraw()

    def _inspector(self, project: Project) -> Text:
        text = Text()
        graph = self._graph(project)
        if graph is None:
            return Text("This entry was deleted.")
        text.append(f"{graph['name']}\n", style="bold")
        if self.kind == "architecture" and self.shape_error:
            text.append(f"{self.shape_error}\n", style="yellow")
        if self.selected is None:
            text.append("No selection. Arrows/hjkl select;\na adds a node.", style="dim")
            return text
        if self.kind == "architecture":
            layer = graph["layers"][self.selected]
            text.append(f"\n{layer['name']}", style="bold")
            text.append(f"  {layer['type']}\n", style="italic")
            for key, value in layer["attributes"].items():
                text.append(f"  {key} = {show_value(value, 40)}\n")
            return text
        node = graph["nodes"][self.selected]
        iface = interface_of(project, node["operation"])
        op = project["operations"].get(node["operation"])
        text.append(f"\n{node['name']}", style="bold")
        text.append(f"  {op['name'] if op else '?'}\n", style="italic")
        if not isinstance(iface, OperationInterface):
            text.append(f"\n{iface.message if iface else 'operation missing'}\n", style="red")
            return text
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
        return text

    def watch_selected(self, selected: str | None) -> None:
        self.workspace.set_presence(selection=selected)
        self.redraw()

    @on(GraphCanvas.BoxClicked)
    def _clicked(self, event: GraphCanvas.BoxClicked) -> None:
        self.selected = event.node_id

    # ----- selection ----------------------------------------------------------------------

    def action_move(self, direction: Literal["up", "down", "left", "right"]) -> None:
        self.selected = nearest(self.canvas.rendered.boxes, self.selected, direction)

    def action_toggle_compact(self) -> None:
        """Names and ports only (no attribute lines): more of a big graph fits the screen."""
        self.options = RenderOptions() if self.options == COMPACT else COMPACT
        self.redraw()

    def action_pan(self, dx: int, dy: int) -> None:
        canvas = self.canvas
        canvas.scroll_to(canvas.scroll_x + dx, canvas.scroll_y + dy, animate=False)

    # ----- edits --------------------------------------------------------------------------

    def _apply(self, description: str, change: Any) -> bool:
        """Run one edit in one transaction; schema errors become a message, not a crash."""
        try:
            with self.workspace.edit() as project:
                change(project)
        except (SchemaError, ValueError, TypeError) as exc:
            self.say(f"{description} refused: {exc}")
            return False
        self.say("")
        return True

    def action_add_node(self) -> None:
        project = self.workspace.snapshot()
        if self._graph(project) is None:
            self.say(f"This {self.kind} was deleted; nothing to add to")
            return
        if self.kind == "pipeline":
            options = sorted(
                (f"{op['name']}{'  (built-in)' if op['builtin'] else ''}", op_id)
                for op_id, op in project["operations"].items()
            )
            if not options:
                self.say("No operations yet: create one from the sidebar (n)")
                return
            self.app.push_screen(
                FuzzyPicker("Add node: operation", options), self._add_pipeline_node
            )
        else:
            self._pick_layer_type()

    def _add_pipeline_node(self, op_id: str | None) -> None:
        if op_id is None:
            return
        created: list[str] = []
        self._apply("Add node", lambda p: created.append(p.add_node(self.entry_id, op_id)))
        if created:
            self.selected = created[0]

    @work(thread=True, exclusive=True, group="catalogue")
    def _pick_layer_type(self) -> None:
        """The torch.nn catalogue imports torch, so it is read off the UI thread."""
        self.app.call_from_thread(self.say, "Loading the layer catalogue…")
        try:
            from forge_ops.arch.catalogue import catalogue

            names = sorted(catalogue())
        except Exception as exc:  # a broken torch install must not take the editor down
            names = []
            self.app.call_from_thread(self.say, f"Layer catalogue unavailable: {exc}")
        project = self.workspace.snapshot()
        custom = sorted(layer["name"] for layer in project["layers"].values())
        options = [(f"{n}  (custom)", n) for n in custom] + [(n, n) for n in FUNCTIONAL]
        options += [(n, n) for n in names]
        self.app.call_from_thread(self.say, "")
        self.app.call_from_thread(
            self.app.push_screen, FuzzyPicker("Add layer", options), self._add_layer
        )

    def _add_layer(self, layer_type: str | None) -> None:
        if layer_type is None:
            return
        created: list[str] = []
        self._apply(
            "Add layer",
            lambda p: created.append(p.add_arch_layer(self.entry_id, layer_type)),
        )
        if created:
            self.selected = created[0]

    def action_delete_node(self) -> None:
        if self.selected is None:
            self.say("Select a node first")
            return
        node = self.selected
        if self.kind == "pipeline":
            self._apply("Delete", lambda p: p.remove_node(self.entry_id, node))
        else:
            self._apply("Delete", lambda p: p.remove_arch_layer(self.entry_id, node))

    def _selected_name(self, project: Project) -> str:
        graph = self._graph(project)
        if graph is None or self.selected is None:
            return ""
        group = graph["nodes"] if self.kind == "pipeline" else graph["layers"]
        return str(group[self.selected]["name"])

    def action_rename(self) -> None:
        if self.selected is None:
            self.say("Select a node first")
            return
        node = self.selected

        def done(name: str | None) -> None:
            if not name:
                return
            if self.kind == "pipeline":
                self._apply("Rename", lambda p: p.rename_node(self.entry_id, node, name.strip()))
            else:
                self._apply(
                    "Rename", lambda p: p.rename_arch_layer(self.entry_id, node, name.strip())
                )

        current = self._selected_name(self.workspace.snapshot())
        self.app.push_screen(Prompt("Rename node", current), done)

    # ----- connections --------------------------------------------------------------------

    def action_connect(self) -> None:
        selection = self._selection("Select the node whose output to connect")
        if selection is None:
            return
        src, project, graph = selection
        if self.kind == "architecture":
            options = [
                (f"{layer['name']}  ({layer['type']})", lid)
                for lid, layer in graph["layers"].items()
                if lid != src
            ]
            self.app.push_screen(
                FuzzyPicker("Connect to layer", options), lambda dst: self._connect_layers(src, dst)
            )
            return
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

    def _connect_layers(self, src: str, dst: str | None) -> None:
        if dst is None:
            return
        _, graph = self._current_graph()
        edges = [(e["src"], e["dst"]) for e in graph["edges"].values()]
        if reaches(edges, dst, src):
            self.say("Refused: that connection makes a cycle")
            return
        index = sum(1 for e in graph["edges"].values() if e["dst"] == dst)
        self._apply("Connect", lambda p: p.connect_layers(self.entry_id, src, dst, index))

    def action_disconnect(self) -> None:
        selection = self._selection()
        if selection is None:
            return
        node, _, graph = selection
        group = graph["nodes"] if self.kind == "pipeline" else graph["layers"]
        options = []
        for edge_id, e in graph["edges"].items():
            if node in (e["src"], e["dst"]):
                a, b = group[e["src"]]["name"], group[e["dst"]]["name"]
                if self.kind == "pipeline":
                    options.append((f"{a}.{e['src_port']} → {b}.{e['dst_port']}", edge_id))
                else:
                    options.append((f"{a} → {b} (input {e['index']})", edge_id))
        if not options:
            self.say("No connections on this node")
            return

        def done(edge_id: str | None) -> None:
            if edge_id is None:
                return
            if self.kind == "pipeline":
                self._apply("Disconnect", lambda p: p.disconnect(self.entry_id, edge_id))
            else:
                self._apply("Disconnect", lambda p: p.disconnect_layers(self.entry_id, edge_id))

        self.app.push_screen(FuzzyPicker("Remove connection", options), done)

    # ----- inspector edits ----------------------------------------------------------------

    def action_edit_attribute(self) -> None:
        selection = self._selection()
        if selection is None:
            return
        node_id, project, graph = selection
        if self.kind == "architecture":
            attrs = graph["layers"][node_id]["attributes"]
            options = [(f"{k} = {show_value(v, 30)}", k) for k, v in attrs.items()]
            options.append(("(new attribute)", ""))
            self.app.push_screen(
                FuzzyPicker("Edit attribute", options),
                if_chosen(lambda key: self._edit_layer_attribute(node_id, key)),
            )
            return
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
            value = parse_value(text)
            if attr.type == "str" and not isinstance(value, str):
                value = text
            if not attr.accepts(value):
                return f"{attr.name} takes {attr.describe_type()}, not {text!r}"
            return None

        def done(text: str | None) -> None:
            if text is None:
                return
            value = parse_value(text)
            if attr.type == "str" and not isinstance(value, str):
                value = text
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

    def _edit_layer_attribute(self, layer_id: str, key: str) -> None:
        def validate_key(text: str) -> str | None:
            return None if text.strip().isidentifier() else "an attribute name is an identifier"

        if not key:
            self.app.push_screen(
                Prompt("New attribute name", "", validate_key),
                if_chosen(lambda name: self._edit_layer_attribute(layer_id, name.strip())),
            )
            return
        _, graph = self._current_graph()
        current = graph["layers"][layer_id]["attributes"].get(key)

        def done(text: str | None) -> None:
            if text is not None:
                self._apply(
                    "Set attribute",
                    lambda p: p.set_layer_attribute(
                        self.entry_id, layer_id, key, parse_value(text)
                    ),
                )

        shown = "" if current is None else json.dumps(current)
        self.app.push_screen(
            Prompt(f"{key} (a Python literal: 64, [3, 3], True, 'same')", shown), done
        )

    def action_set_reference(self) -> None:
        if self.kind != "pipeline" or self.selected is None:
            self.say("Select a pipeline node first")
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

    def _pick_reference_target(self, node_id: str, ref: Any) -> None:
        project = self.workspace.snapshot()
        if ref.type == "Architecture":
            options = [(a["name"], aid) for aid, a in project["architectures"].items()]
        elif ref.type == "Criterion":
            options = [(c, c) for c in CRITERIA]
        elif ref.type == "Layer":
            options = [
                (f"{layer['name']} (custom)", lid) for lid, layer in project["layers"].items()
            ]
        else:
            options = [(name, name) for name in project["artifacts"]]
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

    def action_input_shape(self) -> None:
        """Architectures: the input shape that shape inference starts from."""
        if self.kind != "architecture":
            self.say("Input shapes belong to architectures")
            return
        graph = self._graph(self.workspace.snapshot())
        if graph is None:
            self.say("This architecture was deleted")
            return
        current = graph.get("input_shape")

        def parse(text: str) -> list[int] | None:
            parts = [p for p in text.replace("×", ",").replace("x", ",").split(",") if p.strip()]
            try:
                dims = [int(p) for p in parts]
            except ValueError:
                return None
            return dims if dims and all(d > 0 for d in dims) else None

        def validate(text: str) -> str | None:
            if not text.strip() or parse(text) is not None:
                return None
            return "positive integers separated by commas, e.g. 1, 3, 32, 32"

        def done(text: str | None) -> None:
            if text is not None:
                shape = parse(text) if text.strip() else None
                self._apply("Input shape", lambda p: p.set_input_shape(self.entry_id, shape))

        shown = ", ".join(str(d) for d in current) if current else ""
        self.app.push_screen(
            Prompt("Input shape (empty: none)", shown, validate, "batch, channels, height, width"),
            done,
        )

    # ----- undo, code ---------------------------------------------------------------------

    def action_run(self) -> None:
        from forge_tui.app.screens.monitor import run_pipeline

        run_pipeline(self)

    def action_run_with_options(self) -> None:
        from forge_tui.app.screens.monitor import ask_executor_and_run

        ask_executor_and_run(self)

    def action_undo(self) -> None:
        if not self.workspace.undo.undo():
            self.say("Nothing of yours to undo")

    def action_redo(self) -> None:
        if not self.workspace.undo.redo():
            self.say("Nothing to redo")

    def action_open_code(self) -> None:
        selection = self._selection()
        if selection is None:
            return
        node, _, graph = selection
        if self.kind == "pipeline":
            self.post_message(self.OpenCode("operation", graph["nodes"][node]["operation"]))
            return
        layer_type = graph["layers"][node]["type"]
        layer_id = self.workspace.project.find("layers", layer_type)
        if layer_id is None:
            self.say(f"{layer_type} is a built-in layer; its code is not editable")
            return
        self.post_message(self.OpenCode("layer", layer_id))
