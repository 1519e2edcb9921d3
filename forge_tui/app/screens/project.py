"""The project screen: sidebar tree of everything in the project, the editor beside it."""

from __future__ import annotations

from typing import Any, ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.message import Message
from textual.screen import Screen
from textual.widgets import ContentSwitcher, Footer, Label, Static, Tree

from forge_ops.schema import SchemaError
from forge_tui.app._link import LinkState
from forge_tui.app._templates import new_layer_code, new_operation_code
from forge_tui.app._workspace import Workspace
from forge_tui.app.screens.modals import FuzzyPicker, Prompt, if_chosen
from forge_tui.app.widgets.architecture_editor import ArchitectureEditor
from forge_tui.app.widgets.code_editor import CodeEditor
from forge_tui.app.widgets.graph_editor import GraphEditor
from forge_tui.app.widgets.pipeline_editor import PipelineEditor
from forge_tui.app.widgets.status_bar import ConnectionState, PresenceBar

SECTIONS = (
    ("pipelines", "Pipelines"),
    ("operations", "Operations"),
    ("architectures", "Architectures"),
    ("layers", "Custom layers"),
    ("executions", "Executions"),
)
EDITORS: dict[str, type[GraphEditor]] = {
    "pipeline": PipelineEditor,
    "architecture": ArchitectureEditor,
}
KIND_OF = {
    "pipelines": "pipeline",
    "operations": "operation",
    "architectures": "architecture",
    "layers": "layer",
    "executions": "execution",
}

class DocumentChanged(Message):
    """The project document changed (any peer); floods collapse into one redraw."""

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, DocumentChanged)


class PresenceChanged(Message):
    def can_replace(self, message: Message) -> bool:
        return isinstance(message, PresenceChanged)


class LinkChanged(Message):
    def __init__(self, state: LinkState, detail: str) -> None:
        super().__init__()
        self.state = state
        self.detail = detail


