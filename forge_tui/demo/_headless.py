"""Run a pipeline through the server API and report its progress as plain lines.

Job status changes come from the execution record (``GET …/executions/{id}``); console lines
stream from the execution document over the sync protocol, as the TUI sees them.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from forge_ops.schema import FINISHED_STATUSES, ExecutionDoc, JobStatus
from forge_tui.api_client import ApiClient, quote

__all__ = ["RunReport", "artifact_value", "format_accuracies", "run_pipeline"]

GOOD = {JobStatus.SUCCEEDED, JobStatus.CACHED}

Printer = Callable[[str], None]


@dataclass
class RunReport:
    execution: str
    status: str
    record: dict[str, Any]
    failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status in GOOD


async def run_pipeline(
    api: ApiClient,
    project: str,
    pipeline: str,
    *,
    out: Printer = print,
    poll_s: float = 0.5,
    timeout_s: float | None = None,
    use_cache: bool = True,
) -> RunReport:
    """Start ``pipeline``, print each job's status changes and console lines until it ends.

    On ``timeout_s`` the execution is cancelled (and reported as such). ``use_cache=False``
    re-runs every job instead of reusing cached results.
    """
    body: dict[str, Any] = {"pipeline": pipeline, "no_cache": not use_cache}
    record = await api.request("POST", f"projects/{quote(project)}/runs", body)
    execution = str(record["execution"])
    out(f"Started execution {execution} of {pipeline} (executor: {record.get('executor')})")
    jobs = [str(info.get("name") or job) for job, info in record.get("jobs", {}).items()]
    if jobs:
        out(f"Jobs: {', '.join(jobs)}")
    started = time.monotonic()
    path = f"projects/{quote(project, 'executions', execution)}"
    seen_status: dict[str, str] = {}
    async with contextlib.AsyncExitStack() as stack:
        console = await _console_stream(stack, api, project, execution, out)
        cancelled = False
        while True:
            record = await api.request("GET", path)
            elapsed = time.monotonic() - started
            names = {job: str(info.get("name") or job) for job, info in record["jobs"].items()}
            _print_console(console.new_lines(), names, out)
            for job, info in record["jobs"].items():
                status = str(info["status"])
                if seen_status.get(job, "queued") != status:
                    seen_status[job] = status
                    note = f" (from cache {info['cached_from']})" if info.get("cached_from") else ""
                    took = f" in {info['duration']:.1f}s" if info.get("duration") else ""
                    out(f"[{elapsed:6.1f}s] {names[job]}: {status}{took}{note}")
            if record["status"] in FINISHED_STATUSES and not record.get("running"):
                # The console syncs over its own connection: let its last lines arrive.
                await console.caught_up()
                _print_console(console.new_lines(), names, out)
                break
            if timeout_s is not None and elapsed > timeout_s and not cancelled:
                out(f"Timed out after {timeout_s:g}s: cancelling execution {execution}")
                await api.request("POST", f"{path}/cancel")
                cancelled = True
            await asyncio.sleep(poll_s)
    failures = [
        f"{info.get('name')}: {info.get('error')}"
        for info in record["jobs"].values()
        if info["status"] == "failed" and info.get("error")
    ]
    return RunReport(execution, str(record["status"]), record, failures)


def _print_console(lines: list[tuple[str, str]], names: dict[str, str], out: Printer) -> None:
    for job, text in lines:
        out(f"  {names.get(job, job):>16} | {text}")


class _Console:
    """Console lines of an execution, read from its document as a sync client sees it."""

    def __init__(self, doc: Any | None) -> None:
        self.doc = doc  # None when the document could not be opened
        self.printed: dict[str, int] = {}

    def _plain(self) -> dict[str, Any]:
        return dict(ExecutionDoc(self.doc).to_plain())

    def new_lines(self) -> list[tuple[str, str]]:
        """Lines added since the last call."""
        if self.doc is None:
            return []
        lines: list[tuple[str, str]] = []
        for job, text in self._plain()["console"].items():
            done = self.printed.get(job, 0)
            if len(text) < done:  # the capped console dropped old lines
                done = 0
            lines.extend((job, str(line).rstrip()) for line in text[done:])
            self.printed[job] = len(text)
        return lines

    async def caught_up(self, timeout_s: float = 10.0) -> None:
        """Wait until the synced copy shows the execution finished: the job writer puts every
        console line into the document before the final status, so then all lines are here."""
        deadline = time.monotonic() + timeout_s
        while self.doc is not None and time.monotonic() < deadline:
            if self._plain()["meta"].get("status") in FINISHED_STATUSES:
                return
            await asyncio.sleep(0.1)


async def _console_stream(
    stack: contextlib.AsyncExitStack, api: ApiClient, project: str, execution: str, out: Printer
) -> _Console:
    """The execution's console, streamed over the sync protocol (empty if unavailable)."""
    from forge_server.client import SyncError, open_document

    try:
        client = await stack.enter_async_context(
            open_document(api.server, api.token, f"{project}/executions/{execution}", timeout=30)
        )
    except (SyncError, OSError) as exc:
        out(f"(console output not streamed: {exc})")
        return _Console(None)
    return _Console(client.doc)


async def artifact_value(api: ApiClient, project: str, name: str) -> Any:
    """The stored value of a JSON artifact (e.g. metrics), via the artifact summary."""
    summary = await api.request("GET", f"projects/{quote(project, 'artifacts', name)}")
    return summary.get("summary", {}).get("value")


def format_accuracies(metrics: dict[str, Any]) -> list[str]:
    """``accuracy`` first, then one line per class, as percentages."""
    lines = []
    overall = metrics.get("accuracy")
    if isinstance(overall, int | float):
        lines.append(f"  {'overall':>16}: {overall * 100:5.1f}%")
    for key, value in metrics.items():
        if key.startswith("accuracy/") and isinstance(value, int | float):
            lines.append(f"  {key.removeprefix('accuracy/'):>16}: {value * 100:5.1f}%")
    return lines

