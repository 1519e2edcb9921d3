"""Collaborative code editor: a TextArea bound both ways to an operation's or layer's Text.

Local typing becomes the minimal CRDT edit (``ProjectDoc.set_code``). Remote changes are applied
as one replacement of the span that differs, and the local cursor is moved by hand so that text
inserted before it pushes it along while text after it leaves it alone. Keystrokes not yet saved
when a remote change arrives are merged with it against the text both last agreed on, so
neither side's edit undoes the other's.
"""

from __future__ import annotations

from typing import Any, ClassVar

from rich.style import Style
from rich.text import Text as RichText
from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.message import Message
from textual.widget import Widget
from textual.widgets import Static, TextArea
from textual.widgets.text_area import Selection

from forge_ops.operations import InterfaceError, parse_interface
from forge_ops.schema import SchemaError, changed_span, merge_edits
from forge_tui.app._presence import PALETTE
from forge_tui.app._workspace import Workspace


def moved(offset: int, start: int, end: int, inserted: int) -> int:
    """Where a cursor at ``offset`` goes when old[start:end] is replaced by ``inserted`` chars."""
    if offset <= start:
        return offset
    if offset >= end:
        return offset + inserted - (end - start)
    return start + inserted


class SharedTextArea(TextArea):
    """A TextArea that also paints other people's cursors and selections in their colours.

    Textual has no public API for extra decorations, so the marks are added to the syntax
    highlight map (``_build_highlight_map``), styled through the theme's syntax styles.
    """

    remote: tuple[tuple[int, tuple[int, int], tuple[int, int]], ...] = ()

    class Left(Message):
        """Escape: the user leaves the text for what is one level up."""

    async def _on_key(self, event: events.Key) -> None:
        # With Tab indenting, a TextArea answers Escape by moving focus to whatever widget
        # comes next (the interface panel, where no key does anything): leave one level up.
        if event.key == "escape":
            event.stop()
            event.prevent_default()
            self.post_message(self.Left())
            return
        await super()._on_key(event)

    def show_remote(self, marks: list[tuple[int, tuple[int, int], tuple[int, int]]]) -> None:
        """``marks``: (colour slot, anchor, cursor) per other user in this text."""
        self.remote = tuple(marks)
        self._build_highlight_map()
        self.refresh()

    def _build_highlight_map(self) -> None:
        super()._build_highlight_map()
        theme = getattr(self, "_theme", None)
        lines = self.document.lines
        for slot, anchor, cursor in self.remote:
            name = f"forge.peer{slot}"
            if theme is not None and name not in theme.syntax_styles:
                theme.syntax_styles[name] = Style(color="black", bgcolor=PALETTE[slot], bold=True)
            start, end = sorted((anchor, cursor))
            if start == end:  # a cursor: one cell
                end = (end[0], end[1] + 1)
            for row in range(start[0], min(end[0], len(lines) - 1) + 1):
                line = lines[row]
                first = start[1] if row == start[0] else 0
                last = end[1] if row == end[0] else len(line)
                to_bytes = len(line[:first].encode()), len(line[:last].encode())
                if to_bytes[1] > to_bytes[0]:
                    self._highlights[row].append((*to_bytes, name))


class RemoteText(Message):
    """The shared text changed; floods of these collapse into one."""

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, RemoteText)