class ProjectTree(Tree[Any]):
    """The sidebar: the screen's keys are shown in the footer while the list has the focus
    (in an editor the footer has room for the editor's keys only)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("n", "screen.new_entry", "New"),
        Binding("E", "screen.executions", "Executions"),
        Binding("ctrl+g", "screen.history", "History"),
        Binding("F2", "screen.rename_entry", "Rename"),
    ]


class ProjectScreen(Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("n", "new_entry", "New", show=False),
        Binding("F2", "rename_entry", "Rename entry", show=False),
        Binding("ctrl+b", "toggle_sidebar", "Sidebar", show=False),
        Binding("tab", "focus_next", "Next pane", show=False),
        Binding("ctrl+o", "switch_project", "Projects", show=False),
        Binding("E", "executions", "Executions", show=False),
        Binding("ctrl+g", "history", "History", show=False),
        Binding("S", "sweeps", "Sweeps", show=False),
    ]

    def __init__(self, workspace: Workspace, *, open_pipeline: str | None = None) -> None:
        super().__init__()
        self.workspace = workspace
        self.open_entry: tuple[str, str] | None = None
        # A pipeline to open by name once the synced document holds it (forge tui --pipeline).
        self.pending_pipeline = open_pipeline
        self._listing: list[tuple[str, list[tuple[str, Any]]]] | None = None
        self.return_to: dict[str, str] = {}
        """Code editor → the diagram it was opened from (Escape goes back there)."""

    def compose(self) -> ComposeResult:
        with Horizontal(id="topbar"):
            branch = getattr(self.app, "branch", "main")
            yield Label(f" {self.workspace.project_name} · {branch} ", id="project-name")
            yield ConnectionState(id="connection")
            yield PresenceBar(id="presence")
        with Horizontal(id="body"):
            tree = ProjectTree("Project", id="sidebar")
            tree.show_root = False
            yield tree
            with ContentSwitcher(id="content", initial="welcome"):
                yield Static(
                    "Choose a pipeline, operation or architecture in the sidebar "
                    "(Enter), or press n to create one. F1 lists every key.",
                    id="welcome",
                )
        yield Footer()

    def on_mount(self) -> None:
        ws = self.workspace
        ws.on_change(self._post_changed)
        ws.on_presence(self._post_presence)
        ws.link.watch(self._post_link)
        self._show_link(ws.link.state, ws.link.detail)
        self.refresh_tree()
        self.refresh_presence()
        tree = self.query_one(Tree)
        tree.cursor_line = 0
        tree.focus()

    # ----- live updates -------------------------------------------------------------------

    def _post_changed(self) -> None:
        self.post_message(DocumentChanged())

    def _post_presence(self) -> None:
        self.post_message(PresenceChanged())

    def _post_link(self, state: LinkState, detail: str) -> None:
        self.post_message(LinkChanged(state, detail))

    def on_document_changed(self, message: DocumentChanged) -> None:
        self._redraw_editors()
        self.refresh_tree()
        for code in self.query(CodeEditor):
            code.check_exists()

    def on_presence_changed(self, message: PresenceChanged) -> None:
        self.refresh_presence()
        self._redraw_editors()

    def _redraw_editors(self) -> None:
        """Redraw the diagram on screen now; hidden ones redraw when shown."""
        current = self.query_one(ContentSwitcher).current
        for editor in self.query(GraphEditor):
            if editor.id == current:
                editor.redraw()
            else:
                editor.stale = True

    def on_link_changed(self, message: LinkChanged) -> None:
        self._show_link(message.state, message.detail)

    def _show_link(self, state: LinkState, detail: str) -> None:
        self.query_one(ConnectionState).show(state, detail)

    def refresh_presence(self) -> None:
        ws = self.workspace
        self.query_one(PresenceBar).show(ws.user, ws.colour, ws.peers(), ws.label)

    def _tree_entries(self) -> list[tuple[str, list[tuple[str, Any]]]]:
        project = self.workspace.snapshot()
        sections = []
        for key, title in SECTIONS:
            entries: dict[str, Any] = project[key]  # type: ignore[literal-required]
            if key == "executions":
                items = sorted(entries.items(), key=lambda kv: kv[1]["created"], reverse=True)
                leaves = [
                    (f"{ex['status']:<9} {ex['created'][5:16]}", ("execution", xid))
                    for xid, ex in items
                ]
            else:
                ordered = sorted(entries.items(), key=lambda kv: kv[1]["name"].lower())
                leaves = [
                    (
                        entry["name"]
                        + (" ·" if key == "operations" and entry.get("builtin") else ""),
                        (KIND_OF[key], entry_id),
                    )
                    for entry_id, entry in ordered
                ]
            sections.append((f"{title} ({len(leaves)})", leaves))
        return sections

    def refresh_tree(self) -> None:
        """Rebuild the sidebar only when what it lists changed (most edits do not)."""
        self._open_pending_pipeline()
        listing = self._tree_entries()
        if listing == self._listing:
            return
        self._listing = listing
        tree: Tree[Any] = self.query_one(Tree)
        expanded = {n.data for n in tree.root.children if n.is_expanded} or {
            "pipelines",
            "operations",
            "architectures",
        }
        cursor = tree.cursor_node.data if tree.cursor_node else None
        tree.clear()
        for (key, _title), (label, leaves) in zip(SECTIONS, listing, strict=True):
            branch = tree.root.add(label, data=key, expand=key in expanded)
            for leaf_label, data in leaves:
                branch.add_leaf(leaf_label, data=data)
        tree.root.add_leaf("History (ctrl+g)", data="history")
        if cursor is not None:
            for node in tree.root.children:
                for leaf in [node, *node.children]:
                    if leaf.data == cursor:
                        tree.move_cursor(leaf)

    # ----- opening ------------------------------------------------------------------------

    def _open_pending_pipeline(self) -> None:
        name = self.pending_pipeline
        if name is None:
            return
        pipelines = self.workspace.snapshot()["pipelines"]
        for pipeline_id, pipeline in pipelines.items():
            if pipeline["name"] == name:
                self.pending_pipeline = None
                self.open("pipeline", pipeline_id)
                return

    @on(Tree.NodeSelected)
    def _selected(self, event: Tree.NodeSelected[Any]) -> None:
        data = event.node.data
        if isinstance(data, tuple):
            self.return_to.pop(f"code-{data[0]}-{data[1]}", None)  # opened from the list
            self.open(*data)
        elif data == "history":
            self.action_history()

    def open(self, kind: str, entry_id: str) -> None:
        self.run_worker(self.open_now(kind, entry_id), group="open-entry")

    async def open_now(self, kind: str, entry_id: str) -> None:
        switcher = self.query_one(ContentSwitcher)
        if kind in EDITORS:
            widget_id = f"editor-{kind}-{entry_id}"
            if not self.query(f"#{widget_id}"):
                await switcher.mount(EDITORS[kind](self.workspace, entry_id))
        elif kind in ("operation", "layer"):
            widget_id = f"code-{kind}-{entry_id}"
            if not self.query(f"#{widget_id}"):
                try:
                    await switcher.mount(CodeEditor(self.workspace, kind, entry_id))
                except SchemaError as exc:
                    self.notify(str(exc), severity="error")
                    return
        else:
            from forge_tui.app.screens.monitor import open_monitor

            await open_monitor(self.app, self.workspace.project_name, entry_id)
            return
        self.open_entry = (kind, entry_id)
        self._show(widget_id)

    def _show(self, widget_id: str) -> None:
        self.query_one(ContentSwitcher).current = widget_id
        widget = self.query_one(f"#{widget_id}")
        if isinstance(widget, GraphEditor | CodeEditor):
            self.open_entry = (widget.kind, widget.entry_id)
        if isinstance(widget, GraphEditor):
            if widget.stale:
                widget.redraw()
            widget.workspace.set_presence(view={"kind": widget.kind, "id": widget.entry_id})
            widget.canvas.focus()
        elif isinstance(widget, CodeEditor):
            widget.workspace.set_presence(view={"kind": widget.kind, "id": widget.entry_id})
            widget.area.focus()

    @on(GraphEditor.OpenCode)
    def _open_code(self, event: GraphEditor.OpenCode) -> None:
        current = self.query_one(ContentSwitcher).current
        if current is not None:
            self.return_to[f"code-{event.kind}-{event.entry_id}"] = current
        self.open(event.kind, event.entry_id)

    # ----- Escape: one level up -----------------------------------------------------------

    @on(CodeEditor.Left)
    def _code_left(self, event: CodeEditor.Left) -> None:
        """From code back to the diagram it was opened from, else to the list."""
        diagram = self.return_to.get(str(event.editor.id))
        if diagram is not None and self.query(f"#{diagram}"):
            self._show(diagram)
        else:
            self.focus_list()

    @on(GraphEditor.Left)
    def _diagram_left(self, event: GraphEditor.Left) -> None:
        self.focus_list()

    def focus_list(self) -> None:
        tree = self.query_one(Tree)
        tree.display = True
        tree.focus()

    # ----- actions ------------------------------------------------------------------------

    def action_executions(self) -> None:
        from forge_tui.app.screens.executions import ExecutionsScreen

        self.app.push_screen(ExecutionsScreen(self.workspace))

    def action_history(self) -> None:
        from forge_tui.app.api import api_for
        from forge_tui.app.screens.history import HistoryScreen

        api = api_for(self.app.backend, self.workspace.project_name)  # type: ignore[attr-defined]
        if api is None:
            self.notify("History lives on a Forge server: open the project with --server URL")
            return
        self.app.push_screen(HistoryScreen(api, self.app.branch))  # type: ignore[attr-defined]

    def action_sweeps(self) -> None:
        from forge_tui.app.api import api_for
        from forge_tui.app.screens.sweeps import SweepsScreen

        api = api_for(self.app.backend, self.workspace.project_name)  # type: ignore[attr-defined]
        if api is None:
            self.notify("Sweeps run on a Forge server: open the project with --server URL")
            return
        self.app.push_screen(SweepsScreen(self.workspace, api,
                                          branch=self.app.branch))  # type: ignore[attr-defined]

    def action_toggle_sidebar(self) -> None:
        tree = self.query_one(Tree)
        tree.display = not tree.display

    def action_switch_project(self) -> None:
        self.app.action_projects()  # type: ignore[attr-defined]

    def action_new_entry(self) -> None:
        kinds = [
            ("Pipeline", "pipeline"),
            ("Operation (from a template)", "operation"),
            ("Architecture", "architecture"),
            ("Custom layer (from a template)", "layer"),
        ]
        self.app.push_screen(FuzzyPicker("Create", kinds), self._ask_name)

    def _ask_name(self, kind: str | None) -> None:
        if kind is None:
            return
        taken = {
            e["name"]
            for e in self.workspace.snapshot()[f"{kind}s"].values()  # type: ignore[literal-required]
        }

        def validate(text: str) -> str | None:
            name = text.strip()
            if not name:
                return "enter a name"
            if name in taken:
                return f"a {kind} called {name!r} exists; choose another name"
            if kind == "layer" and not name.isidentifier():
                return "a layer name is a Python class name (letters, digits, _)"
            return None

        self.app.push_screen(
            Prompt(f"New {kind}: name", "", validate),
            if_chosen(lambda name: self.create(kind, name.strip())),
        )

    def create(self, kind: str, name: str) -> str:
        with self.workspace.edit() as project:
            if kind == "pipeline":
                entry_id = project.add_pipeline(name)
            elif kind == "operation":
                entry_id = project.add_operation(name, new_operation_code(name))
            elif kind == "architecture":
                entry_id = project.add_architecture(name)
            else:
                entry_id = project.add_layer(name, new_layer_code(name))
        self.open(kind, entry_id)
        return entry_id

    def action_rename_entry(self) -> None:
        node = self.query_one(Tree).cursor_node
        data = node.data if node else None
        if not isinstance(data, tuple) or data[0] == "execution":
            self.notify("Highlight a pipeline, operation, architecture or layer to rename")
            return
        entry_id = data[1]

        def done(name: str | None) -> None:
            if name:
                with self.workspace.edit() as project:
                    project.rename(entry_id, name.strip())

        self.app.push_screen(Prompt("Rename", str(node.label).rstrip(" ·") if node else ""), done)
