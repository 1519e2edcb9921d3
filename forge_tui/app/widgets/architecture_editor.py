"""The architecture editor: layers (torch.nn classes, functional ops, custom layers) wired in
order, with shapes and parameter counts inferred off the UI thread, and the input shape that
inference starts from.

Everyone sees the same: the input shape lives in the architecture (shared, versioned), and a
line over the diagram gives it with the parameter total; a layer an error names is flagged.
An attribute value is checked against the layer's constructor before it is written (see
:mod:`forge_ops.arch.validate`), so a refused value never reaches the document. A layer added
while another is selected is inserted after it.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import Static

from forge_ops.arch import INPUT, OUTPUT
from forge_ops.graph_order import reaches
from forge_ops.input_shape import InputShapeError, parse_input_shape
from forge_ops.schema import Project, ProjectDoc
from forge_tui.app._arch_summary import ArchSummary, summarize
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
    from forge_ops.arch import FUNCTIONAL_OPS

    functional = [INPUT, OUTPUT, "Parameter", "Buffer", *sorted(FUNCTIONAL_OPS)]
    options = [(f"{n}  (custom)", n) for n in sorted(custom)]
    return options + [(n, n) for n in functional] + [(n, n) for n in built_in]


def insert_after(
    project: ProjectDoc, arch_id: str, graph: Graph, after: str, new: str, *, new_type: str
) -> None:
    """Wire the new layer ``new`` in after layer ``after``: it takes ``after``'s output and
    feeds whatever ``after`` fed. An Output has no output to take: the new layer goes before
    it instead. A new Input takes no connection; a new Output is one more consumer."""
    if new_type == INPUT:
        return
    edges = sorted(graph["edges"].items())
    if graph["layers"][after]["type"] == OUTPUT:
        for edge_id, edge in edges:
            if edge["dst"] == after:
                project.disconnect_layers(arch_id, edge_id)
                project.connect_layers(arch_id, edge["src"], new, 0)
        project.connect_layers(arch_id, new, after, 0)
        return
    if new_type != OUTPUT:
        for edge_id, edge in edges:
            if edge["src"] == after:
                project.disconnect_layers(arch_id, edge_id)
                project.connect_layers(arch_id, new, edge["dst"], edge["index"])
    project.connect_layers(arch_id, after, new, 0)


def custom_layer_code(project: Project) -> dict[str, str]:
    """The project's custom layers by class name (their code is read, never run, here)."""
    return {layer["name"]: layer["code"] for layer in project["layers"].values()}


def attribute_problem(
    name: str, layer_type: str, attributes: dict[str, Any], custom: dict[str, str]
) -> str | None:
    """Why ``attributes`` cannot construct the layer (naming it and the attribute), or None."""
    from forge_ops.arch import ArchitectureError
    from forge_ops.arch.validate import check_layer_attributes

    try:
        check_layer_attributes(name, layer_type, attributes, custom)
    except ArchitectureError as exc:
        return str(exc)
    except ImportError:
        return None  # no torch here: the run checks the layer instead
    return None


def attribute_choices(layer_type: str, custom: dict[str, str]) -> list[tuple[str, str]]:
    """(name, what its default is) for each attribute the layer's constructor takes; empty
    when the type is unknown (the user may then name any attribute)."""
    from forge_ops.arch import FUNCTIONAL_OPS, CustomLayerError
    from forge_ops.arch.catalogue import catalogue
    from forge_ops.arch.custom import custom_layer_specs

    if layer_type == INPUT:
        return [("index", "default 0"), ("shape", "default: the architecture's")]
    if layer_type == OUTPUT:
        return [("index", "default 0")]
    specs = {}
    try:
        specs.update(catalogue())
        if layer_type in custom:
            specs.update(custom_layer_specs({layer_type: custom[layer_type]}))
    except (ImportError, CustomLayerError):
        pass  # no torch, or unreadable custom code: any attribute name may be typed
    spec = specs.get(layer_type)
    if spec is not None:
        return [
            (a.name, "required" if a.required else f"default {show_value(a.default, 20)}")
            for a in spec.attributes
        ]
    op = FUNCTIONAL_OPS.get(layer_type)
    if op is not None:
        return [
            (k, "required" if a.required else f"default {show_value(a.default, 20)}")
            for k, a in op.attributes.items()
        ]
    return []


