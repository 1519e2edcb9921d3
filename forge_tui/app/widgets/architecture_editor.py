"""The architecture editor: layers (torch.nn classes, functional ops, custom layers) wired in
order, with shapes and parameter counts inferred off the UI thread, and the input shape that
inference starts from."""

from __future__ import annotations

import json
from typing import Any, ClassVar

from rich.text import Text
from textual import work
from textual.binding import Binding, BindingType

from forge_ops.graph_order import reaches
from forge_ops.input_shape import InputShapeError, parse_input_shape
from forge_ops.schema import Project, ProjectDoc
from forge_tui.app._graphs import architecture_spec
from forge_tui.app._groups import GROUP, collapse, group_prefix, parent_prefix
from forge_tui.app._values import parse_value, show_value
from forge_tui.app._workspace import Workspace
from forge_tui.app.screens.modals import FuzzyPicker, Prompt, if_chosen
from forge_tui.app.widgets.graph_editor import Graph, GraphEditor, Kind
from forge_tui.render import GraphSpec, Mark


def layer_type_choices(custom: list[str], built_in: list[str]) -> list[tuple[str, str]]:
    """The add-layer picker: custom layers, then ``Input``/``Output`` and the functional ops,
    then the ``torch.nn`` classes in ``built_in``. The names come from :mod:`forge_ops.arch`
    (importing it does not import torch)."""
    from forge_ops.arch import FUNCTIONAL_OPS, INPUT, OUTPUT

    functional = [INPUT, OUTPUT, "Parameter", "Buffer", *sorted(FUNCTIONAL_OPS)]
    options = [(f"{n}  (custom)", n) for n in sorted(custom)]
    return options + [(n, n) for n in functional] + [(n, n) for n in built_in]


