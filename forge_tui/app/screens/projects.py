"""The first screen: the server's projects, create one, open one."""

from __future__ import annotations

from typing import ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import Footer, Label, OptionList
from textual.widgets.option_list import Option

from forge_tui.app._backend import Backend, BackendError, check_project_name
from forge_tui.app._presence import person_label
from forge_tui.app.screens.modals import Prompt


class ProjectsScreen(Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("n", "new_project", "New project"),
        Binding("r", "reload", "Reload"),
        Binding("enter", "open_project", "Open", show=False),
    ]

    def __init__(self, backend: Backend) -> None:
        super().__init__()
        self.backend = backend
        self.names: list[str] = []

    def compose(self) -> ComposeResult:
        with Vertical(id="projects-box"):
            yield Label(self._title(), id="projects-title")
            yield OptionList(id="projects")
            yield Label("Loading…", id="projects-hint")
        yield Footer()

    def _title(self) -> str:
        who = person_label(self.backend.user, self.backend.display)
        return f"Forge · {self.backend.label} · {who}"

    def on_mount(self) -> None:
        self.action_reload()

    def action_reload(self) -> None:
        self.load()

    @work(exclusive=True, group="projects")
    async def load(self) -> None:
        hint = self.query_one("#projects-hint", Label)
        try:
            self.names = await self.backend.list_projects()
        except BackendError as exc:
            hint.update(str(exc))
            self.app.show_error(str(exc), refused=exc.refused)  # type: ignore[attr-defined]
            return
        await self.backend.identify()
        self.query_one("#projects-title", Label).update(self._title())
        options = self.query_one(OptionList)
        options.clear_options()
        options.add_options([Option(name, id=name) for name in self.names])
        hint.update(
            "Enter opens a project, n creates one."
            if self.names
            else "No projects yet: press n to create one."
        )
        options.focus()

    @on(OptionList.OptionSelected)
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        if event.option.id:
            self.app.open_project(event.option.id)  # type: ignore[attr-defined]

    def action_open_project(self) -> None:
        options = self.query_one(OptionList)
        if options.highlighted is not None and self.names:
            self.app.open_project(self.names[options.highlighted])  # type: ignore[attr-defined]

    def action_new_project(self) -> None:
        def validate(text: str) -> str | None:
            error = check_project_name(text.strip())
            if error is None and text.strip() in self.names:
                return f"{text.strip()!r} exists; open it from the list"
            return error

        self.app.push_screen(Prompt("New project name", "", validate), self._create)

    def _create(self, name: str | None) -> None:
        if name:
            self.create(name.strip())

    @work(exclusive=True, group="projects")
    async def create(self, name: str) -> None:
        try:
            await self.backend.create_project(name)
        except BackendError as exc:
            self.notify(str(exc), severity="error")
            return
        self.app.open_project(name)  # type: ignore[attr-defined]
