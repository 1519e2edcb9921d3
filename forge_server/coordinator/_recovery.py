"""Executions a stopped server left unfinished: nobody runs them any more, so they become
failed, each unfinished job saying how to run it again."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable

from forge_ops.schema import FINISHED_STATUSES, ExecutionDoc, JobStatus, ProjectDoc, SchemaError

from ._errors import CoordinatorError, NotFound
from ._lookup import Lookup, is_execution


async def settle_interrupted(lookup: Lookup, project: str, execution: str,
                             log: logging.Logger) -> None:
    """Mark an unfinished execution (that the caller knows nobody runs) and its unfinished jobs
    failed, in its document and in its branch's summary; a finished one is left alone."""
    rooms = lookup.rooms
    async with rooms.hold(lookup.execution_room(project, execution)) as room:
        document = ExecutionDoc(room.doc)
        if document.meta.get("status") in FINISHED_STATUSES:
            return
        if not is_execution(document):
            return  # a room opened by its URL, never an execution: nothing to settle or record
        plain = document.to_plain()
        why = ("interrupted: the server stopped while this job was queued or running; "
               f"restart it with `forge restart {execution} JOB`")
        with room.edit(None):
            for job_id, job in plain["jobs"].items():
                if job["status"] not in FINISHED_STATUSES:
                    document.set_job_status(job_id, JobStatus.FAILED, error=why)
            document.set_status(JobStatus.FAILED)
        await room.written()
    branch = str(plain["meta"]["pipeline"].get("branch") or "main")
    with contextlib.suppress(CoordinatorError, SchemaError):
        async with rooms.hold(lookup.branch_room(project, branch)) as project_doc:
            with project_doc.edit(None) as doc:
                ProjectDoc(doc).set_execution_status(execution, JobStatus.FAILED)
    log.warning("execution %s of %s was interrupted; marked failed", execution, project)


async def settle_left_running(lookup: Lookup, running_here: Callable[[str], bool],
                              log: logging.Logger) -> int:
    """Settle every execution of every project branch that is unfinished and not
    ``running_here``: a previous server process left it so (it crashed, or was killed).
    Goes through the branches one at a time; returns how many were settled."""
    rooms = lookup.rooms
    settled = 0
    for project in rooms.projects():
        branches = [room.split("/", 1)[1] for room in rooms.project_rooms(project)
                    if "/executions/" not in room]
        for branch in branches:
            try:
                async with rooms.hold(lookup.branch_room(project, branch)) as room:
                    summaries = dict(ProjectDoc(room.doc).to_plain()["executions"])
            except (CoordinatorError, SchemaError, ValueError):
                continue  # not a project branch (a room opened by its URL only)
            for xid, summary in summaries.items():
                if summary["status"] in FINISHED_STATUSES or running_here(xid):
                    continue
                with contextlib.suppress(NotFound):
                    await settle_interrupted(lookup, project, xid, log)
                    settled += 1
    if settled:
        log.warning("settled %d execution(s) that a previous server process left running",
                    settled)
    return settled