class ArchitectureEditor(GraphEditor):
    """Layers are boxes; a layer with several inputs takes them in order (input 0, 1, …)."""

    DEFAULT_CSS = """
    ArchitectureEditor #summary { height: auto; max-height: 3; padding: 0 1; background: $boost; }
    """

    kind: ClassVar[Kind] = "architecture"
    collection: ClassVar[str] = "architectures"
    members: ClassVar[str] = "layers"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("g", "group", "Group", show=False),
        Binding("G", "group_outer", "Group the enclosing block", show=False),
    ]

    def __init__(self, workspace: Workspace, entry_id: str) -> None:
        super().__init__(workspace, entry_id)
        # Shapes and parameter counts, worked out off the UI thread per version.
        self._shape_key: str | None = None
        self.summary: ArchSummary | None = None
        # Blocks drawn as one box (name prefixes such as "blocks.3"); display only.
        self.collapsed: set[str] = set()
        self._groups: dict[str, int] = {}  # group box id -> member count, as last drawn

    def compose(self) -> ComposeResult:
        yield Static("", id="summary")
        yield from super().compose()

    @property
    def parameters(self) -> dict[str, int]:
        return self.summary.parameters if self.summary else {}

    @property
    def edge_shapes(self) -> dict[str, Any]:
        return self.summary.edge_shapes if self.summary else {}

    @property
    def shape_error(self) -> str:
        return self.summary.error if self.summary else ""

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
            flagged=self.summary.error_layer if self.summary else None,
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


    def redraw(self) -> None:
        super().redraw()
        if self._ready:
            self.query_one("#summary", Static).update(self._summary_text())

    def _summary_text(self) -> Text:
        if self.summary is None:
            return Text("working out shapes and parameters…", style="dim")
        text = Text(self.summary.line())
        if self.summary.error:
            text.append(f"\n⚠ {self.summary.error}", style="yellow")
        return text

    def _maybe_infer_shapes(self, project: Project) -> None:
        arch = project["architectures"].get(self.entry_id)
        if arch is None:
            return
        custom = {layer["name"]: layer["code"] for layer in project["layers"].values()}
        key = json.dumps([arch, custom], sort_keys=True)
        if key == self._shape_key:
            return
        self._shape_key = key
        self._infer_shapes(key, dict(arch), custom)

    @work(thread=True, exclusive=True, group="shapes")
    def _infer_shapes(self, key: str, arch: dict[str, Any], custom: dict[str, str]) -> None:
        """Builds torch.nn layers on the meta device: slow the first time, so in a thread."""
        summary = summarize(arch, custom)
        self.app.call_from_thread(self._shapes_done, key, summary)

    def _shapes_done(self, key: str, summary: ArchSummary) -> None:
        if key != self._shape_key:
            return  # the architecture changed meanwhile; a newer inference is coming
        self.summary = summary
        self.redraw()

    def inspector_notes(self, text: Text) -> None:
        if self.summary is not None:
            text.append(f"{self.summary.line()}\n", style="dim")
            if self.summary.error:
                text.append(f"{self.summary.error}\n", style="yellow")

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
        if layer_type is None:
            return
        after = self.selected
        _, graph = self._current_graph()
        if after is not None and after not in graph["layers"]:
            after = None

        def add(project: ProjectDoc) -> str:
            layer_id = project.add_arch_layer(self.entry_id, layer_type)
            if after is not None:
                insert_after(
                    project, self.entry_id, graph, after, layer_id, new_type=layer_type
                )
            return layer_id

        self._add_and_select("Add layer", add)
        if after is not None and self.selected not in (None, after):
            name = graph["layers"][after]["name"]
            self.say(f"Inserted {layer_type} after {name}" if layer_type != INPUT
                     else f"Added {layer_type} (an input takes no connection)")

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
        self._load_catalogue_then(node_id)

    @work(thread=True, exclusive=True, group="catalogue")
    def _load_catalogue_then(self, node_id: str) -> None:
        """The checks need the torch.nn catalogue, which imports torch: off the UI thread."""
        try:
            from forge_ops.arch.catalogue import catalogue

            catalogue()
        except Exception as exc:  # a broken torch install must not take the editor down
            self.app.call_from_thread(self.say, f"Layer catalogue unavailable: {exc}")
        self.app.call_from_thread(self._pick_attribute, node_id)

    def _pick_attribute(self, node_id: str) -> None:
        project, graph = self._current_graph()
        layer = graph["layers"].get(node_id)
        if layer is None:
            self.say("That layer was deleted")
            return
        attrs = layer["attributes"]
        known = attribute_choices(layer["type"], custom_layer_code(project))
        options = [(f"{k} = {show_value(v, 30)}", k) for k, v in attrs.items()]
        for name, default in known:
            if name not in attrs:
                options.append((f"{name}  ({default})", name))
        if not known:
            options.append(("(new attribute)", ""))
        self.app.push_screen(
            FuzzyPicker(f"Edit attribute of {layer['name']} ({layer['type']})", options),
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
        project, graph = self._current_graph()
        layer = graph["layers"].get(layer_id)
        if layer is None:
            self.say("That layer was deleted")
            return
        current = layer["attributes"].get(key)
        custom = custom_layer_code(project)

        def validate(text: str) -> str | None:
            """The layer's constructor rules, before anything is written."""
            if not text.strip():
                return "type a value (Escape cancels)"
            attributes = {**layer["attributes"], key: parse_value(text)}
            return attribute_problem(layer["name"], layer["type"], attributes, custom)

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
            Prompt(
                f"{layer['name']}.{key} ({layer['type']})",
                shown,
                validate,
                "a Python literal: 64, [3, 3], True, 'same'",
            ),
            done,
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
