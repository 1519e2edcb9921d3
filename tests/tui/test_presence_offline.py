"""Presence marks, the connection indicator, and offline edits merged on reconnect."""

from __future__ import annotations

from forge_tui.app import ForgeApp, LinkState, MemoryBackend
from forge_tui.app._link import MemoryLink
from forge_tui.app._presence import initials, read_peers
from forge_tui.app.screens.project import ProjectScreen
from forge_tui.app.widgets.graph_editor import GraphEditor
from forge_tui.app.widgets.status_bar import ConnectionState

from .conftest import PaperProject

SIZE = (100, 40)


def test_initials_and_peers() -> None:
    assert initials("Ada Lovelace") == "AL"
    assert initials("bob") == "BO"
    assert initials("") == "?"
    states = {
        1: {"user": {"name": "me", "colour": 1}},
        2: {
            "user": {"name": "Zed", "colour": 3},
            "view": {"kind": "pipeline", "id": "p"},
            "selection": "n1",
        },
        3: {"junk": True},
    }
    peers = read_peers(states, own_id=1)
    assert [(p.name, p.view, p.selection) for p in peers] == [("Zed", ("pipeline", "p"), "n1")]


async def test_selection_marks_and_offline_merge(
    backend: MemoryBackend, paper: PaperProject
) -> None:
    app = ForgeApp(backend, project=paper.name)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, ProjectScreen)
        await screen.open_now("pipeline", paper.pipeline)
        editor = screen.query_one(GraphEditor)
        # another user selects Train: their initials appear on that box
        other = paper.hub.link(f"{paper.name}/main")
        await other.start()
        other.presence.set_local_state(
            {
                "user": {"name": "Grace Hopper", "colour": 2},
                "view": {"kind": "pipeline", "id": paper.pipeline},
                "selection": paper.nodes["train"],
            }
        )
        await pilot.pause()
        rendered = editor.canvas.rendered
        train = rendered.boxes[paper.nodes["train"]]
        title_row = "".join(rendered.chars[train.y + 1][train.x : train.right])
        assert "GH" in title_row
        assert "Grace Hopper" in str(screen.query_one("#presence").render())
        # the network drops: the indicator says so, and edits keep working
        link = app.workspace.link  # type: ignore[union-attr]
        assert isinstance(link, MemoryLink)
        link.go_offline()
        await pilot.pause()
        assert screen.query_one(ConnectionState).state is LinkState.RECONNECTING
        assert "reconnecting" in str(screen.query_one(ConnectionState).render())
        editor.selected = paper.nodes["test"]
        await pilot.press("d")
        await pilot.pause()
        room = paper.view().to_plain()["pipelines"][paper.pipeline]["nodes"]
        assert paper.nodes["test"] in room  # not sent while offline
        # meanwhile someone else's edit reaches the room
        paper.view().rename_node(paper.pipeline, paper.nodes["train"], "Fit")
        await pilot.pause()
        link.go_online()
        await pilot.pause()
        room = paper.view().to_plain()["pipelines"][paper.pipeline]["nodes"]
        assert paper.nodes["test"] not in room  # the offline delete arrived
        mine = app.workspace.snapshot()["pipelines"][paper.pipeline]["nodes"]  # type: ignore[union-attr]
        assert mine[paper.nodes["train"]]["name"] == "Fit"  # and the other edit merged in
        assert screen.query_one(ConnectionState).state is LinkState.CONNECTED
        await other.stop()
