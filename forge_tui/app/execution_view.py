"""An execution document as the monitor shows it, pure (no widgets): the job graph for the
renderer, job names, and the text of an output artifact's summary."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from rich.text import Text

from forge_ops.operations import InterfaceError, parse_interface
from forge_ops.schema import Execution
from forge_tui.app._values import show_value
from forge_tui.app.widgets.job_output import elapsed_seconds, format_elapsed
from forge_tui.render import EdgeSpec, GraphSpec, NodeSpec, Status

__all__ = ["artifact_text", "execution_spec", "followed_job", "job_names", "status_signature"]


def job_names(execution: Execution) -> dict[str, str]:
    specs = execution["meta"]["pipeline"].get("jobs") or {}
    return {
        job_id: str((specs.get(job_id) or {}).get("name") or job["node"])
        for job_id, job in execution["jobs"].items()
    }


def _order(execution: Execution) -> list[str]:
    order = execution["meta"]["pipeline"].get("order") or sorted(execution["jobs"])
    return [job_id for job_id in order if job_id in execution["jobs"]]


def followed_job(execution: Execution, current: str | None) -> str | None:
    """The job a monitor in follow mode shows: the running job that started last; when none
    runs, the one shown now (where following left off); on opening a finished execution, the
    job that failed, else the job that finished last, else the first in run order."""
    jobs = execution["jobs"]
    order = _order(execution)
    running = [j for j in order if jobs[j]["status"] == "running"]
    if running:
        return max(running, key=lambda j: (jobs[j]["started"] or "", order.index(j)))
    if current in jobs:
        return current
    failed = [j for j in order if jobs[j]["status"] == "failed"]
    if failed:
        return failed[0]
    finished = [j for j in order if jobs[j]["finished"]]
    if finished:
        return max(finished, key=lambda j: (jobs[j]["finished"] or "", order.index(j)))
    return order[0] if order else None


def status_signature(execution: Execution) -> tuple[str, ...]:
    """What changes when anything happens to a run: the execution's and each job's status and
    start. A status line about an action ("Restarting Train…") is stale once it changes."""
    meta = execution["meta"]
    return (
        meta["status"],
        str(meta["started"]),
        *(f"{j}:{job['status']}:{job['started']}" for j, job in sorted(execution["jobs"].items())),
    )


def execution_spec(
    execution: Execution, selected: str | None = None, now: dt.datetime | None = None
) -> GraphSpec:
    """The job graph of an execution: pipeline shape from ``meta.pipeline``, state from jobs."""
    specs: Mapping[str, Any] = execution["meta"]["pipeline"].get("jobs") or {}
    used_outputs: dict[str, set[str]] = {}
    edges = []
    for job_id, spec in sorted(specs.items()):
        for port, wire in sorted((spec.get("inputs") or {}).items()):
            if isinstance(wire, list) and len(wire) == 2 and wire[0] in specs:
                used_outputs.setdefault(wire[0], set()).add(str(wire[1]))
                edges.append(EdgeSpec(str(wire[0]), str(wire[1]), job_id, port))
    nodes = []
    for job_id, spec in sorted(specs.items()):
        job = execution["jobs"].get(job_id)
        inputs = tuple(sorted(spec.get("inputs") or {}))
        outputs = tuple(sorted(used_outputs.get(job_id, ())))
        subtitle = str(spec.get("operation") or "")
        try:
            iface = parse_interface(str(spec.get("code") or ""))
            inputs = tuple(p.name for p in iface.inputs)
            outputs = tuple(p.name for p in iface.outputs)
            subtitle = f"{iface.function}()"
        except InterfaceError:
            pass  # the ports wired in the snapshot still draw the graph
        lines = [f"{k}={show_value(v)}" for k, v in sorted((spec.get("attributes") or {}).items())]
        extra = ""
        status = None
        if job is not None:
            status = Status(job["status"])
            extra = format_elapsed(elapsed_seconds(job["started"], job["finished"], now))
            if job["status"] == "cached":
                extra = f"cached {extra}".strip()
        nodes.append(
            NodeSpec(
                id=job_id,
                title=str(spec.get("name") or job_id),
                subtitle=subtitle,
                lines=tuple(lines),
                inputs=inputs,
                outputs=outputs,
                extra=extra,
                status=status,
                selected=job_id == selected,
            )
        )
    return GraphSpec(tuple(nodes), tuple(edges))


def artifact_text(port: str, digest: str, summary: Mapping[str, Any] | None) -> Text:
    """An output artifact: its hash and the server's summary of it (shape, dtype, statistics,
    provenance), or why there is none."""
    text = Text()
    text.append(port if port.startswith("image ") else f"output {port}", style="bold")
    text.append("\n")
    text.append(f"hash     {digest}\n")
    if summary is None:
        text.append(
            "\nNo summary: the server could not be asked (see the message below the graph).",
            style="dim",
        )
        return text
    for key in ("name", "kind", "shape", "dtype", "bytes", "created"):
        if key in summary:
            text.append(f"{key:<9}{summary[key]}\n")
    producers = summary.get("produced_by")
    if isinstance(producers, list):  # by hash: the jobs of this execution that made it
        for producer in producers:
            made = (f"output {producer.get('port')}" if "port" in producer
                    else f"image {producer.get('image')}")
            text.append(f"made by  job {producer.get('job')}, {made}\n")
    elif producers:
        text.append(f"{'produced_by':<9}{producers}\n")
    details = summary.get("summary") or {}
    for key, value in details.items():
        if key == "hash":
            continue
        if key == "provenance" and isinstance(value, list):
            text.append("provenance:\n", style="bold")
            for record in value:
                fields = record.items() if isinstance(record, dict) else [("", record)]
                text.append("  " + "  ".join(f"{k} {v}".strip() for k, v in fields) + "\n")
        elif isinstance(value, dict):
            text.append(f"{key}:\n", style="bold")
            for inner, inner_value in value.items():
                text.append(f"  {inner:<14}{show_value(inner_value, 60)}\n")
        else:
            text.append(f"{key:<9}{show_value(value, 70)}\n")
    return text
