"""The history view: commit graph with branches and tags, a commit's semantic diff, and the
history actions (branch from a commit, switch branch, merge, tag, revert) through the HTTP API.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Label, OptionList, Static
from textual.widgets.option_list import Option

from forge_tui.app.api import ApiError, ForgeApi
from forge_tui.app.screens.modals import Confirm, FuzzyPicker, Prompt, if_chosen

_LIMIT = 200


def commit_graph(commits: Sequence[Mapping[str, Any]]) -> list[str]:
    """``git log --graph``-like lane prefixes for commits ordered newest first.

    Each commit sits in a lane (``*``); other lanes show ``│``; a merge opens a lane for its
    second parent, and lanes waiting for the same commit join (``┘``) where it appears.
    """
    lanes: list[str | None] = []
    rows: list[str] = []
    for commit in commits:
        cid = commit["id"]
        mine = [i for i, lane in enumerate(lanes) if lane == cid]
        if mine:
            col = mine[0]
        elif None in lanes:
            col = lanes.index(None)
        else:
            lanes.append(None)
            col = len(lanes) - 1
        cells = []
        for i, lane in enumerate(lanes):
            if i == col:
                cells.append("*")
            elif i in mine:
                cells.append("┘")
            else:
                cells.append("│" if lane is not None else " ")
        for i in mine[1:]:
            lanes[i] = None
        parents = list(commit.get("parents") or [])
        lanes[col] = parents[0] if parents else None
        for parent in parents[1:]:
            if parent not in lanes:
                if None in lanes:
                    lanes[lanes.index(None)] = parent
                else:
                    lanes.append(parent)
                if len(cells) < len(lanes):
                    cells.append("┐")
        while lanes and lanes[-1] is None:
            lanes.pop()
        rows.append(" ".join(cells).rstrip())
    return rows


def merge_logs(logs: Mapping[str, Sequence[Mapping[str, Any]]]) -> list[dict[str, Any]]:
    """Commits of several branches' logs, each once, children before parents, newest first.

    Times alone cannot order commits made within the same second, so the order is topological
    and times (then each log's own order) only break ties.
    """
    commits: dict[str, dict[str, Any]] = {}
    rank: dict[str, int] = {}
    for log in logs.values():
        for position, commit in enumerate(log):
            commits.setdefault(commit["id"], dict(commit))
            rank[commit["id"]] = min(rank.get(commit["id"], position), position)
    children = dict.fromkeys(commits, 0)
    for commit in commits.values():
        for parent in commit.get("parents") or []:
            if parent in children:
                children[parent] += 1
    ready = [cid for cid, count in children.items() if count == 0]
    ordered: list[dict[str, Any]] = []
    while ready:
        ready.sort(key=lambda cid: (commits[cid]["created"], -rank[cid]))
        commit = commits[ready.pop()]
        ordered.append(commit)
        for parent in commit.get("parents") or []:
            if parent in children:
                children[parent] -= 1
                if children[parent] == 0:
                    ready.append(parent)
    return ordered


def change_text(commit: Mapping[str, Any], changes: Sequence[Mapping[str, Any]]) -> Text:
    """A commit's header and its semantic changes (code changes with their unified diff)."""
    text = Text()
    text.append(f"commit  {commit['id']}\n", style="bold")
    parents = commit.get("parents") or []
    if len(parents) > 1:
        text.append(f"merge   {' '.join(p[:10] for p in parents)}\n")
    text.append(f"branch  {commit.get('branch')}\n")
    text.append(f"authors {', '.join(commit.get('authors') or []) or '-'}\n")
    text.append(f"date    {str(commit.get('created', '')).replace('T', ' ')[:19]}\n")
    if commit.get("tags"):
        text.append(f"tags    {', '.join(commit['tags'])}\n", style="yellow")
    text.append(f"\n    {commit.get('message', '')}\n\n")
    if not changes:
        text.append("  (no changes)\n", style="dim")
    for change in changes:
        text.append(f"  {change.get('text', '')}\n")
        for line in str(change.get("detail") or "").splitlines()[2:]:
            style = "green" if line.startswith("+") else "red" if line.startswith("-") else "dim"
            text.append(f"      {line}\n", style=style)
    return text


class HistoryScreen(Screen[None]):
    """The project's commits across branches; actions act on the highlighted commit."""

    DEFAULT_CSS = """
    HistoryScreen > #history-top { height: 1; background: $primary-background; }
    HistoryScreen #history-body { height: 1fr; }
    HistoryScreen #commits { width: 3fr; }
    HistoryScreen #commit-detail { width: 2fr; border-left: solid $primary; padding: 0 1; }
    HistoryScreen #history-message { height: auto; padding: 0 1; color: $warning; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("b", "branch", "Branch"),
        Binding("s", "switch", "Switch"),
        Binding("m", "merge", "Merge"),
        Binding("t", "tag", "Tag"),
        Binding("v", "revert", "Revert"),
        Binding("r", "reload", "Reload", show=False),
        Binding("escape,q", "close", "Back"),
    ]

    def __init__(self, api: ForgeApi, branch: str = "main") -> None:
        super().__init__()
        self.api = api
        self.branch = branch
        self.commits: list[dict[str, Any]] = []
        self.branches: list[dict[str, Any]] = []
        self.tags: list[dict[str, Any]] = []

    def compose(self) -> ComposeResult:
        yield Label(f" {self.api.project} · history (on {self.branch})", id="history-top")
        with Horizontal(id="history-body"):
            yield OptionList(id="commits")
            with VerticalScroll(id="commit-detail"):
                yield Static("", id="commit-text")
        yield Static("", id="history-message")
        yield Footer()

    def on_mount(self) -> None:
        self.action_reload()
        self.query_one(OptionList).focus()

    def say(self, message: str, error: bool = False) -> None:
        self.query_one("#history-message", Static).update(
            Text(message, style="red" if error else "")
        )

    # ----- loading ------------------------------------------------------------------------

    def action_reload(self) -> None:
        self._load()

    @work(group="history-load", exclusive=True)
    async def _load(self) -> None:
        try:
            self.branches = await self.api.branches()
            self.tags = await self.api.tags()
            logs = {
                b["name"]: await self.api.log(b["name"], _LIMIT) for b in self.branches if b["head"]
            }
        except ApiError as exc:
            self.say(exc.message, error=True)
            return
        self.commits = merge_logs(logs)
        self._fill()

    def _fill(self) -> None:
        heads: dict[str, list[str]] = {}
        for branch in self.branches:
            if branch["head"]:
                heads.setdefault(branch["head"], []).append(branch["name"])
        tags: dict[str, list[str]] = {}
        for tag in self.tags:
            tags.setdefault(tag["commit"], []).append(tag["name"])
        listing = self.query_one(OptionList)
        highlighted = listing.highlighted
        listing.clear_options()
        for prefix, commit in zip(commit_graph(self.commits), self.commits, strict=True):
            line = Text()
            line.append(f"{prefix:<6} ", style="blue")
            line.append(f"{commit['short']} ", style="yellow")
            for name in heads.get(commit["id"], []):
                style = "bold green" if name == self.branch else "green"
                line.append(f"({name}) ", style=style)
            for name in tags.get(commit["id"], []):
                line.append(f"<{name}> ", style="magenta")
            line.append(commit["message"])
            authors = ", ".join(commit.get("authors") or []) or "-"
            line.append(f"  {authors} {commit['created'].replace('T', ' ')[5:16]}", style="dim")
            listing.add_option(Option(line, id=commit["id"]))
        if self.commits:
            listing.highlighted = min(highlighted or 0, len(self.commits) - 1)
        else:
            self.query_one("#commit-text", Static).update(
                "No commits yet: edits are committed automatically after a few seconds."
            )

    @on(OptionList.OptionHighlighted)
    def _highlighted(self, event: OptionList.OptionHighlighted) -> None:
        if event.option.id:
            self._show(event.option.id)

    @work(group="history-show", exclusive=True)
    async def _show(self, commit_id: str) -> None:
        try:
            answer = await self.api.commit(commit_id)
        except ApiError as exc:
            self.say(exc.message, error=True)
            return
        self.query_one("#commit-text", Static).update(
            change_text(answer["commit"], answer.get("changes") or [])
        )

    def current(self) -> dict[str, Any] | None:
        index = self.query_one(OptionList).highlighted
        if index is None or index >= len(self.commits):
            return None
        return self.commits[index]

    # ----- actions ------------------------------------------------------------------------

    def _act(self, what: str, call: Any) -> None:
        async def go() -> None:
            try:
                result = await call()
            except ApiError as exc:
                self.say(f"{what} refused: {exc.message}", error=True)
                self.notify(exc.message, title=f"{what} refused", severity="error")
                return
            self.say(f"{what}: {result}")
            self._load()

        self.run_worker(go(), group="history-action")

    def action_branch(self) -> None:
        commit = self.current()
        if commit is None:
            return

        def create(name: str) -> None:
            async def call() -> str:
                branch = await self.api.create_branch(name.strip(), commit["id"])
                return f"created branch {branch['name']} from {commit['short']}"

            self._act("branch", call)

        self.app.push_screen(Prompt(f"New branch from {commit['short']}", ""), if_chosen(create))

    def action_tag(self) -> None:
        commit = self.current()
        if commit is None:
            return

        def create(name: str) -> None:
            async def call() -> str:
                tag = await self.api.tag(name.strip(), commit["id"])
                return f"tagged {commit['short']} as {tag['name']}"

            self._act("tag", call)

        self.app.push_screen(Prompt(f"Tag {commit['short']} as", ""), if_chosen(create))

    def action_revert(self) -> None:
        """Show what reverting the branch to the highlighted commit undoes, then ask."""
        commit = self.current()
        if commit is None:
            return
        self.run_worker(self._ask_revert(commit), group="history-action")

    async def _ask_revert(self, commit: Mapping[str, Any]) -> None:
        branch = self.branch
        try:
            diff = await self.api.diff(branch, commit["id"])
        except ApiError as exc:
            self.say(f"revert refused: {exc.message}", error=True)
            return
        changes = diff.get("changes") or []
        if not changes:
            self.say(f"{branch} already has {commit['short']}'s content; nothing to revert")
            return
        body = Text(f"These changes will be made to {branch}, as a new commit (nothing is "
                    "rewritten; revert that commit to undo this):\n\n")
        for change in changes:
            body.append(f"  {change.get('text', '')}\n")
        authors = ", ".join(commit.get("authors") or [])
        if authors:
            body.append(f"\n{commit['short']} was made by {authors}.\n", style="dim")

        async def call() -> str:
            made = await self.api.revert(commit["id"], branch)
            return f"{branch} now has {commit['short']}'s content ({made['short']})"

        self.app.push_screen(
            Confirm(f"Revert {branch} to {commit['short']}?", body),
            if_chosen(lambda _: self._act("revert", call)),
        )

    def action_merge(self) -> None:
        """Ask for the branch to merge, then the branch to merge it into, then confirm."""
        names = [b["name"] for b in self.branches]
        if len(names) < 2:
            self.say("No other branch to merge: b starts one from the highlighted commit")
            return
        sources = [(n, n) for n in names if n != self.branch] + [(self.branch, self.branch)]

        def pick_target(source: str) -> None:
            targets = sorted((n for n in names if n != source), key=lambda n: n != self.branch)
            self.app.push_screen(FuzzyPicker(f"Merge {source} into", [(n, n) for n in targets]),
                                 if_chosen(lambda target: confirm(source, target)))

        def confirm(source: str, target: str) -> None:
            async def call() -> str:
                made = await self.api.merge(source, target)
                return f"merged {source} into {target} ({made['short']})"

            note = Text(f"{target} gets {source}'s changes as a merge commit; {source} stays "
                        "as it is. Where both branches changed the same value, one side is "
                        "kept: review the merge commit in the history afterwards.")
            self.app.push_screen(Confirm(f"Merge {source} into {target}?", note),
                                 if_chosen(lambda _: self._act("merge", call)))

        self.app.push_screen(FuzzyPicker("Merge which branch?", sources), if_chosen(pick_target))

    def action_switch(self) -> None:
        names = [(b["name"], b["name"]) for b in self.branches]
        if not names:
            self.say("No branches yet")
            return
        self.app.push_screen(FuzzyPicker("Switch to branch", names), if_chosen(self.switch_to))

    def switch_to(self, branch: str) -> None:
        """Edit another branch: the app reopens the project on that branch's room."""
        app: Any = self.app
        self.dismiss(None)
        app.branch = branch
        app.open_project(self.api.project)

    def action_close(self) -> None:
        self.dismiss(None)
