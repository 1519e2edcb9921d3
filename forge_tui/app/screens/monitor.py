"""The execution monitor: the job graph coloured by status, live from the execution document.

The graph is drawn by the same renderer as the editor (status by colour, border style and
glyph; elapsed time in each box). Selecting a job shows its code on the left and its output on
the right (plots, console, traceback). Restart and cancel go through the HTTP API; the document
tells the monitor what happened.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, ClassVar

from rich.text import Text
from textual import events, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Footer, Label, Static, TextArea

from forge_ops.schema import Execution, ExecutionDoc
from forge_tui.app._attempts_view import attempts_text
from forge_tui.app._execution_data import borrowed_output, load_any_execution
from forge_tui.app._live_execution import LiveExecution
from forge_tui.app.api import ApiError, ForgeApi, api_for
from forge_tui.app.bindings import MOVE_BINDINGS
from forge_tui.app.execution_view import (
    artifact_text,
    execution_spec,
    followed_job,
    job_names,
    status_signature,
)
from forge_tui.app.screens.modals import FuzzyPicker, Prompt, TextScreen, if_chosen
from forge_tui.app.screens.run_dialog import restart_note
from forge_tui.app.widgets.console_view import ConsoleView
from forge_tui.app.widgets.graph_canvas import GraphCanvas
from forge_tui.app.widgets.job_output import (
    Borrowed,
    JobOutput,
    elapsed_seconds,
    format_elapsed,
    job_summary,
    status_text,
)
from forge_tui.app.widgets.pane_bar import PaneBar
from forge_tui.app.widgets.status_bar import ConnectionState
from forge_tui.render import GraphSpec, RenderOptions, nearest
from forge_tui.render import render_graph as render

if TYPE_CHECKING:
    from forge_tui.app._link import DocumentLink, LinkState


class ExecutionChanged(Message):
    """The execution document changed; a flood of updates collapses into one redraw."""

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, ExecutionChanged)


PANES = (("console", "Console"), ("plot", "Plot"), ("code", "Code"), ("outputs", "Outputs"))
"""The panes of the selected job, in the order of their number keys."""
SIDE_BY_SIDE = (120, 32)
"""From this many columns and rows the code sits beside the output (plots over the console);
below, one pane at a time behind the pane bar."""
MESSAGE_TTL_S = 10.0
"""A status line goes after this long, or sooner when the run it speaks of moves on."""


class MonitorScreen(Screen[None]):
    """One execution, live. The link is started by :func:`open_monitor` and stopped on close."""

    DEFAULT_CSS = """
    MonitorScreen > #monitor-top { height: 1; background: $primary-background; }
    MonitorScreen #monitor-title { width: 1fr; }
    MonitorScreen GraphCanvas { height: 2fr; min-height: 6; }
    MonitorScreen #monitor-lower { height: 3fr; }
    MonitorScreen #job-code { width: 1fr; }
    MonitorScreen JobOutput { width: 1fr; }
    MonitorScreen #monitor-message { height: auto; max-height: 2; padding: 0 1; color: $warning; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        *MOVE_BINDINGS,
        Binding("ctrl+t", "restart_with_options", "Restart with options…", show=False),
        Binding("A", "attempts", "Earlier attempts", show=False),
        Binding("f", "toggle_follow", "Follow"),
        Binding("slash", "search", "Search"),
        Binding("R", "restart_job", "Restart"),
        Binding("c", "cancel_job", "Cancel"),
        Binding("C", "cancel_execution", "Cancel run", show=False),
        Binding("a", "artifact", "Artifact", show=False),
        *(
            Binding(str(number), f"pane('{name}')", f"Show {label.lower()}", show=False)
            for number, (name, label) in enumerate(PANES, 1)
        ),
        Binding("n", "next_match(1)", "Next match", show=False),
        Binding("N", "next_match(-1)", "Previous match", show=False),
        Binding("escape", "back", "Back"),
        Binding("q", "close", "Close monitor", show=False),
    ]

    def __init__(
        self,
        link: DocumentLink,
        project: str,
        execution_id: str,
        api: ForgeApi | None = None,
    ) -> None:
        super().__init__()
        self.link = link
        self.project = project
        self.execution_id = execution_id
        self.api = api
        self.execution = ExecutionDoc(link.doc)
        self.live = LiveExecution(self.execution)
        self.plain: Execution | None = None
        self.selected: str | None = None
        self.follow_jobs = True
        """Follow mode also selects the running job (moving the selection turns it off)."""
        self.tabbed = True
        """One pane at a time (small screens) rather than code beside output."""
        self.pane = "console"
        self.options = RenderOptions()
        self.sources: dict[str, Execution | None] = {}
        """Executions that cached jobs took their results from (None while loading)."""
        self._said: tuple[tuple[str, ...], float] | None = None
        self._shown_title: Text | None = None
        self._shown_spec: GraphSpec | None = None
        self._subscription: Any = None
        self._unwatch: Any = None

    def compose(self) -> ComposeResult:
        with Horizontal(id="monitor-top"):
            yield Label("", id="monitor-title")
            yield ConnectionState(id="monitor-connection")
        with Vertical():
            yield GraphCanvas(id="monitor-graph")
            yield PaneBar(PANES, id="monitor-panes")
            with Horizontal(id="monitor-lower"):
                yield TextArea(
                    "", language="python", read_only=True, id="job-code", show_line_numbers=True
                )
                yield JobOutput(id="job-output")
        message = Static("", id="monitor-message")
        message.display = False
        yield message
        yield Footer()

    def on_mount(self) -> None:
        self._subscription = self.link.doc.observe(lambda _event: self._post_changed())
        self._unwatch = self.link.watch(self._link_state)
        self._show_link(self.link.state, self.link.detail)
        self.set_interval(0.5, self._tick)
        if self.api is not None:
            api = self.api
            self.query_one(JobOutput).images.loader = lambda execution, job, name: api.image(
                execution or self.execution_id, job, name
            )
        self._layout()
        self.refresh_view()
        self.query_one(GraphCanvas).focus()

    async def on_unmount(self) -> None:
        if self._subscription is not None:
            self.link.doc.unobserve(self._subscription)
        if self._unwatch is not None:
            self._unwatch()
        await self.link.stop()

    # ----- layout: side by side when there is room, else one pane behind the pane bar -----

    def on_resize(self, event: events.Resize) -> None:
        width, height = event.size
        tabbed = width < SIDE_BY_SIDE[0] or height < SIDE_BY_SIDE[1]
        if tabbed != self.tabbed:
            self.tabbed = tabbed
            self._layout()

    def _layout(self) -> None:
        tabbed, pane = self.tabbed, self.pane
        self.set_class(tabbed, "-tabbed")
        bar = self.query_one(PaneBar)
        bar.display = tabbed
        bar.active = pane
        self.query_one("#job-code").display = not tabbed or pane == "code"
        output = self.query_one(JobOutput)
        output.display = not tabbed or pane != "code"
        output.set_pane(pane if tabbed and pane != "code" else None)

    def pane_widget(self, pane: str) -> Widget:
        """The widget that takes the keyboard in ``pane``."""
        output = self.query_one(JobOutput)
        widgets: dict[str, Widget] = {
            "console": output.console,
            "plot": output.plots,
            "code": self.query_one("#job-code"),
            "outputs": output,
        }
        return widgets[pane]

    def watch_focused(self, focused: Widget | None) -> None:
        lower = self.query_one("#monitor-lower")
        self.query_one(PaneBar).focused = focused is not None and lower in focused.ancestors

    def on_pane_bar_chosen(self, event: PaneBar.Chosen) -> None:
        self.action_pane(event.pane)

    def action_pane(self, pane: str) -> None:
        """Show ``pane`` (number keys, or a click on the pane bar); on a wide screen, where
        every pane is on screen, move the keyboard to it."""
        lower = self.query_one("#monitor-lower")
        focused = self.focused
        in_lower = focused is not None and lower in focused.ancestors
        self.pane = pane
        self._layout()
        target = self.pane_widget(pane)
        if (not self.tabbed or in_lower) and target.focusable:
            target.focus()

    # ----- live updates -------------------------------------------------------------------

    def _post_changed(self) -> None:
        self.post_message(ExecutionChanged())

    def on_execution_changed(self, message: ExecutionChanged) -> None:
        self.refresh_view()

    def _link_state(self, state: LinkState, detail: str) -> None:
        self.app.call_later(self._show_link, state, detail)

    def _show_link(self, state: LinkState, detail: str) -> None:
        self.query_one(ConnectionState).show(state, detail)

    def _tick(self) -> None:
        """Running jobs' elapsed times move on without any document change."""
        if self._said is not None and time.monotonic() - self._said[1] > MESSAGE_TTL_S:
            self.say("")
        if self.plain is not None and any(
            job["status"] == "running" for job in self.plain["jobs"].values()
        ):
            self.refresh_view(reread=False)

    def refresh_view(self, *, reread: bool = True) -> None:
        if reread or self.plain is None:
            self.plain = self.live.read()
        plain = self.plain
        if self._said is not None and status_signature(plain) != self._said[0]:
            self.say("")  # the run moved on: what the line said is done or out of date
        if self.selected not in plain["jobs"]:
            self.selected = None
        if self.follow_jobs or self.selected is None:
            self.selected = followed_job(plain, self.selected)
        spec = execution_spec(plain, self.selected)
        if spec != self._shown_spec:  # most changes are console lines and plot points
            self._shown_spec = spec
            canvas = self.query_one(GraphCanvas)
            canvas.show(render(spec, self.options), "Waiting for the execution document…")
            canvas.follow(self.selected)
        title = self._title(plain)
        if title != self._shown_title:  # one line, always: no layout needed
            self._shown_title = title
            self.query_one("#monitor-title", Label).update(title, layout=False)
        self._show_job()

    def _title(self, plain: Execution) -> Text:
        meta = plain["meta"]
        snapshot = meta["pipeline"]
        text = Text(f" {self.project} · {snapshot.get('name') or 'execution'} ", style="bold")
        text.append_text(status_text(meta["status"]))
        took = format_elapsed(elapsed_seconds(meta["started"], meta["finished"]))
        text.append(f"  {took}" if took else "")
        text.append(f"  {self.execution_id}", style="dim")
        if snapshot.get("by"):
            text.append(f"  by {snapshot['by']}", style="dim")
        return text

    def _show_job(self) -> None:
        plain = self.plain
        assert plain is not None
        names = job_names(plain)
        job_id = self.selected
        code = ""
        if job_id is not None:
            spec = (plain["meta"]["pipeline"].get("jobs") or {}).get(job_id) or {}
            code = str(spec.get("code") or "")
        area = self.query_one("#job-code", TextArea)
        if area.text != code:
            area.load_text(code)
        name = names.get(job_id or "", "")
        if area.border_title != name:
            area.border_title = name
        job = plain["jobs"].get(job_id) if job_id else None
        self.query_one(PaneBar).note = job_summary(name, job)
        borrowed = self._borrowed(plain, job_id) if job_id else None
        self.query_one(JobOutput).show(job_id, name, plain, borrowed)

    # ----- a cached job shows the run its result came from --------------------------------

    def _borrowed(self, plain: Execution, job_id: str) -> Borrowed | None:
        """Where a cached job's console, plots and images are (loading what is missing)."""
        borrowed, missing = borrowed_output(plain, self.execution_id, job_id, self.sources)
        for execution_id in missing:
            self.sources[execution_id] = None
            self._load_source(execution_id)
        return borrowed

    @work(group="monitor-sources")
    async def _load_source(self, execution_id: str) -> None:
        try:
            source = await load_any_execution(
                self.app.backend, self.api, self.project, execution_id  # type: ignore[attr-defined]
            )
        except Exception as exc:  # a deleted or unreadable run: the job shows its own (nothing)
            self.say(f"could not read execution {execution_id} (where a cached job came from): "
                     f"{exc}")
            return
        self.sources[execution_id] = source
        if self.is_attached:
            self.refresh_view(reread=False)

    def say(self, message: str) -> None:
        line = self.query_one("#monitor-message", Static)
        line.update(message)
        line.display = bool(message)
        if message and self.plain is not None:
            self._said = (status_signature(self.plain), time.monotonic())
        else:
            self._said = None

    # ----- actions ------------------------------------------------------------------------

    def action_move(self, direction: str) -> None:
        boxes = self.query_one(GraphCanvas).rendered.boxes
        target = nearest(boxes, self.selected, direction)  # type: ignore[arg-type]
        if target is not None and target != self.selected:
            self.select(target)

    def select(self, job_id: str) -> None:
        """Show ``job_id``; choosing a job by hand stops following the running one."""
        self.follow_jobs = False
        self.selected = job_id
        self.refresh_view(reread=False)

    def on_graph_canvas_box_clicked(self, event: GraphCanvas.BoxClicked) -> None:
        self.select(event.node_id)

    def _need_api(self) -> ForgeApi | None:
        if self.api is None:
            self.say("This needs a Forge server: open the project with --server URL")
        return self.api

    def action_restart_job(self) -> None:
        if self.selected and self._need_api():
            self._call("restart", self.selected)

    def action_restart_with_options(self) -> None:
        """Restart on another executor than the one the execution ran on."""
        from forge_tui.app.screens.run_dialog import RunDialog

        if not (self.selected and self._need_api()):
            return
        plain = self.plain or self.execution.to_plain()
        job = self.selected
        name = job_names(plain).get(job, job)
        self.app.push_screen(
            RunDialog(f"Restart {name} with options", restart=True,
                      ran_on=plain["meta"].get("executor")),
            if_chosen(lambda options: self._call("restart", job, options.executor)),
        )

    def action_cancel_job(self) -> None:
        if self.selected and self._need_api():
            self._call("cancel", self.selected)

    def action_cancel_execution(self) -> None:
        if self._need_api():
            self._call("cancel", None)

    @work(group="monitor-api")
    async def _call(self, what: str, job: str | None, executor: str | None = None) -> None:
        assert self.api is not None
        plain = self.plain or self.execution.to_plain()
        name = job_names(plain).get(job or "", job)
        try:
            if what == "restart" and job is not None:
                record = await self.api.restart(self.execution_id, job, executor)
                self.say(restart_note(name, plain["meta"].get("executor"), record, executor))
            else:
                await self.api.cancel(self.execution_id, job)
                self.say(f"Cancelling {name}" if job else "Cancelling the execution")
        except ApiError as exc:
            self.say(f"{what} refused: {exc.message}")
            self.notify(exc.message, title=f"{what} refused", severity="error")

    def action_attempts(self) -> None:
        """The selected job's earlier attempts: each restart or retry kept what it showed."""
        job = self.selected or ""
        name = job_names(self.plain or self.execution.to_plain()).get(job, job)
        entry = self.execution.jobs.get(job)
        kept = entry.get("kept_from_attempt") if entry is not None else None
        body = attempts_text(name, self.execution.earlier_attempts(job) if job else [], kept)
        self.app.push_screen(TextScreen(f"{name}: earlier attempts", body))

    def action_artifact(self) -> None:
        plain = self.plain or self.execution.to_plain()
        job = plain["jobs"].get(self.selected or "")
        outputs = dict(job["outputs"]) if job else {}
        # The images a job showed are artifacts too: offer them after its outputs.
        for name, digest in sorted(plain["images"].get(self.selected or "", {}).items()):
            outputs[f"image {name}"] = digest
        if not outputs:
            self.say("The selected job has no outputs (yet)")
            return
        if len(outputs) == 1:
            self._artifact(*next(iter(outputs.items())))
            return
        options = [(f"{port}  {digest[:12]}", (port, digest)) for port, digest in outputs.items()]
        self.app.push_screen(
            FuzzyPicker("Output artifact", options), if_chosen(lambda pd: self._artifact(*pd))
        )

    @work(group="monitor-api")
    async def _artifact(self, port: str, digest: str) -> None:
        summary = None
        if self.api is not None:
            try:
                summary = await self.api.execution_artifact(self.execution_id, digest)
            except ApiError as exc:
                self.say(f"artifact summary: {exc.message}")
        await self.app.push_screen(
            TextScreen(f"artifact {digest[:12]}", artifact_text(port, digest, summary))
        )

    def action_toggle_follow(self) -> None:
        """Follow mode: the running job selected, its console at the newest line."""
        console = self.query_one(JobOutput).console
        on = not (console.following and self.follow_jobs)
        self.follow_jobs = on
        console.follow(on)
        self.say("Following the running job and its newest lines" if on else "Follow mode off")
        if on:
            self.refresh_view(reread=False)

    def _show_console(self) -> ConsoleView:
        """The console, brought on screen (its pane, on a small screen)."""
        if self.tabbed and self.pane != "console":
            self.pane = "console"
            self._layout()
        return self.query_one(JobOutput).console

    def action_search(self) -> None:
        console = self.query_one(JobOutput).console

        def found(term: str) -> None:
            count = self._show_console().search(term.strip())
            self.say(f"{count} console line(s) match {term.strip()!r}; n/N: next/previous")

        self.app.push_screen(
            Prompt("Search the console", console.term, lambda t: None), if_chosen(found)
        )

    def action_next_match(self, step: int) -> None:
        if self._show_console().next_match(step) is None:
            self.say("No matches: / searches the console")

    def action_back(self) -> None:
        """Escape: from a pane back to the job graph; from the graph, close the monitor."""
        canvas = self.query_one(GraphCanvas)
        if self.focused is not canvas:
            canvas.focus()
        else:
            self.dismiss(None)

    def action_close(self) -> None:
        self.dismiss(None)


async def open_monitor(app: Any, project: str, execution_id: str) -> MonitorScreen:
    """Open the live monitor of an execution of ``project`` (room ``executions/{id}``)."""
    link = app.backend.link(project, f"executions/{execution_id}")
    await link.start()  # returns at once; syncing continues in the background
    screen = MonitorScreen(link, project, execution_id, api_for(app.backend, project))
    await app.push_screen(screen)
    return screen

