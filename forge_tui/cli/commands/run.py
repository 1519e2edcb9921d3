"""``forge run/rerun/restart/cancel/executions``: executions from the command line, headless.

``forge run`` asks the server to run a pipeline, then follows the execution (a line each time a
job's status changes) and exits 0 only when it succeeded; ``--json`` prints the final record
(status, each job's status, duration, cache origin and output artifact hashes) on stdout for
scripts, with progress on stderr. ``forge rerun`` runs an execution again exactly as it ran (its
``run/{id}`` tag) and reports, output by output, whether the artifact hashes match.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from typing import Any

from forge_tui.api_client import quote
from forge_tui.cli.api import api_call
from forge_tui.cli.errors import CliError
from forge_tui.cli.options import add_client_options, non_empty

EXIT_MISMATCH = 3
"""``forge rerun``: the rerun succeeded but some output hashes differ from the original's."""


def register(subparsers: Any) -> None:
    run = _command(subparsers, "run", "run a pipeline and follow its progress", _run)
    run.add_argument("project", help="project name", type=non_empty)
    run.add_argument("pipeline", help="pipeline name or id", type=non_empty)
    run.add_argument("--branch", "-b", default="main", help="branch to run (main)")
    run.add_argument("--executor", choices=["ray", "local"],
                     help="where jobs run (default: the server's --executor)")
    run.add_argument("--ray-address", metavar="ADDR",
                     help="Ray cluster the server must be using (it refuses another)")
    run.add_argument("--no-cache", action="store_true", help="recompute every job")
    run.add_argument("--gpus", type=float, metavar="N",
                     help="GPUs for each job that runs a network (an Architecture reference or "
                     "a Model input; default: each node's num_gpus setting)")
    _follow_options(run)

    rerun = _command(subparsers, "rerun",
                     "run an execution again exactly as it ran and compare its outputs", _rerun)
    rerun.add_argument("execution", help="execution id", type=non_empty)
    rerun.add_argument("--no-cache", action="store_true",
                       help="recompute every job (checks reproducibility)")
    rerun.add_argument("--executor", choices=["ray", "local"],
                       help="where jobs run (default: the original's executor if the server "
                       "runs it now or by default, else the server's --executor)")
    rerun.add_argument("--json", action="store_true", help="print the comparison as JSON")

    restart = _command(subparsers, "restart",
                       "re-run one job of an execution and everything downstream of it",
                       _restart)
    restart.add_argument("execution", help="execution id", type=non_empty)
    restart.add_argument("job", help="job name (as in the pipeline) or id", type=non_empty)
    restart.add_argument("--executor", choices=["ray", "local"],
                         help="where the jobs run (default: the execution's executor if the "
                         "server runs it now or by default, else the server's --executor)")
    _follow_options(restart)

    cancel = _command(subparsers, "cancel",
                      "cancel a running execution, or one job and its downstream", _cancel)
    cancel.add_argument("execution", help="execution id", type=non_empty)
    cancel.add_argument("job", nargs="?", type=non_empty,
                        help="job name or id (default: the whole execution)")

    listing = _command(subparsers, "executions", "list a branch's executions", _executions)
    listing.add_argument("project", help="project name", type=non_empty)
    listing.add_argument("--branch", "-b", default="main", help="branch (main)")
    listing.add_argument("--json", action="store_true", help="print JSON for scripts")


def _command(subparsers: Any, name: str, help_text: str, handler: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        name, help=help_text, description=help_text
    )
    add_client_options(parser)
    parser.set_defaults(handler=handler)
    return parser


def _follow_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true",
                        help="print the final record as JSON (progress goes to stderr)")
    parser.add_argument("--detach", action="store_true",
                        help="print the execution id and return without following it")


# ----- following an execution ----------------------------------------------------------------


def _clock(iso: str | None) -> str:
    return iso[11:19] if iso and len(iso) >= 19 else time.strftime("%H:%M:%S")


