"""A sweep's commits: the state it runs, committed and tagged once (``sweep/{run}``); each
trial's settings as a commit off the branch (its parent the sweep's commit, its message what the
trial changed), so that the trial's ``run/{id}`` tag restores exactly what it ran; and "apply the
best settings" as an ordinary edit of the branch, committed."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pycrdt import Doc

from forge_ops.schema import Project, ProjectDoc, commit_message, diff_projects
from forge_ops.sweeps import SweepSpec
from forge_server.history import History, HistoryError, HistoryStore
from forge_server.relay.rooms import project_room

from ._errors import SweepConflict, SweepFailure


async def commit_and_tag_sweep(history: History, project: str, branch: str, run: str,
                               by: str | None) -> str:
    """Commit the branch's state (unless only run bookkeeping changed) and tag it
    ``sweep/{run}``; the commit id."""
    commit = await history.commit(project, branch, author=by, automatic=True)
    store = history.store
    if commit is None:
        commit = await store.run(store.head, project, branch)
    if commit is None:  # a project never committed
        commit = await history.commit(project, branch, author=by, force=True)
    assert commit is not None
    try:
        await store.run(store.add_tag, project, f"sweep/{run}", commit.id, by)
    except HistoryError as exc:
        raise SweepFailure(exc.message) from exc
    return commit.id


def commit_trial(store: HistoryStore, project: str, branch: str, *, base: str,
                 content: Project, label: str, by: str | None) -> str:
    """The commit of a trial's ``content``: ``base`` itself when the trial changes nothing,
    else a new commit whose parent is ``base``, off the branch (runs on the store's thread)."""
    base_content = store.content(base)
    changes = diff_projects(base_content, content)
    if not changes:
        return base
    doc: Doc = Doc()
    doc.apply_update(store.state(base))
    document = ProjectDoc(doc)
    document.restore(content)
    commit = store.add_commit(
        project, branch, parents=(base,), authors=(by,) if by else (),
        message=f"{label}: {commit_message(changes)}", state=doc.get_update(),
        content=dict(document.to_plain()), move_head=False)
    return commit.id


async def apply_settings(history: History, project: str, branch: str, *, spec: SweepSpec,
                         values: Mapping[str, Any], label: str, by: str | None
                         ) -> dict[str, Any]:
    """Write a trial's settings into the branch's pipeline (an edit like any other) and commit
    it; the commit as JSON, or None in ``commit`` when the pipeline already has them."""
    async with history.rooms.hold(project_room(project, branch)) as room:
        document = ProjectDoc(room.doc)
        before = document.to_plain()
        pipeline = before["pipelines"].get(spec.pipeline)
        missing = [p.target for p in spec.parameters
                   if p.name in values and (pipeline is None or p.node not in pipeline["nodes"])]
        if missing:
            raise SweepConflict(
                f"pipeline {spec.pipeline_name} on {branch} no longer has "
                f"{', '.join(missing)}; apply the settings by hand")
        with room.edit(by):
            for parameter in spec.parameters:
                if parameter.name not in values:
                    continue
                if parameter.field == "attributes":
                    document.set_attribute(spec.pipeline, parameter.node, parameter.key,
                                           values[parameter.name])
                else:
                    document.set_reference(spec.pipeline, parameter.node, parameter.key,
                                           values[parameter.name])
        await room.written()
        changes = diff_projects(before, document.to_plain())
    if not changes:
        return {"commit": None, "changes": []}
    commit = await history.commit(project, branch, author=by,
                                  message=f"{label}: {commit_message(changes)}")
    return {"commit": commit.to_json() if commit is not None else None,
            "changes": [change.text for change in changes]}
