"""One open project: its live document, undo of one's own edits, presence, cached snapshot."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from pycrdt import TransactionEvent, UndoManager

from forge_ops.schema import Project, ProjectDoc
from forge_tui.app._link import LOCAL, DocumentLink
from forge_tui.app._presence import Peer, colour_for, person_label, read_peers


class Workspace:
    """Every edit goes through :meth:`edit`: one transaction, tagged so undo sees only ours."""

    def __init__(
        self, link: DocumentLink, project_name: str, user: str, display: str | None = None
    ) -> None:
        self.link = link
        self.project_name = project_name
        self.user = user  # the account (the relay binds one's presence to it), or a name
        self.display = display  # shown beside the account, never instead of it
        self.colour = colour_for(user)
        self.project = ProjectDoc(link.doc)
        self.undo = UndoManager(
            scopes=[
                self.project.operations,
                self.project.pipelines,
                self.project.layers,
                self.project.architectures,
            ],
            capture_timeout_millis=0,
        )
        self.undo.include_origin(LOCAL)
        self._snapshot: Project | None = None
        self._listeners: list[Callable[[], None]] = []
        self._presence_listeners: list[Callable[[], None]] = []
        self._subs: list[Any] = [
            link.doc.observe(self._changed),
            link.presence.on_change(self._presence_changed),
        ]
        self.set_presence(view=None, selection=None, cursor=None)

    # ----- document -----------------------------------------------------------------------

    @contextmanager
    def edit(self) -> Iterator[ProjectDoc]:
        with self.link.doc.transaction(origin=LOCAL):
            yield self.project

    def snapshot(self) -> Project:
        if self._snapshot is None:
            self._snapshot = self.project.to_plain()
        return self._snapshot

    def on_change(self, callback: Callable[[], None]) -> None:
        self._listeners.append(callback)

    def _changed(self, event: TransactionEvent) -> None:
        self._snapshot = None
        for callback in list(self._listeners):
            callback()

    # ----- presence -----------------------------------------------------------------------

    def set_presence(self, **fields: Any) -> None:
        state = dict(self.link.presence.get_local_state() or {})
        state["user"] = {"name": self.user, "colour": self.colour}
        if self.display:
            state["user"]["display"] = self.display
        state.update(fields)
        if state != self.link.presence.get_local_state():
            self.link.presence.set_local_state(state)

    @property
    def label(self) -> str:
        """How one appears to others: the account, and the display name beside it."""
        return person_label(self.user, self.display)

    def peers(self) -> list[Peer]:
        return read_peers(self.link.presence.others(), self.link.presence.client_id)

    def on_presence(self, callback: Callable[[], None]) -> None:
        self._presence_listeners.append(callback)

    def _presence_changed(self) -> None:
        for callback in list(self._presence_listeners):
            callback()
