"""The diagram editor: keyboard-first, one transaction per edit.

:class:`GraphEditor` holds what pipelines and architectures share (drawing, selection, the
inspector's frame, undo, the key bindings). Its subclasses, ``PipelineEditor``
(:mod:`.pipeline_editor`) and ``ArchitectureEditor`` (:mod:`.architecture_editor`), say what a
node is, how nodes connect and what their attributes are.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.message import Message
from textual.reactive import reactive
from textual.widget import Widget
from textual.widgets import Static

from forge_ops.schema import Project, ProjectDoc, SchemaError
from forge_tui.app._workspace import Workspace
from forge_tui.app.bindings import MOVE_BINDINGS
from forge_tui.app.screens.modals import FuzzyPicker, Prompt
from forge_tui.app.screens.run_dialog import RunOptions
from forge_tui.app.widgets.graph_canvas import GraphCanvas
from forge_tui.render import COMPACT, GraphSpec, Mark, RenderOptions, nearest, render_graph

Kind = Literal["pipeline", "architecture"]
Graph = dict[str, Any]
"""A pipeline or an architecture as plain data (a project snapshot's entry)."""


class GraphEditor(Widget):
    """A pipeline or an architecture drawn by the renderer, with an inspector beside it."""

    DEFAULT_CSS = """
    GraphEditor { layout: vertical; height: 1fr; }
    GraphEditor > Horizontal { height: 1fr; }
    GraphEditor GraphCanvas { width: 1fr; }
    GraphEditor #inspector { width: 32; border-left: solid $primary; padding: 0 1; }
    GraphEditor #inspector:focus { border-left: thick $accent; }
    GraphEditor #message { height: 1; padding: 0 1; color: $warning; }
    GraphEditor.narrow #inspector { display: none; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        *MOVE_BINDINGS,
        Binding("shift+up,K", "pan(0, -4)", "Pan up", show=False),
        Binding("shift+down,J", "pan(0, 4)", "Pan down", show=False),
        Binding("shift+left,H", "pan(-8, 0)", "Pan left", show=False),
        Binding("shift+right,L", "pan(8, 0)", "Pan right", show=False),
        Binding("escape", "leave", "Back to the list", show=False),
        # The footer shows the keys of the everyday edit at 80 columns; F1 lists the rest.
        Binding("a", "add_node", "Add"),
        Binding("c", "connect", "Connect"),
        Binding("x", "disconnect", "Disconnect", show=False),
        Binding("d,delete", "delete_node", "Delete", show=False),
        Binding("r", "rename", "Rename", show=False),
        Binding("e,enter", "edit_attribute", "Attribute"),
        Binding("f", "set_reference", "Reference", show=False),
        Binding("o", "open_code", "Code"),
        Binding("s", "input_shape", "Input shape", show=False),
        Binding("z", "toggle_compact", "Compact view", show=False),
        Binding("u,ctrl+z", "undo", "Undo"),
        Binding("U,ctrl+y", "redo", "Redo", show=False),
        Binding("ctrl+r", "run", "Run"),
        Binding("ctrl+t", "run_with_options", "Run with options…", show=False),
    ]

    kind: ClassVar[Kind]
    collection: ClassVar[str]
    """The project's map of these graphs: ``pipelines`` or ``architectures``."""
    members: ClassVar[str]
    """The graph's map of boxes: ``nodes`` or ``layers``."""

    selected: reactive[str | None] = reactive(None, init=False)

    class Left(Message):
        """Escape: the user leaves the diagram for the list one level up."""

    @dataclass
    class OpenCode(Message):
        """The user asked to edit the code behind the selected node."""

        kind: str
        entry_id: str

    def __init__(self, workspace: Workspace, entry_id: str) -> None:
        super().__init__(id=f"editor-{self.kind}-{entry_id}")
        self.workspace = workspace
        self.entry_id = entry_id
        self.options = RenderOptions()
        self._ready = False
        self.stale = False
        self._drawn_selection: str | None = None

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

    # ----- what subclasses say about their graphs -----------------------------------------

    def graph_spec(self, project: Project, marks: dict[str, list[Mark]]) -> GraphSpec:
        """The renderer's description of the graph, with ``marks`` of other people."""
        raise NotImplementedError

    def inspect_node(self, text: Text, project: Project, graph: Graph, node_id: str) -> None:
        """Append the selected node's details to the inspector's ``text``."""
        raise NotImplementedError

    def inspector_notes(self, text: Text) -> None:
        """Lines under the graph's name, whatever is selected (none by default)."""

    def remove_node(self, project: ProjectDoc, node_id: str) -> None:
        raise NotImplementedError

    def rename_node(self, project: ProjectDoc, node_id: str, name: str) -> None:
        raise NotImplementedError

    def disconnect(self, project: ProjectDoc, edge_id: str) -> None:
        raise NotImplementedError

    def edge_label(self, graph: Graph, edge: dict[str, Any]) -> str:
        """How a connection reads in the disconnect picker."""
        raise NotImplementedError

    # ----- drawing ------------------------------------------------------------------------

    @property
    def canvas(self) -> GraphCanvas:
        return self.query_one(GraphCanvas)

    def say(self, message: str) -> None:
        self.query_one("#message", Static).update(message)

    def _graph(self, project: Project) -> Graph | None:
        return project[self.collection].get(self.entry_id)  # type: ignore[literal-required,no-any-return]

    def _current_graph(self) -> tuple[Project, Graph]:
        """A snapshot of the project and the graph being edited in it (it exists while editing)."""
        project = self.workspace.snapshot()
        graph = self._graph(project)
        assert graph is not None
        return project, graph

    def _selection(self, hint: str = "Select a node first") -> tuple[str, Project, Graph] | None:
        """The selected node with the project snapshot and graph, or None after saying ``hint``."""
        if self.selected is None:
            self.say(hint)
            return None
        return (self.selected, *self._current_graph())

    def node_ids(self) -> list[str]:
        graph = self._graph(self.workspace.snapshot())
        if graph is None:
            return []
        return list(graph[self.members])

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
        rendered = render_graph(self.graph_spec(project, marks), self.options)
        empty = "Empty: press a to add a node" if self._graph(project) is not None else "Deleted"
        # The box selected at the last drawing stays put on screen (after an insert it is the
        # new box's neighbour); then the view scrolls only as far as the selection needs.
        self.canvas.show(rendered, empty, keep=self._drawn_selection)
        self._drawn_selection = self.selected
        self.canvas.follow(self.selected)
        self.query_one("#inspector-body", Static).update(self._inspector(project))

    def _inspector(self, project: Project) -> Text:
        graph = self._graph(project)
        if graph is None:
            return Text("This entry was deleted.")
        text = Text()
        text.append(f"{graph['name']}\n", style="bold")
        self.inspector_notes(text)
        if self.selected is None:
            text.append("No selection. Arrows/hjkl select;\na adds a node.", style="dim")
            return text
        self.inspect_node(text, project, graph, self.selected)
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

    def _apply(self, description: str, change: Callable[[ProjectDoc], object]) -> bool:
        """Run one edit in one transaction; schema errors become a message, not a crash."""
        try:
            with self.workspace.edit() as project:
                change(project)
        except (SchemaError, ValueError, TypeError) as exc:
            self.say(f"{description} refused: {exc}")
            return False
        self.say("")
        return True

    def _add_and_select(self, description: str, add: Callable[[ProjectDoc], str]) -> None:
        """Apply an edit that creates a node, then select the new node."""
        created: list[str] = []
        self._apply(description, lambda p: created.append(add(p)))
        if created:
            self.selected = created[0]

    def action_add_node(self) -> None:
        project = self.workspace.snapshot()
        if self._graph(project) is None:
            self.say(f"This {self.kind} was deleted; nothing to add to")
            return
        self.pick_new_node(project)

    def pick_new_node(self, project: Project) -> None:
        """Ask what to add (the graph exists)."""
        raise NotImplementedError

    def action_delete_node(self) -> None:
        if self.selected is None:
            self.say("Select a node first")
            return
        node = self.selected
        self._apply("Delete", lambda p: self.remove_node(p, node))

    def _selected_name(self, project: Project) -> str:
        graph = self._graph(project)
        if graph is None or self.selected is None:
            return ""
        return str(graph[self.members][self.selected]["name"])

    def action_rename(self) -> None:
        if self.selected is None:
            self.say("Select a node first")
            return
        node = self.selected

        def done(name: str | None) -> None:
            if name:
                self._apply("Rename", lambda p: self.rename_node(p, node, name.strip()))

        current = self._selected_name(self.workspace.snapshot())
        self.app.push_screen(Prompt("Rename node", current), done)

    # ----- connections --------------------------------------------------------------------

    def action_connect(self) -> None:
        selection = self._selection("Select the node whose output to connect")
        if selection is not None:
            self.connect_from(*selection)

    def connect_from(self, src: str, project: Project, graph: Graph) -> None:
        """Ask where the selected node's output goes, then connect it."""
        raise NotImplementedError

    def action_disconnect(self) -> None:
        selection = self._selection()
        if selection is None:
            return
        node, _, graph = selection
        options = [
            (self.edge_label(graph, e), edge_id)
            for edge_id, e in graph["edges"].items()
            if node in (e["src"], e["dst"])
        ]
        if not options:
            self.say("No connections on this node")
            return

        def done(edge_id: str | None) -> None:
            if edge_id is not None:
                self._apply("Disconnect", lambda p: self.disconnect(p, edge_id))

        self.app.push_screen(FuzzyPicker("Remove connection", options), done)

    # ----- inspector edits ----------------------------------------------------------------

    def action_edit_attribute(self) -> None:
        selection = self._selection()
        if selection is not None:
            self.edit_attributes(*selection)

    def edit_attributes(self, node_id: str, project: Project, graph: Graph) -> None:
        """Offer the selected node's attributes for editing."""
        raise NotImplementedError

    def action_set_reference(self) -> None:
        self.say("Select a pipeline node first")

    def action_input_shape(self) -> None:
        self.say("Input shapes belong to architectures")

    def action_open_code(self) -> None:
        selection = self._selection()
        if selection is not None:
            node, _, graph = selection
            self.open_code(node, graph)

    def open_code(self, node_id: str, graph: Graph) -> None:
        """Ask the screen to open the code behind the node, if it has editable code."""
        raise NotImplementedError

    # ----- run, undo ----------------------------------------------------------------------

    def action_run(self) -> None:
        self.run_graph()

    def action_run_with_options(self) -> None:
        """Run with options: recompute everything, which executor, GPUs (a dialog)."""
        from forge_tui.app.screens.run_dialog import RunDialog

        self.app.push_screen(
            RunDialog(), lambda options: None if options is None else self.run_graph(options)
        )

    def run_graph(self, options: RunOptions | None = None) -> None:
        """Run the graph on the server (only pipelines run)."""
        self.say("Only pipelines run; open one in the sidebar")

    def action_leave(self) -> None:
        self.post_message(self.Left())

    def action_undo(self) -> None:
        if not self.workspace.undo.undo():
            self.say("Nothing of yours to undo")

    def action_redo(self) -> None:
        if not self.workspace.undo.redo():
            self.say("Nothing to redo")
