"""The history view against a real relay: commit graph, semantic diff, branch, tag, revert,
merge and switch through the HTTP API, with refusals shown in the UI."""

from __future__ import annotations

from typing import Any

from textual.containers import VerticalScroll
from textual.widgets import Input, Label, OptionList

from forge_ops.schema import ProjectDoc
from forge_server.relay.app import ROOMS
from forge_server.relay.server import RelayServer
from forge_tui.app import ForgeApp, ServerBackend
from forge_tui.app.api import ForgeApi
from forge_tui.app.screens.history import HistoryScreen, commit_graph, merge_logs
from forge_tui.app.screens.modals import Confirm, FuzzyPicker, Prompt
from forge_tui.app.screens.project import ProjectScreen

from .conftest import shown
from .test_monitor import SIZE, new_project, open_project, server, until

__all__ = ["server"]  # the module-scoped relay fixture of test_monitor


async def answer(pilot: Any, text: str) -> None:
    """Fill the open prompt or picker and press enter."""
    field = await shown(pilot, Prompt | FuzzyPicker, "Input")
    assert isinstance(field, Input)
    field.value = text
    await pilot.pause()
    await pilot.press("enter")
    await pilot.pause()


async def operations(server: RelayServer, project: str, branch: str = "main") -> set[str]:
    room = await server.app[ROOMS].get(f"{project}/{branch}")
    return {op["name"] for op in ProjectDoc(room.doc).to_plain()["operations"].values()}


def message(screen: HistoryScreen) -> str:
    return str(screen.query_one("#history-message").render())


class TestHistoryView:
    async def test_branch_tag_revert_merge_switch(self, server: RelayServer) -> None:
        name, _ids = await new_project(server)
        api = ForgeApi(server.url, None, name)
        first = await api.commit_now(message="start")
        async with server.app[ROOMS].hold(f"{name}/main") as room:
            with room.edit("Bob") as doc:
                ProjectDoc(doc).add_operation(
                    "Extra", "def extra(x: int, /) -> int:\n    return x\n"
                )
        second = await api.commit_now(message="add Extra")
        assert second["id"] != first["id"]

        app = ForgeApp(ServerBackend(server.url, None, "Ada Lovelace"), name)
        async with app.run_test(size=SIZE) as pilot:
            await open_project(pilot, app)
            await pilot.press("ctrl+g")
            await until(pilot, lambda: isinstance(app.screen, HistoryScreen))
            history = app.screen
            assert isinstance(history, HistoryScreen)
            await until(pilot, lambda: len(history.commits) == 2)
            listing = history.query_one(OptionList)
            assert "(main)" in str(listing.get_option_at_index(0).prompt)
            # the newest commit's semantic diff
            await until(pilot, lambda: "Extra" in str(history.query_one("#commit-text").render()))

            # branch "exp" from the first commit, tag it, then a refused tag
            listing.highlighted = 1
            await pilot.press("b")
            await answer(pilot, "exp")
            await until(pilot, lambda: "created branch exp" in message(history))
            branches = {b["name"]: b for b in await api.branches()}
            assert branches["exp"]["from"] == first["id"]
            assert await operations(server, name, "exp") == {"Emit", "After", "Boom", "Picture"}
            await until(pilot, lambda: any(b["name"] == "exp" for b in history.branches))
            listing.highlighted = 1
            await pilot.press("t")
            await answer(pilot, "v1")
            await until(pilot, lambda: "tagged" in message(history))
            assert {t["name"]: t["commit"] for t in await api.tags()}["v1"] == first["id"]
            await until(
                pilot,
                lambda: "<v1>" in str(listing.get_option_at_index(len(history.commits) - 1).prompt),
            )
            listing.highlighted = 0  # v1 names another commit: refused, and said so
            await pilot.press("t")
            await answer(pilot, "v1")
            await until(pilot, lambda: "tag refused" in message(history))
            assert "already names commit" in message(history)

            # revert main to the first commit's content: first a preview of what it undoes,
            # and nothing happens until it is confirmed; then Extra is gone, as a new commit
            listing.highlighted = len(history.commits) - 1
            await pilot.press("v")
            await until(pilot, lambda: isinstance(app.screen, Confirm))
            preview = str(app.screen.query_one("#confirm-body").render())
            assert "These changes will be made to main" in preview and "Extra" in preview
            await pilot.press("n")
            await until(pilot, lambda: app.screen is history)
            assert "Extra" in await operations(server, name)
            await pilot.press("v")
            await until(pilot, lambda: isinstance(app.screen, Confirm))
            await pilot.press("y")
            await until(pilot, lambda: "now has" in message(history))
            assert "Extra" not in await operations(server, name)
            log = await api.log("main")
            assert len(log) == 3 and log[1]["id"] == second["id"]

            # work on exp, merge it into main: a merge commit with two parents
            async with server.app[ROOMS].hold(f"{name}/exp") as room:
                with room.edit("Bob") as doc:
                    ProjectDoc(doc).add_operation(
                        "OnExp", "def on_exp(x: int, /) -> int:\n    return x\n"
                    )
            await pilot.press("m")
            await answer(pilot, "exp")  # the source
            await answer(pilot, "main")  # the target
            await until(pilot, lambda: isinstance(app.screen, Confirm))
            assert "Merge exp into main?" in str(app.screen.query_one(VerticalScroll).border_title)
            await pilot.press("enter")
            await until(pilot, lambda: "merged exp into main" in message(history))
            assert "OnExp" in await operations(server, name)
            head = (await api.log("main"))[0]
            assert len(head["parents"]) == 2
            await until(pilot, lambda: any(len(c["parents"]) == 2 for c in history.commits))

            # switch to exp: the project reopens on that branch's room
            await pilot.press("s")
            await answer(pilot, "exp")
            await until(
                pilot,
                lambda: (
                    isinstance(app.screen, ProjectScreen)
                    and app.branch == "exp"
                    and app.workspace is not None
                    and app.workspace.project.find("operations", "OnExp") is not None
                ),
            )
            # the header says which branch is being edited
            assert "· exp" in str(app.screen.query_one("#project-name", Label).render())


class TestCommitGraph:
    def test_linear_history_is_one_lane(self) -> None:
        commits = [
            {"id": "c", "parents": ["b"]},
            {"id": "b", "parents": ["a"]},
            {"id": "a", "parents": []},
        ]
        assert commit_graph(commits) == ["*", "*", "*"]

    def test_a_merge_opens_and_joins_a_lane(self) -> None:
        commits = [
            {"id": "m", "parents": ["x", "y"]},  # merge of y (branch) into x (main)
            {"id": "y", "parents": ["a"]},
            {"id": "x", "parents": ["a"]},
            {"id": "a", "parents": []},
        ]
        rows = commit_graph(commits)
        assert rows[0] == "* ┐"
        assert rows[1] == "│ *"
        assert rows[2] == "* │"
        assert rows[3] == "* ┘"

    def test_merge_logs_dedupes_and_orders_newest_first(self) -> None:
        a = {"id": "a", "created": "2026-01-01T00:00:00"}
        b = {"id": "b", "created": "2026-01-02T00:00:00"}
        assert [c["id"] for c in merge_logs({"main": [b, a], "exp": [a]})] == ["b", "a"]
        # same second: parents still come after their children
        child = {"id": "0", "created": "2026-01-01T00:00:00", "parents": ["z"]}
        parent = {"id": "z", "created": "2026-01-01T00:00:00", "parents": []}
        assert [c["id"] for c in merge_logs({"main": [child, parent]})] == ["0", "z"]