def _job_line(job: dict[str, Any]) -> str:
    from forge_ops.schema import FINISHED_STATUSES

    status = job["status"]
    text = f"{_clock(job.get('finished') or job.get('started'))}  {job['name']:<20} {status}"
    if job.get("duration") is not None and status in FINISHED_STATUSES:
        text += f"  {job['duration']:.1f}s"
    if status == "cached" and job.get("cached_from"):
        text += f" (from {job['cached_from']})"
    error = str(job.get("error") or "").rstrip()
    if error and status in ("failed", "cancelled"):
        lines = error.splitlines()
        if len(lines) == 1:
            text += f": {lines[0]}"
        else:  # a traceback of the user's code
            text += "\n" + "\n".join(f"      {line}" for line in lines)
    return text


def follow(args: argparse.Namespace, execution: str, *, out: Any, interval: float = 0.3,
           seen: dict[str, str] | None = None) -> dict[str, Any]:
    """Print job status changes until the execution is finished; returns its final record.

    Ctrl-C asks the server to cancel the execution (a second Ctrl-C stops following).
    """
    from forge_ops.schema import FINISHED_STATUSES

    seen = {} if seen is None else seen
    cancelling = False
    while True:
        try:
            record = api_call(args, "GET", f"executions/{quote(execution)}")
            for job in record["jobs"].values():
                key = job["status"] + str(job.get("started"))
                first = job["name"] not in seen
                if seen.get(job["name"]) != key:
                    seen[job["name"]] = key
                    if not (first and job["status"] == "queued"):  # every job starts queued
                        print(_job_line(job), file=out, flush=True)
            if record["status"] in FINISHED_STATUSES and not record.get("running"):
                return record
            time.sleep(interval)
        except KeyboardInterrupt:
            if cancelling:
                raise
            cancelling = True
            print(f"cancelling execution {execution} (Ctrl-C again to stop following)",
                  file=out, flush=True)
            api_call(args, "POST", f"executions/{quote(execution)}/cancel")


def _summary(record: dict[str, Any], restart_began: float | None = None) -> str:
    counts: dict[str, int] = {}
    for job in record["jobs"].values():
        counts[job["status"]] = counts.get(job["status"], 0) + 1
    jobs = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    if restart_began is not None:  # the record's duration counts from the first start
        took = f" ({jobs}); the restart took {time.monotonic() - restart_began:.1f}s"
    elif record.get("duration") is not None:
        took = f" in {record['duration']:.1f}s ({jobs})"
    else:
        took = f" ({jobs})"
    lines = [f"execution {record['execution']} {record['status']}{took}"]
    for name, artifact in sorted((record.get("artifacts") or {}).items()):
        lines.append(f"  artifact {name} = {artifact[:16]}")
    return "\n".join(lines)


def _finish(args: argparse.Namespace, record: dict[str, Any], *, out: Any,
            restart_began: float | None = None) -> int:
    if args.json:
        print(json.dumps(record, indent=2))
    else:
        print(_summary(record, restart_began), file=out)
    return 0 if record["status"] == "succeeded" else 1


# ----- handlers ------------------------------------------------------------------------------


def _run(args: argparse.Namespace) -> int:
    body: dict[str, Any] = {"pipeline": args.pipeline, "branch": args.branch,
                            "no_cache": args.no_cache}
    if args.executor:
        body["executor"] = args.executor
    if args.ray_address:
        body["ray_address"] = args.ray_address
    if args.gpus is not None:
        if not 0 <= args.gpus < math.inf:
            raise CliError("--gpus must be a number of GPUs, 0 or more (e.g. 1, or 0.5 to "
                           "share one)")
        body["gpus"] = args.gpus
    out = sys.stderr if args.json else sys.stdout
    # Generous: the first run may start the server's Ray runtime.
    record = api_call(args, "POST", f"projects/{quote(args.project)}/runs", body, timeout=300)
    return _started(args, record, out=out)


def _started(args: argparse.Namespace, record: dict[str, Any], *, out: Any,
             restart_began: float | None = None) -> int:
    execution = record["execution"]
    if args.detach:
        print(json.dumps(record, indent=2) if args.json else execution)
        return 0
    print(f"execution {execution} of {record.get('pipeline_name')} on {record['executor']} "
          f"(commit {str(record.get('commit'))[:10]})", file=out, flush=True)
    # What the server answered is already known: print only what changes from here on.
    seen = {job["name"]: job["status"] + str(job.get("started"))
            for job in record["jobs"].values()}
    return _finish(args, follow(args, execution, out=out, seen=seen), out=out,
                   restart_began=restart_began)


