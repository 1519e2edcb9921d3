"""The collaborative code editor: both-way binding, cursor kept right, live interface panel."""

from __future__ import annotations

import pytest

from forge_ops.schema import ProjectDoc, merge_edits
from forge_tui.app import ForgeApp, MemoryBackend
from forge_tui.app.screens.project import ProjectScreen
from forge_tui.app.widgets.code_editor import CodeEditor, changed_span, moved
from forge_tui.app.widgets.graph_editor import GraphEditor

from .conftest import TEST, PaperProject

SIZE = (110, 40)


def test_changed_span_and_cursor_rules() -> None:
    assert changed_span("abcdef", "abXYcdef") == (2, 2, "XY")
    assert changed_span("abcdef", "abXYdef") == (2, 3, "XY")
    assert changed_span("abcdef", "abf") == (2, 5, "")
    assert moved(1, 2, 2, 2) == 1  # edit after the cursor: stays
    assert moved(4, 2, 2, 2) == 6  # insert before the cursor: pushed along
    assert moved(3, 2, 5, 0) == 2  # cursor inside deleted text: at the edit


def test_merge_edits_keeps_both_sides() -> None:
    base = "alpha beta gamma"
    assert merge_edits(base, "alpha beta gamma!", base) == "alpha beta gamma!"  # ours only
    assert merge_edits(base, base, "Alpha beta gamma") == "Alpha beta gamma"  # theirs only
    # Apart, in either order: both applied.
    assert merge_edits(base, "alpha beta gamma!", "Alpha beta gamma") == "Alpha beta gamma!"
    assert merge_edits(base, "Alpha beta gamma", "alpha beta gamma!") == "Alpha beta gamma!"
    assert merge_edits(base, "alpha gamma", "alpha beta delta") == "alpha delta"
    # Two inserts at one place: theirs first, then ours.
    assert merge_edits(base, "alpha XX beta gamma", "alpha YY beta gamma") == \
        "alpha YY XX beta gamma"
    # Overlapping: theirs stands, our inserted text follows it; nothing typed is lost.
    assert merge_edits(base, "alpha bXta gamma", "alpha bYYa gamma") == "alpha bYYXa gamma"
    assert merge_edits(base, "same", "same") == "same"


def saved_code(paper: PaperProject) -> str:
    """The test operation's code as the relay's document holds it."""
    return str(paper.view().to_plain()["operations"][paper.ops["test"]]["code"])


async def open_code(app: ForgeApp, pilot, op_id: str) -> CodeEditor:  # type: ignore[no-untyped-def]
    await pilot.pause()
    screen = app.screen
    assert isinstance(screen, ProjectScreen)
    await screen.open_now("operation", op_id)
    await pilot.pause()
    return screen.query_one(CodeEditor)