class CodeEditor(Widget):
    DEFAULT_CSS = """
    CodeEditor { height: 1fr; }
    CodeEditor > Horizontal { height: 1fr; }
    CodeEditor TextArea { width: 1fr; }
    CodeEditor #interface { width: 34; border-left: solid $primary; padding: 0 1; }
    CodeEditor #interface:focus { border-left: thick $accent; }
    CodeEditor.narrow #interface { display: none; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "leave", "Back")  # to the diagram it came from, or the list
    ]

    class Left(Message):
        """The user left the editor (Escape): focus goes one level up."""

        def __init__(self, editor: CodeEditor) -> None:
            super().__init__()
            self.editor = editor

    def __init__(self, workspace: Workspace, kind: str, entry_id: str) -> None:
        super().__init__(id=f"code-{kind}-{entry_id}")
        self.workspace = workspace
        self.kind = kind
        self.entry_id = entry_id
        self.shared = workspace.project.code_text(entry_id)
        self._subscription: Any = None
        self._ready = False  # children composed (``is_mounted`` is still False in on_mount)
        #: True while this editor writes its own text to the document (see ``_text_changed``).
        self._saving = False
        #: The text the editor and the document last agreed on: the base of both sides' edits.
        self._synced = str(self.shared)

    def compose(self) -> ComposeResult:
        with Horizontal():
            yield SharedTextArea(
                self._synced,
                language="python",
                show_line_numbers=True,
                id="code",
                tab_behavior="indent",
                theme="monokai",
            )
            with VerticalScroll(id="interface"):
                yield Static("", id="interface-body")

    @property
    def area(self) -> SharedTextArea:
        return self.query_one(SharedTextArea)

    def on_mount(self) -> None:
        self._ready = True
        self._subscription = self.shared.observe(self._text_changed)
        if str(self.shared) != self._synced:  # changed before it was observed
            self.post_message(RemoteText())
        self.workspace.on_presence(self._presence_changed)
        self.workspace.set_presence(view={"kind": self.kind, "id": self.entry_id})
        self._show_interface()

    def _text_changed(self, _event: object) -> None:
        # Not for this editor's own save (the observer runs inside it): by the time the notice
        # were handled, later keystrokes could be in the editor, and it would put them back.
        if not self._saving:
            self.post_message(RemoteText())

    def _presence_changed(self) -> None:
        self.call_later(self._show_interface)

    def on_unmount(self) -> None:
        if self._subscription is not None:
            self.shared.unobserve(self._subscription)

    def on_resize(self) -> None:
        self.set_class(self.size.width < 80, "narrow")

    @on(TextArea.Changed)
    def _local_edit(self, event: TextArea.Changed) -> None:
        self._sync()
        self._show_interface()

    def _sync(self) -> None:
        """Make the editor and the document agree, keeping the changes of both since they last
        did: local keystrokes not yet saved when a remote change lands, and a remote change not
        yet shown when keystrokes are saved."""
        ours, theirs = self.area.text, str(self.shared)
        merged = merge_edits(self._synced, ours, theirs)
        if merged != theirs:
            self._saving = True
            try:
                with self.workspace.edit() as project:
                    project.set_code(self.entry_id, merged)
            except SchemaError as exc:
                self.notify(f"Could not save: {exc}", severity="error")
                return
            finally:
                self._saving = False
        self._synced = merged
        if merged != ours:
            self._show_text(merged)

    @on(TextArea.SelectionChanged)
    def _cursor_moved(self, event: TextArea.SelectionChanged) -> None:
        row, column = event.selection.end
        anchor = list(event.selection.start)
        self.workspace.set_presence(
            cursor={"entry": self.entry_id, "line": row, "column": column, "anchor": anchor}
        )

    def on_remote_text(self, message: RemoteText) -> None:
        self._sync()
        self._show_interface()

    def _show_text(self, new: str) -> None:
        """Put ``new`` in the editor as one replacement, the cursor kept on its text."""
        area = self.area
        start, end, inserted = changed_span(area.text, new)
        document: Any = area.document  # a Document: index <-> location helpers
        sel = area.selection
        anchor = document.get_index_from_location(sel.start)
        cursor = document.get_index_from_location(sel.end)
        area.replace(
            inserted,
            document.get_location_from_index(start),
            document.get_location_from_index(end),
            maintain_selection_offset=False,
        )
        document = area.document
        area.selection = Selection(
            document.get_location_from_index(moved(anchor, start, end, len(inserted))),
            document.get_location_from_index(moved(cursor, start, end, len(inserted))),
        )

    def _show_interface(self) -> None:
        if not self._ready or self.area.read_only:
            return  # not composed yet, or the entry is gone (check_exists said so)
        code = self.area.text
        out = RichText()
        if self.kind == "operation":
            try:
                iface = parse_interface(code)
            except InterfaceError as exc:
                where = f"line {exc.line}: " if exc.line else ""
                out.append(f"✗ {where}{exc.message}\n", style="bold red")
                iface = None
            if iface is not None:
                out.append(f"def {iface.function}\n", style="bold")
                for title, items in (("Inputs", iface.inputs), ("Outputs", iface.outputs)):
                    out.append(f"{title}\n", style="underline")
                    for port in items:
                        out.append(f"  {port.name}: {port.type}\n")
                if iface.attributes:
                    out.append("Attributes\n", style="underline")
                    for attr in iface.attributes:
                        out.append(f"  {attr.name} = {attr.default!r}  ")
                        out.append(f"{attr.describe_type()}\n", style="dim")
                if iface.references:
                    out.append("References\n", style="underline")
                    for ref in iface.references:
                        out.append(f"  {ref.name}: {ref.type}\n")
        else:
            out.append("Custom layer (nn.Module)\n", style="bold")
        here = [p for p in self.workspace.peers() if p.cursor and p.cursor[0] == self.entry_id]
        self.area.show_remote(
            [(p.colour, p.anchor or p.cursor[1:], p.cursor[1:]) for p in here if p.cursor]
        )
        if here:
            out.append("\nAlso here\n", style="underline")
            for peer in here:
                assert peer.cursor is not None
                out.append(f" {peer.initials} ", style=f"bold black on {PALETTE[peer.colour]}")
                out.append(f" {peer.label} at {peer.cursor[1] + 1}:{peer.cursor[2] + 1}\n")
        self.query_one("#interface-body", Static).update(out)

    def check_exists(self) -> None:
        """Someone deleted this entry: stop editing text that no longer belongs anywhere."""
        project = self.workspace.snapshot()
        gone = self.entry_id not in project["operations"] and self.entry_id not in project["layers"]
        if gone and not self.area.read_only:
            self.area.read_only = True
            self.query_one("#interface-body", Static).update(
                RichText("This entry was deleted by someone; the text is read-only.", "bold red")
            )

    def action_leave(self) -> None:
        self.post_message(self.Left(self))

    @on(SharedTextArea.Left)
    def _text_left(self, event: SharedTextArea.Left) -> None:
        event.stop()
        self.action_leave()
