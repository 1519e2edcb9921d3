"""``forge sweep`` and ``forge sweeps``: search a pipeline's settings from the command line.

``forge sweep PROJECT SWEEP`` starts a run of the sweep and follows it (a line each time a
trial's status changes), then prints the trials with the best one starred; ``--json`` prints the
run's record for scripts. The same command shows (``--status``), cancels, resumes or applies
(``--apply``) a run, and writes a sweep's definition from a JSON file (``--define``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from forge_tui.api_client import quote
from forge_tui.cli.api import api_call
from forge_tui.cli.errors import CliError
from forge_tui.cli.options import add_client_options, non_empty


def register(subparsers: Any) -> None:
    sweep = _command(subparsers, "sweep",
                     "run a sweep (a search over a pipeline's settings) and follow its trials",
                     _sweep)
    sweep.add_argument("project", help="project name", type=non_empty)
    sweep.add_argument("sweep", help="sweep name or id", type=non_empty)
    sweep.add_argument("--branch", "-b", default="main", help="branch (main)")
    sweep.add_argument("--executor", choices=["ray", "local"],
                       help="where trials run (default: the server's --executor)")
    sweep.add_argument("--run", metavar="RUN", default="latest",
                       help="which run --status/--cancel/--resume/--apply act on (latest)")
    action = sweep.add_mutually_exclusive_group()
    action.add_argument("--status", action="store_true",
                        help="show the trials of a run instead of starting one")
    action.add_argument("--cancel", action="store_true",
                        help="cancel a run: no new trials, running ones cancelled")
    action.add_argument("--resume", action="store_true",
                        help="go on with a cancelled or interrupted run until its budget is spent")
    action.add_argument("--apply", nargs="?", const=-1, type=int, metavar="TRIAL",
                        help="write the best trial's settings (or TRIAL's) into the pipeline, "
                        "as a committed edit")
    action.add_argument("--define", metavar="FILE",
                        help="write the sweep's definition from a JSON file (- for stdin): "
                        '{"pipeline", "parameters", "objective", "budget", "sampler", "pruner"}')
    sweep.add_argument("--json", action="store_true",
                       help="print the run's record (its trials) as JSON; progress on stderr")
    sweep.add_argument("--detach", action="store_true",
                       help="print the run id and return without following it")

    listing = _command(subparsers, "sweeps", "list a project's sweeps and their runs", _sweeps)
    listing.add_argument("project", help="project name", type=non_empty)
    listing.add_argument("--branch", "-b", default="main", help="branch (main)")
    listing.add_argument("--json", action="store_true", help="print JSON for scripts")


def _command(subparsers: Any, name: str, help_text: str, handler: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        name, help=help_text, description=help_text)
    add_client_options(parser)
    parser.set_defaults(handler=handler)
    return parser


# ----- printing --------------------------------------------------------------------------------


def _settings(trial: dict[str, Any]) -> str:
    return ", ".join(f"{target}={value}" for target, value in trial["settings"].items())


def _number(value: Any) -> str:
    return "-" if value is None else f"{value:.4g}"


def trial_line(trial: dict[str, Any]) -> str:
    """One trial as ``forge sweep`` prints it while following."""
    text = f"trial {trial['number']:<3} {trial['status']:<11} {_settings(trial)}"
    if trial.get("execution"):
        text += f"  (execution {trial['execution']})"
    if trial["status"] == "succeeded":
        text += f"  objective {_number(trial['objective'])}"
    elif trial.get("reason"):
        text += f": {trial['reason']}"
    return text


def trials_table(record: dict[str, Any]) -> str:
    """The trials of a run, the best starred."""
    objective = record.get("objective") or {}
    lines = [f"sweep {record['sweep_name']} run {record['run']} {record['status']}"
             + (f" ({record['note']})" if record.get("note") else "")
             + f"; objective: {objective.get('describe', '?')}"]
    row = "{:<6} {:<11} {:>10} {:>9}  {:<10} {}"
    lines.append(row.format("TRIAL", "STATUS", "OBJECTIVE", "DURATION", "EXECUTION",
                            "SETTINGS"))
    for trial in record["trials"]:
        duration = f"{trial['duration']:.1f}s" if trial.get("duration") is not None else "-"
        lines.append(row.format(("*" if trial["best"] else " ") + str(trial["number"]),
                                trial["status"], _number(trial["objective"]), duration,
                                trial.get("execution") or "-", _settings(trial)))
    if record.get("best") is None:
        lines.append("no trial scored yet")
    return "\n".join(lines)


# ----- handlers --------------------------------------------------------------------------------


def _path(args: argparse.Namespace, *rest: str) -> str:
    return "/".join([f"projects/{quote(args.project)}/sweeps/{quote(args.sweep)}",
                     *(quote(part) for part in rest)])


def _sweep(args: argparse.Namespace) -> int:
    out = sys.stderr if args.json else sys.stdout
    body: dict[str, Any] = {"branch": args.branch}
    if args.define:
        return _define(args)
    if args.apply is not None:
        if args.apply >= 0:
            body["trial"] = args.apply
        applied = api_call(args, "POST", _path(args, "runs", args.run, "apply"), body)
        if args.json:
            print(json.dumps(applied, indent=2))
        elif applied["commit"] is None:
            print(f"{args.branch} already has the settings of trial {applied['trial']}")
        else:
            print(f"applied trial {applied['trial']} (objective {_number(applied['objective'])})"
                  f" as commit {applied['commit']['short']}: {applied['commit']['message']}")
        return 0
    if args.status:
        record = api_call(args, "GET", _path(args, "runs", args.run), query={
            "branch": args.branch})
        return _finish(args, record, out=out)
    if args.cancel:
        record = api_call(args, "POST", _path(args, "runs", args.run, "cancel"), body)
        print(f"cancelling sweep run {record['run']}; its running trials are cancelled",
              file=out)
        if args.json:
            print(json.dumps(record, indent=2))
        return 0
    if args.resume:
        record = api_call(args, "POST", _path(args, "runs", args.run, "resume"), body,
                          timeout=300)
    else:
        if args.executor:
            body["executor"] = args.executor
        record = api_call(args, "POST", _path(args, "runs"), body, timeout=300)
    if args.detach:
        print(json.dumps(record, indent=2) if args.json else record["run"])
        return 0
    budget = record.get("budget") or {}
    print(f"sweep {record['sweep_name']} run {record['run']}: {budget.get('trials')} trials, "
          f"{budget.get('concurrency')} at a time, on {args.executor or 'the server default'} "
          f"(commit {str(record.get('commit'))[:10]}, tag {record['tag']})", file=out, flush=True)
    return _finish(args, follow(args, record, out=out), out=out)


def _finish(args: argparse.Namespace, record: dict[str, Any], *, out: Any) -> int:
    if args.json:
        print(json.dumps(record, indent=2))
    else:
        print(trials_table(record), file=out)
    return 0 if record.get("best") is not None else 1


def follow(args: argparse.Namespace, record: dict[str, Any], *, out: Any,
           interval: float = 0.5) -> dict[str, Any]:
    """Print trial status changes until the server no longer drives the run; its last record.
    Ctrl-C cancels the run (a second Ctrl-C stops following)."""
    seen: dict[int, str] = {}
    cancelling = False
    path = _path(args, "runs", record["run"])
    while True:
        try:
            for trial in record["trials"]:
                if seen.get(trial["number"]) != trial["status"]:
                    seen[trial["number"]] = trial["status"]
                    print(trial_line(trial), file=out, flush=True)
            if not record["running"]:
                return record
            time.sleep(interval)
            record = api_call(args, "GET", path, query={"branch": args.branch})
        except KeyboardInterrupt:
            if cancelling:
                raise
            cancelling = True
            print(f"cancelling sweep run {record['run']} (Ctrl-C again to stop following)",
                  file=out, flush=True)
            api_call(args, "POST", f"{path}/cancel", {"branch": args.branch})


def _define(args: argparse.Namespace) -> int:
    try:
        text = sys.stdin.read() if args.define == "-" else \
            Path(args.define).read_text(encoding="utf-8")
        definition = json.loads(text)
    except OSError as exc:
        raise CliError(f"cannot read {args.define}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise CliError(f"{args.define} is not JSON: {exc}") from None
    if not isinstance(definition, dict):
        raise CliError(f"{args.define} must hold a JSON object: "
                       '{"pipeline": …, "parameters": {…}, "objective": {…}, …}')
    defined = api_call(args, "PUT", f"projects/{quote(args.project)}/sweeps/{quote(args.sweep)}",
                       {**definition, "branch": args.branch})
    if args.json:
        print(json.dumps(defined, indent=2))
    else:
        print(f"sweep {defined['name']} ({defined['sweep']}) defined on {args.branch}; run it "
              f"with `forge sweep {args.project} {defined['name']}`")
    return 0


def _sweeps(args: argparse.Namespace) -> int:
    result = api_call(args, "GET", f"projects/{quote(args.project)}/sweeps",
                      query={"branch": args.branch})
    rows = result["sweeps"]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print(f"branch {args.branch} of {args.project} has no sweeps; define one with "
              f"`forge sweep {args.project} NAME --define FILE`")
        return 0
    listing = "{:<20} {:<20} {:>6}  {:<10} {:<10} {}"
    print(listing.format("SWEEP", "PIPELINE", "TRIALS", "LAST RUN", "STATUS", "NOTE"))
    for row in rows:
        last = row["runs"][-1] if row["runs"] else {}
        note = (f"{len(row['problems'])} problem(s): {row['problems'][0]}" if row["problems"]
                else last.get("note") or "")
        print(listing.format(row["name"], row.get("pipeline_name") or row["pipeline"],
                             row["trials"], last.get("run", "-"), last.get("status", "never run"),
                             note))
    return 0
