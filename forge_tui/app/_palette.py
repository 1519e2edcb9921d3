"""The command palette's content: the project's items by name, and every action of the screen.

:class:`ProjectItems` lists pipelines, operations, architectures, custom layers, executions and
branches ("Pipeline: cifar10", …); choosing one opens it from wherever the palette was opened.
:func:`screen_actions` turns the keys of the focused widget, its screen and the app into
commands, each action once, and adds the few Textual built-ins that no key already covers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import partial
from typing import Any

from textual.app import App, SystemCommand
from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.screen import Screen

__all__ = ["ProjectItems", "screen_actions"]

BUILT_INS_KEPT = {"Theme", "Maximize", "Minimize", "Screenshot"}
"""Textual's own palette commands worth having ("Quit" and "Keys" are keys of ours already)."""
BRANCHES_TIMEOUT_S = 2.0


@dataclass(frozen=True)
class Item:
    title: str
    help: str
    run: Callable[[], Awaitable[None]]


def _forge_binding(node: object, action: str, description: str) -> bool:
    """Whether a key of ``node`` is one of Forge's (Textual's widget keys, such as a tree's
    "Toggle", are not actions of the application)."""
    for cls in type(node).__mro__:
        if not cls.__module__.startswith("forge_tui"):
            continue
        for binding in vars(cls).get("BINDINGS", ()):
            if getattr(binding, "action", None) == action and binding.description == description:
                return True
    return False


def screen_actions(app: App[Any], screen: Screen[Any]) -> Iterator[SystemCommand]:
    """Every action reachable by a key where the palette opened, once each, then the built-ins
    no key covers."""
    seen: set[str] = set()
    for active in screen.active_bindings.values():
        binding = active.binding
        name = binding.description
        if not name or binding.action.endswith("command_palette") or name.lower() in seen:
            continue
        if not _forge_binding(active.node, binding.action, name):
            continue
        seen.add(name.lower())
        yield SystemCommand(
            name,
            f"{name} ({app.get_key_display(binding)})",
            partial(app.run_action, binding.action, active.node),
        )
    for command in App.get_system_commands(app, screen):
        if command.title in BUILT_INS_KEPT and command.title.lower() not in seen:
            seen.add(command.title.lower())
            yield command


class ProjectItems(Provider):
    """Project items by name: "Pipeline: cifar10", "Execution: …", "Branch: exp", …"""

    async def startup(self) -> None:
        self.items = list(self._entries())
        self.items.extend(await self._branches())

    def _entries(self) -> Iterable[Item]:
        app: Any = self.app
        workspace = getattr(app, "workspace", None)
        if workspace is None:
            return
        project = workspace.snapshot()
        kinds = (
            ("pipelines", "Pipeline", "pipeline", "open its diagram"),
            ("operations", "Operation", "operation", "open its code"),
            ("architectures", "Architecture", "architecture", "open its diagram"),
            ("layers", "Custom layer", "layer", "open its code"),
        )
        for key, label, kind, action in kinds:
            for entry_id, entry in sorted(project[key].items(), key=lambda kv: kv[1]["name"]):
                yield Item(f"{label}: {entry['name']}", action, partial(self._open, kind, entry_id))
        pipelines = project["pipelines"]
        executions = sorted(
            project["executions"].items(), key=lambda kv: kv[1]["created"], reverse=True
        )
        for xid, summary in executions:
            pipeline = pipelines.get(summary["pipeline"])
            name = pipeline["name"] if pipeline else summary["pipeline"]
            when = summary["created"].replace("T", " ")[:16]
            yield Item(
                f"Execution: {name} {when} {summary['status']} {xid}",
                "open its monitor",
                partial(self._open, "execution", xid),
            )

    async def _branches(self) -> list[Item]:
        from forge_tui.app.api import ApiError, api_for

        app: Any = self.app
        workspace = getattr(app, "workspace", None)
        api = api_for(app.backend, workspace.project_name) if workspace is not None else None
        if api is None:
            return []
        try:
            branches = await asyncio.wait_for(api.branches(), BRANCHES_TIMEOUT_S)
        except (ApiError, TimeoutError):
            return []  # the palette still lists everything else
        current = getattr(app, "branch", "main")
        return [
            Item(
                f"Branch: {branch['name']}",
                "the branch you are on" if branch["name"] == current else "switch to it",
                partial(self._switch, str(branch["name"])),
            )
            for branch in branches
        ]

    async def _project_screen(self) -> Any:
        """The project screen, closing what is open above it (a monitor, a list)."""
        from forge_tui.app.screens.project import ProjectScreen

        app = self.app
        if not any(isinstance(screen, ProjectScreen) for screen in app.screen_stack):
            return None  # no project open (the projects list)
        while not isinstance(app.screen, ProjectScreen):
            await app.pop_screen()
        return app.screen

    async def _open(self, kind: str, entry_id: str) -> None:
        screen = await self._project_screen()
        if screen is not None:
            await screen.open_now(kind, entry_id)

    async def _switch(self, branch: str) -> None:
        app: Any = self.app
        workspace = getattr(app, "workspace", None)
        if workspace is None or branch == app.branch:
            return
        await self._project_screen()
        app.branch = branch
        app.open_project(workspace.project_name)

    async def discover(self) -> Hits:
        for item in self.items:
            yield DiscoveryHit(item.title, item.run, help=item.help)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for item in self.items:
            score = matcher.match(item.title)
            if score > 0:
                yield Hit(score, matcher.highlight(item.title), item.run, help=item.help)
