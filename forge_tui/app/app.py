"""The Forge Textual app: screens are pushed here; network work happens in workers."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import ClassVar

from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType
from textual.command import Provider
from textual.screen import Screen

from forge_tui.app._backend import Backend
from forge_tui.app._link import DocumentLink, LinkState
from forge_tui.app._palette import ProjectItems, screen_actions
from forge_tui.app._workspace import Workspace
from forge_tui.app.screens.info import ErrorScreen, HelpScreen
from forge_tui.app.screens.project import ProjectScreen
from forge_tui.app.screens.projects import ProjectsScreen
from forge_tui.app.widgets.code_editor import CodeEditor
from forge_tui.app.widgets.graph_editor import GraphEditor


class ForgeApp(App[int]):
    CSS_PATH = "forge.tcss"
    TITLE = "Forge"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f1", "help", "Help"),
        # The footer shows the palette's key at its right end already, and Quit is in F1 and
        # in the palette: the footer's room at 80 columns goes to each screen's own keys.
        Binding("ctrl+p", "command_palette", "Commands", show=False),
        Binding("ctrl+q", "quit", "Quit", show=False),
    ]
    COMMANDS: ClassVar[set[type[Provider] | Callable[[], type[Provider]]]] = {
        *App.COMMANDS,
        ProjectItems,
    }

    def __init__(
        self,
        backend: Backend,
        project: str | None = None,
        branch: str = "main",
        *,
        start_pipeline: str | None = None,
    ) -> None:
        super().__init__()
        self.backend = backend
        self.start_project = project
        self.start_pipeline = start_pipeline
        self.branch = branch
        self.links: list[DocumentLink] = []
        self.workspace: Workspace | None = None

    def on_mount(self) -> None:
        if self.start_project:
            self.open_project(self.start_project)
        else:
            self.push_screen(ProjectsScreen(self.backend))

    async def on_unmount(self) -> None:
        for link in self.links:
            await link.stop()

    # ----- navigation ---------------------------------------------------------------------

    def open_project(self, name: str) -> None:
        self.run_worker(self._open_project(name), exclusive=True, group="open")

    async def _open_project(self, name: str) -> None:
        await self._leave_project()
        await self.backend.identify()  # others see one's account: show it here too
        link = self.backend.link(name, self.branch)
        self.links.append(link)
        await link.start()  # returns at once; syncing continues in the background
        link.watch(lambda state, detail: self._link_state(link, state))
        self.workspace = Workspace(link, name, self.backend.user, self.backend.display)
        pipeline, self.start_pipeline = self.start_pipeline, None  # only on the first open
        await self.push_screen(ProjectScreen(self.workspace, open_pipeline=pipeline))

    async def _leave_project(self) -> None:
        """Close the open project's screens and leave its room: opening another project or
        branch must not leave one's presence behind there (a ghost others keep seeing)."""
        while len(self.screen_stack) > 1 and any(
            isinstance(screen, ProjectScreen) for screen in self.screen_stack
        ):
            await self.pop_screen()
        links, self.links = self.links, []
        for link in links:
            await link.stop()
        self.workspace = None

    def _link_state(self, link: DocumentLink, state: LinkState) -> None:
        if state is LinkState.OFFLINE and getattr(link, "refused", False):
            self.call_later(self.show_error, link.detail, True)

    def action_projects(self) -> None:
        self.push_screen(ProjectsScreen(self.backend))

    def show_error(self, message: str, refused: bool = False) -> None:
        def done(choice: str | None) -> None:
            if choice == "retry" and isinstance(self.screen, ProjectsScreen):
                self.screen.action_reload()

        if not isinstance(self.screen, ErrorScreen):
            self.push_screen(ErrorScreen(message, refused), done)

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.key_sections()))

    def key_sections(self) -> list[tuple[str, Iterable[BindingType]]]:
        """The help screen's sections: each screen's keys under its title."""
        # Loaded on first use, as when they are first opened: startup stays quick.
        from forge_tui.app.screens.compare import CompareScreen
        from forge_tui.app.screens.executions import ExecutionsScreen
        from forge_tui.app.screens.history import HistoryScreen
        from forge_tui.app.screens.monitor import MonitorScreen
        from forge_tui.app.screens.sweeps import SweepsScreen

        return [
            ("Everywhere", self.BINDINGS),
            ("Projects", ProjectsScreen.BINDINGS),
            ("Project (sidebar)", ProjectScreen.BINDINGS),
            ("Diagram editor", GraphEditor.BINDINGS),
            ("Code editor", CodeEditor.BINDINGS),
            ("Execution monitor", MonitorScreen.BINDINGS),
            ("Executions list", ExecutionsScreen.BINDINGS),
            ("Compare", CompareScreen.BINDINGS),
            ("History", HistoryScreen.BINDINGS),
            ("Sweeps", SweepsScreen.BINDINGS),
        ]

    # ----- command palette: the project's items (ProjectItems), every action once -------

    def get_system_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        yield from screen_actions(self, screen)