class ArchitectureEditor(GraphEditor):
    """Layers are boxes; a layer with several inputs takes them in order (input 0, 1, …)."""

    kind: ClassVar[Kind] = "architecture"
    collection: ClassVar[str] = "architectures"
    members: ClassVar[str] = "layers"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("g", "group", "Group", show=False),
        Binding("G", "group_outer", "Group the enclosing block", show=False),
    ]

    def __init__(self, workspace: Workspace, entry_id: str) -> None:
        super().__init__(workspace, entry_id)
        # Shapes and parameter counts, inferred off the UI thread per version.
        self._shape_key: str | None = None
        self.edge_shapes: dict[str, Any] = {}
        self.parameters: dict[str, int] = {}
        self.shape_error = ""
        # Blocks drawn as one box (name prefixes such as "blocks.3"); display only.
        self.collapsed: set[str] = set()
        self._groups: dict[str, int] = {}  # group box id -> member count, as last drawn

    # ----- drawing and shapes -------------------------------------------------------------

    def graph_spec(self, project: Project, marks: dict[str, list[Mark]]) -> GraphSpec:
        self._maybe_infer_shapes(project)
        spec = architecture_spec(
            project,
            self.entry_id,
            selected=self.selected,
            marks=marks,
            edge_shapes=self.edge_shapes,
            parameters=self.parameters,
        )
        arch = project["architectures"].get(self.entry_id)
        if arch is None or not self.collapsed:
            self._groups = {}
            return spec
        spec, owner = collapse(spec, arch, self.collapsed, self.selected)
        self._groups = {group: list(owner.values()).count(group) for group in set(owner.values())}
        return spec

    # ----- groups -------------------------------------------------------------------------

    def node_ids(self) -> list[str]:
        return [*super().node_ids(), *(GROUP + prefix for prefix in self.collapsed)]

    def _selection(self, hint: str = "Select a node first") -> tuple[str, Project, Graph] | None:
        if self.selected is not None and group_prefix(self.selected) is not None:
            self.say("That is a collapsed group: g expands it")
            return None
        return super()._selection(hint)

    def _selected_name(self, project: Project) -> str:
        prefix = group_prefix(self.selected or "")
        return prefix if prefix is not None else super()._selected_name(project)

    def action_group(self) -> None:
        """Collapse the selected layer's block into one box, or expand the selected group."""
        selected = self.selected
        prefix = group_prefix(selected or "")
        if prefix is not None:
            self.collapsed.discard(prefix)
            self.selected = None
            self.redraw()
            return
        self._collapse(selected, outer=False)

    def action_group_outer(self) -> None:
        """Collapse the block enclosing the selected layer's or group's block."""
        self._collapse(self.selected, outer=True)

    def _collapse(self, selected: str | None, outer: bool) -> None:
        project = self.workspace.snapshot()
        graph = self._graph(project)
        if selected is None or graph is None:
            self.say("Select a layer inside a block (its name has a dot) to collapse the block")
            return
        prefix = group_prefix(selected)
        name = prefix if prefix is not None else str(graph["layers"][selected]["name"])
        block = parent_prefix(name) if outer or prefix is None else name
        if outer and prefix is None and block is not None:
            block = parent_prefix(block) or block
        if block is None:
            self.say(f"{name} is not inside a block (no dot in its name)")
            return
        self.collapsed = {p for p in self.collapsed if not p.startswith(block + ".")} | {block}
        self.selected = GROUP + block
        self.redraw()


    def _maybe_infer_shapes(self, project: Project) -> None:
        arch = project["architectures"].get(self.entry_id)
        if arch is None:
            return
        key = json.dumps(arch, sort_keys=True)
        if key == self._shape_key:
            return
        self._shape_key = key
        from forge_ops.arch import user_code_in

        custom = {layer["name"] for layer in project["layers"].values()}
        code = user_code_in(arch, custom)
        if code:
            # Custom layers and packages are user code: it runs only inside jobs, never here.
            self._shapes_done(key, {}, {}, f"shapes: not inferred here ({code} runs in jobs)")
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

    def inspector_notes(self, text: Text) -> None:
        if self.shape_error:
            text.append(f"{self.shape_error}\n", style="yellow")

    def inspect_node(self, text: Text, project: Project, graph: Graph, node_id: str) -> None:
        prefix = group_prefix(node_id)
        if prefix is not None:
            text.append(f"\n{prefix}", style="bold")
            text.append(f"  group of {self._groups.get(node_id, 0)} layers\n", style="italic")
            text.append("  g expands it; G collapses the enclosing block\n", style="dim")
            return
        layer = graph["layers"][node_id]
        text.append(f"\n{layer['name']}", style="bold")
        text.append(f"  {layer['type']}\n", style="italic")
        for key, value in layer["attributes"].items():
            text.append(f"  {key} = {show_value(value, 40)}\n")

    # ----- layers -------------------------------------------------------------------------

    def pick_new_node(self, project: Project) -> None:
        self._pick_layer_type()

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
        custom = [layer["name"] for layer in project["layers"].values()]
        options = layer_type_choices(custom, names)
        self.app.call_from_thread(self.say, "")
        self.app.call_from_thread(
            self.app.push_screen, FuzzyPicker("Add layer", options), self._add_layer
        )

    def _add_layer(self, layer_type: str | None) -> None:
        if layer_type is not None:
            self._add_and_select(
                "Add layer", lambda p: p.add_arch_layer(self.entry_id, layer_type)
            )

    def remove_node(self, project: ProjectDoc, node_id: str) -> None:
        if group_prefix(node_id) is not None:
            raise ValueError("a collapsed group is not a layer; expand it (g) first")
        project.remove_arch_layer(self.entry_id, node_id)

    def rename_node(self, project: ProjectDoc, node_id: str, name: str) -> None:
        if group_prefix(node_id) is not None:
            raise ValueError("a collapsed group is not a layer; expand it (g) first")
        project.rename_arch_layer(self.entry_id, node_id, name)

    def open_code(self, node_id: str, graph: Graph) -> None:
        layer_type = graph["layers"][node_id]["type"]
        layer_id = self.workspace.project.find("layers", layer_type)
        if layer_id is None:
            self.say(f"{layer_type} is a built-in layer; its code is not editable")
            return
        self.post_message(self.OpenCode("layer", layer_id))

    # ----- connections --------------------------------------------------------------------

    def connect_from(self, src: str, project: Project, graph: Graph) -> None:
        options = [
            (f"{layer['name']}  ({layer['type']})", lid)
            for lid, layer in graph["layers"].items()
            if lid != src
        ]
        self.app.push_screen(
            FuzzyPicker("Connect to layer", options), lambda dst: self._connect_layers(src, dst)
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

    def edge_label(self, graph: Graph, edge: dict[str, Any]) -> str:
        a, b = graph["layers"][edge["src"]]["name"], graph["layers"][edge["dst"]]["name"]
        return f"{a} → {b} (input {edge['index']})"

    def disconnect(self, project: ProjectDoc, edge_id: str) -> None:
        project.disconnect_layers(self.entry_id, edge_id)

    # ----- attributes and the input shape -------------------------------------------------

    def edit_attributes(self, node_id: str, project: Project, graph: Graph) -> None:
        attrs = graph["layers"][node_id]["attributes"]
        options = [(f"{k} = {show_value(v, 30)}", k) for k, v in attrs.items()]
        options.append(("(new attribute)", ""))
        self.app.push_screen(
            FuzzyPicker("Edit attribute", options),
            if_chosen(lambda key: self._edit_layer_attribute(node_id, key)),
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

    def action_input_shape(self) -> None:
        """The input shape that shape inference starts from (empty: none)."""
        graph = self._graph(self.workspace.snapshot())
        if graph is None:
            self.say("This architecture was deleted")
            return
        current = graph.get("input_shape")

        def validate(text: str) -> str | None:
            if not text.strip():
                return None
            try:
                parse_input_shape(text)
            except InputShapeError:
                return "positive integers separated by commas, e.g. 1, 3, 32, 32"
            return None

        def done(text: str | None) -> None:
            if text is not None:
                shape = parse_input_shape(text) if text.strip() else None
                self._apply("Input shape", lambda p: p.set_input_shape(self.entry_id, shape))

        shown = ", ".join(str(d) for d in current) if current else ""
        self.app.push_screen(
            Prompt("Input shape (empty: none)", shown, validate, "batch, channels, height, width"),
            done,
        )