class TestCodeEditor:
    async def test_typing_edits_the_shared_text(
        self, backend: MemoryBackend, paper: PaperProject
    ) -> None:
        app = ForgeApp(backend, project=paper.name)
        async with app.run_test(size=SIZE) as pilot:
            editor = await open_code(app, pilot, paper.ops["test"])
            editor.area.move_cursor((1, 0))
            await pilot.press("#", "space")
            await pilot.pause()
            assert saved_code(paper) == TEST.replace("\ndef test", "\n# def test", 1)

    async def test_typing_on_before_its_own_echo_arrives_is_kept(
        self, backend: MemoryBackend, paper: PaperProject
    ) -> None:
        # The editor saves a first keystroke's text; more keystrokes land before the document's
        # own change notice is handled. That notice must not put the editor back to the saved
        # text (CI once lost " by Ada" of "# edited by Ada" that way, under load).
        app = ForgeApp(backend, project=paper.name)
        async with app.run_test(size=SIZE) as pilot:
            editor = await open_code(app, pilot, paper.ops["test"])
            area = editor.area
            area.insert("# edited", (0, 0))
            editor._local_edit(None)  # type: ignore[arg-type]  # its TextArea.Changed, handled
            area.insert(" by Ada", (0, 8))  # typed before the echo is handled
            await pilot.pause()
            await pilot.pause()
            assert area.text == "# edited by Ada" + TEST
            assert saved_code(paper) == "# edited by Ada" + TEST

    @pytest.mark.parametrize("handled_first", ["remote notice", "keystroke"])
    async def test_unsaved_typing_and_a_remote_edit_both_survive(
        self, backend: MemoryBackend, paper: PaperProject, handled_first: str
    ) -> None:
        # Ada has typed, but the editor has not handled her keystroke, when Bob's edit reaches
        # the document. Whichever the editor handles first, it must keep both: Bob's text must
        # not replace hers, and saving hers must not revert his.
        app = ForgeApp(backend, project=paper.name)
        async with app.run_test(size=SIZE) as pilot:
            editor = await open_code(app, pilot, paper.ops["test"])
            area = editor.area
            area.move_cursor((0, 0))
            area.insert("# Ada\n", (0, 0))
            server = ProjectDoc(paper.hub.room_doc(f"{paper.name}/main"))
            server.set_code(paper.ops["test"], TEST + "# Bob\n")
            if handled_first == "remote notice":
                editor.on_remote_text(None)  # type: ignore[arg-type]
            else:
                editor._local_edit(None)  # type: ignore[arg-type]
            await pilot.pause()
            await pilot.pause()
            assert saved_code(paper) == "# Ada\n" + TEST + "# Bob\n"
            assert area.text == saved_code(paper)
            assert area.cursor_location == (1, 0)  # still after her text

    async def test_remote_edits_keep_the_cursor(
        self, backend: MemoryBackend, paper: PaperProject
    ) -> None:
        app = ForgeApp(backend, project=paper.name)
        async with app.run_test(size=SIZE) as pilot:
            editor = await open_code(app, pilot, paper.ops["test"])
            editor.area.move_cursor((2, 4))  # on "return {}"
            server = ProjectDoc(paper.hub.room_doc(f"{paper.name}/main"))
            server.set_code(paper.ops["test"], "# remote header\n" + TEST)  # before the cursor
            await pilot.pause()
            assert editor.area.text == "# remote header\n" + TEST
            assert editor.area.cursor_location == (3, 4)
            server.set_code(paper.ops["test"], "# remote header\n" + TEST + "# tail\n")  # after
            await pilot.pause()
            assert editor.area.cursor_location == (3, 4)
            server.set_code(paper.ops["test"], "# remote header\nimport math\n" + TEST + "# tail\n")
            await pilot.pause()
            assert editor.area.cursor_location == (4, 4)  # a line inserted above: moved down

    async def test_interface_panel_and_diagram_follow_the_code(
        self, backend: MemoryBackend, paper: PaperProject
    ) -> None:
        app = ForgeApp(backend, project=paper.name)
        async with app.run_test(size=SIZE) as pilot:
            screen = app.screen
            assert isinstance(screen, ProjectScreen)
            await screen.open_now("pipeline", paper.pipeline)
            editor = await open_code(app, pilot, paper.ops["test"])
            panel = editor.query_one("#interface-body")
            assert "model: Model" in str(panel.render())
            editor.area.text = TEST.replace("model: Model)", "model: Model, labels: Tensor)")
            await pilot.pause()
            assert "labels: Tensor" in str(panel.render())
            await screen.open_now("pipeline", paper.pipeline)  # back to the diagram
            diagram = screen.query_one(GraphEditor).canvas.rendered.text()
            assert "labels" in diagram  # the new input port is on the Test box
            editor = await open_code(app, pilot, paper.ops["test"])
            editor.area.text = TEST.replace("def test(", "def test(((")
            await pilot.pause()
            assert "line 2" in str(panel.render())  # the syntax error, with its line


async def test_other_cursors_are_painted(backend: MemoryBackend, paper: PaperProject) -> None:
    app = ForgeApp(backend, project=paper.name)
    async with app.run_test(size=SIZE) as pilot:
        editor = await open_code(app, pilot, paper.ops["test"])
        other = paper.hub.link(f"{paper.name}/main")
        await other.start()
        other.presence.set_local_state(
            {
                "user": {"name": "Grace Hopper", "colour": 3},
                "cursor": {"entry": paper.ops["test"], "line": 1, "column": 4, "anchor": [1, 0]},
            }
        )
        await pilot.pause()
        marks = [h for h in editor.area._highlights[1] if h[2] == "forge.peer3"]
        assert marks == [(0, 4, "forge.peer3")]  # her selection: "def " on line 2
        assert "Grace Hopper at 2:5" in str(editor.query_one("#interface-body").render())
        await other.stop()
        await pilot.pause()
        assert not [h for h in editor.area._highlights[1] if h[2] == "forge.peer3"]


async def test_deleted_operation_becomes_read_only(
    backend: MemoryBackend, paper: PaperProject
) -> None:
    app = ForgeApp(backend, project=paper.name)
    async with app.run_test(size=SIZE) as pilot:
        editor = await open_code(app, pilot, paper.ops["test"])
        paper.view().remove(paper.ops["test"])
        await pilot.pause()
        assert editor.area.read_only
        assert "deleted" in str(editor.query_one("#interface-body").render())