def _restart(args: argparse.Namespace) -> int:
    out = sys.stderr if args.json else sys.stdout
    path = f"executions/{quote(args.execution)}/jobs/{quote(args.job)}/restart"
    began = time.monotonic()
    body = {"executor": args.executor} if args.executor else {}
    record = api_call(args, "POST", path, body, timeout=300)
    return _started(args, record, out=out, restart_began=began)


def _cancel(args: argparse.Namespace) -> int:
    path = f"executions/{quote(args.execution)}"
    path += f"/jobs/{quote(args.job)}/cancel" if args.job else "/cancel"
    record = api_call(args, "POST", path, {})
    see = "see how it ends with `forge executions PROJECT` or in the TUI's monitor"
    if args.job:
        print(f"cancelling job {args.job} of execution {args.execution} and the jobs that "
              f"need its outputs; {see}")
        return 0
    # Only jobs still queued or running are cancelled; finished ones keep their results.
    jobs = record.get("jobs", {}) if isinstance(record, dict) else {}
    stopping = sorted(job["name"] for job in jobs.values()
                      if job.get("status") in ("queued", "running"))
    print(f"cancelling execution {args.execution}: {len(stopping)} unfinished job(s) "
          f"({', '.join(stopping) or 'none'}); {len(jobs) - len(stopping)} finished job(s) "
          f"keep their results; {see}")
    return 0


def _rerun(args: argparse.Namespace) -> int:
    out = sys.stderr if args.json else sys.stdout
    body: dict[str, Any] = {"no_cache": args.no_cache}
    if args.executor:
        body["executor"] = args.executor
    started = api_call(args, "POST", f"executions/{quote(args.execution)}/rerun", body,
                       timeout=300)
    print(f"execution {started['execution']} reruns {args.execution} on {started['executor']}"
          f" (commit {str(started.get('commit'))[:10]})", file=out, flush=True)
    rerun = follow(args, started["execution"], out=out)
    original = api_call(args, "GET", f"executions/{quote(args.execution)}")
    rows = compare_outputs(original, rerun)
    all_match = all(row["match"] for row in rows)
    if args.json:
        print(json.dumps({"original": args.execution, "rerun": rerun["execution"],
                          "status": rerun["status"], "all_match": all_match,
                          "outputs": rows}, indent=2))
    else:
        print(_summary(rerun), file=out)
        for row in rows:
            verdict = "match" if row["match"] else "DIFFERENT"
            print(f"  {row['job'] + '.' + row['port']:<28} {str(row['original'])[:12]:<12}  "
                  f"{str(row['rerun'])[:12]:<12}  {verdict}", file=out)
        total = sum(row["match"] for row in rows)
        print(f"{total} of {len(rows)} outputs match the original's", file=out)
        if original["status"] != "succeeded":
            print(f"(the original {original['status']}: only the outputs it produced are "
                  "compared)", file=out)
    if rerun["status"] != "succeeded":
        return 1
    return 0 if all_match else EXIT_MISMATCH


def compare_outputs(original: dict[str, Any], rerun: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per output port of the original execution: both hashes and whether they match."""
    rows = []
    for job_id, job in original["jobs"].items():
        again = rerun["jobs"].get(job_id, {}).get("outputs", {})
        for port, artifact in sorted(job["outputs"].items()):
            rows.append({"job": job["name"], "port": port, "original": artifact,
                         "rerun": again.get(port), "match": again.get(port) == artifact})
    return rows


def _executions(args: argparse.Namespace) -> int:
    result = api_call(args, "GET", f"projects/{quote(args.project)}/executions",
                      query={"branch": args.branch})
    rows = result["executions"]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print(f"branch {args.branch} of {args.project} has no executions yet")
        return 0
    listing = "{:<10} {:<19}  {:<10} {:<20} {:<10}  {}"
    print(listing.format("EXECUTION", "CREATED", "STATUS", "PIPELINE", "COMMIT", "BY"))
    for row in rows:
        pipeline = row.get("pipeline_name") or f"(deleted {row.get('pipeline')})"
        print(listing.format(row["execution"], row["created"].replace("T", " ")[:19],
                             row["status"], pipeline, str(row.get("commit"))[:10],
                             row.get("by") or "-"))
    return 0
