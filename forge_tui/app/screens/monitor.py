"""The execution monitor: the job graph coloured by status, live from the execution document.

The graph is drawn by the same renderer as the editor (status by colour, border style and
glyph; elapsed time in each box). Selecting a job shows its code on the left and its output on
the right (plots, console, traceback). Restart and cancel go through the HTTP API; the document
tells the monitor what happened.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Label, Static, TextArea

from forge_ops.schema import Execution, ExecutionDoc
from forge_tui.app.api import ApiError, ForgeApi, api_for
from forge_tui.app.bindings import MOVE_BINDINGS
from forge_tui.app.execution_view import artifact_text, execution_spec, job_names
from forge_tui.app.screens.modals import FuzzyPicker, Prompt, TextScreen, if_chosen
from forge_tui.app.screens.run_dialog import restart_note
from forge_tui.app.widgets.graph_canvas import GraphCanvas
from forge_tui.app.widgets.job_output import (
    JobOutput,
    elapsed_seconds,
    format_elapsed,
    status_text,
)
from forge_tui.app.widgets.status_bar import ConnectionState
from forge_tui.render import RenderOptions, nearest
from forge_tui.render import render_graph as render

if TYPE_CHECKING:
    from forge_tui.app._link import DocumentLink, LinkState


class ExecutionChanged(Message):
    """The execution document changed; a flood of updates collapses into one redraw."""

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, ExecutionChanged)


class MonitorScreen(Screen[None]):
    """One execution, live. The link is started by :func:`open_monitor` and stopped on close."""

    DEFAULT_CSS = """
    MonitorScreen > #monitor-top { height: 1; background: $primary-background; }
    MonitorScreen #monitor-title { width: 1fr; }
    MonitorScreen GraphCanvas { height: 2fr; min-height: 7; }
    MonitorScreen #monitor-lower { height: 3fr; }
    MonitorScreen #job-code { width: 1fr; }
    MonitorScreen JobOutput { width: 1fr; }
    MonitorScreen #monitor-message { height: 1; padding: 0 1; color: $warning; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        *MOVE_BINDINGS,
        Binding("R", "restart_job", "Restart job"),
        Binding("ctrl+t", "restart_with_options", "Restart with options…", show=False),
        Binding("c", "cancel_job", "Cancel job"),
        Binding("C", "cancel_execution", "Cancel run"),
        Binding("a", "artifact", "Artifact"),
        Binding("f", "toggle_follow", "Follow"),
        Binding("slash", "search", "Search"),
        Binding("n", "next_match(1)", "Next match", show=False),
        Binding("N", "next_match(-1)", "Previous match", show=False),
        Binding("escape,q", "close", "Back"),
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
        self.plain: Execution | None = None
        self.selected: str | None = None
        self.options = RenderOptions()
        self._subscription: Any = None
        self._unwatch: Any = None

    def compose(self) -> ComposeResult:
        with Horizontal(id="monitor-top"):
            yield Label("", id="monitor-title")
            yield ConnectionState(id="monitor-connection")
        with Vertical():
            yield GraphCanvas(id="monitor-graph")
            with Horizontal(id="monitor-lower"):
                yield TextArea(
                    "", language="python", read_only=True, id="job-code", show_line_numbers=True
                )
                yield JobOutput(id="job-output")
        yield Static("", id="monitor-message")
        yield Footer()

    def on_mount(self) -> None:
        self._subscription = self.link.doc.observe(lambda _event: self._post_changed())
        self._unwatch = self.link.watch(self._link_state)
        self._show_link(self.link.state, self.link.detail)
        self.set_interval(0.5, self._tick)
        if self.api is not None:
            api = self.api
            self.query_one(JobOutput).images.loader = lambda job, name: api.image(
                self.execution_id, job, name
            )
        self.refresh_view()
        self.query_one(GraphCanvas).focus()

    async def on_unmount(self) -> None:
        if self._subscription is not None:
            self.link.doc.unobserve(self._subscription)
        if self._unwatch is not None:
            self._unwatch()
        await self.link.stop()

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
        if self.plain is not None and any(
            job["status"] == "running" for job in self.plain["jobs"].values()
        ):
            self.refresh_view()

    def refresh_view(self) -> None:
        plain = self.plain = self.execution.to_plain()
        if self.selected not in plain["jobs"]:
            self.selected = None
        if self.selected is None and plain["jobs"]:
            order = plain["meta"]["pipeline"].get("order") or sorted(plain["jobs"])
            self.selected = next((j for j in order if j in plain["jobs"]), None)
        canvas = self.query_one(GraphCanvas)
        canvas.show(
            render(execution_spec(plain, self.selected), self.options),
            "Waiting for the execution document…",
        )
        canvas.follow(self.selected)
        self.query_one("#monitor-title", Label).update(self._title(plain))
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
        area.border_title = names.get(job_id or "", "")
        self.query_one(JobOutput).show(job_id, names.get(job_id or "", ""), plain)

    def say(self, message: str) -> None:
        self.query_one("#monitor-message", Static).update(message)

    # ----- actions ------------------------------------------------------------------------

    def action_move(self, direction: str) -> None:
        boxes = self.query_one(GraphCanvas).rendered.boxes
        target = nearest(boxes, self.selected, direction)  # type: ignore[arg-type]
        if target is not None and target != self.selected:
            self.selected = target
            self.refresh_view()

    def select(self, job_id: str) -> None:
        self.selected = job_id
        self.refresh_view()

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
        console = self.query_one(JobOutput).console
        console.follow(not console.following)

    def action_search(self) -> None:
        console = self.query_one(JobOutput).console

        def found(term: str) -> None:
            count = console.search(term.strip())
            self.say(f"{count} console line(s) match {term.strip()!r}; n/N: next/previous")

        self.app.push_screen(
            Prompt("Search the console", console.term, lambda t: None), if_chosen(found)
        )

    def action_next_match(self, step: int) -> None:
        if self.query_one(JobOutput).console.next_match(step) is None:
            self.say("No matches: / searches the console")

    def action_close(self) -> None:
        self.dismiss(None)


async def open_monitor(app: Any, project: str, execution_id: str) -> MonitorScreen:
    """Open the live monitor of an execution of ``project`` (room ``executions/{id}``)."""
    link = app.backend.link(project, f"executions/{execution_id}")
    await link.start()  # returns at once; syncing continues in the background
    screen = MonitorScreen(link, project, execution_id, api_for(app.backend, project))
    await app.push_screen(screen)
    return screen

