"""``forge log/show/diff/branch/branches/merge/tag/tags/revert``: a project's version history.

Each command takes the project first and talks to the server's HTTP API
(``/api/projects/{project}/...``); listings take ``--json`` for scripts.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from forge_tui.api_client import quote, quote_ref
from forge_tui.cli.api import api_call
from forge_tui.cli.errors import CliError
from forge_tui.cli.options import add_client_options


def register(subparsers: Any) -> None:
    log = _command(subparsers, "log", "list a branch's commits, newest first", _log)
    log.add_argument("--branch", "-b", default="main", help="branch to list (main)")
    log.add_argument("-n", type=int, default=20, dest="limit", help="how many commits (20)")
    _json_option(log)

    show = _command(subparsers, "show", "a commit's message, authors and changes", _show)
    show.add_argument("commit", help="commit id (or prefix), branch or tag")
    _json_option(show)

    diff = _command(subparsers, "diff", "semantic changes between two commits", _diff)
    diff.add_argument("a", help="older commit, branch or tag")
    diff.add_argument("b", help="newer commit, branch or tag")
    _json_option(diff)

    branch = _command(subparsers, "branch", "start a branch from a commit", _branch)
    branch.add_argument("name", help="name of the new branch")
    branch.add_argument("--from", dest="source", help="commit, branch or tag (main's state)")

    branches = _command(subparsers, "branches", "list branches", _branches)
    _json_option(branches)

    merge = _command(subparsers, "merge", "merge a branch into another", _merge)
    merge.add_argument("branch", help="branch to merge")
    merge.add_argument("--into", default="main", help="branch that receives it (main)")

    tag = _command(subparsers, "tag", "name a commit", _tag)
    tag.add_argument("name", help="tag name, e.g. v1 or baseline")
    tag.add_argument("commit", nargs="?", help="commit, branch or tag (main's latest state)")

    tags = _command(subparsers, "tags", "list tags", _tags)
    _json_option(tags)

    revert = _command(subparsers, "revert", "restore a commit's content as a new commit", _revert)
    revert.add_argument("commit", help="commit, branch or tag whose content to restore")
    revert.add_argument("--branch", "-b", default="main", help="branch to write to (main)")


def _command(subparsers: Any, name: str, help_text: str, handler: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        name, help=help_text, description=help_text
    )
    parser.add_argument("project", help="project name")
    add_client_options(parser)
    parser.set_defaults(handler=handler)
    return parser


def _json_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON for scripts")


# ----- HTTP ----------------------------------------------------------------------------------


def _call(
    args: argparse.Namespace,
    method: str,
    path: str,
    *,
    query: dict[str, str] | None = None,
    body: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """``method`` on ``/api/projects/{project}/{path}``."""
    return api_call(args, method, f"projects/{quote(args.project)}/{path}", body, query=query)


# ----- output --------------------------------------------------------------------------------


def _when(iso: str) -> str:
    return iso.replace("T", " ")[:16]


def _commit_line(commit: dict[str, Any]) -> str:
    authors = ", ".join(commit.get("authors") or []) or "-"
    tags = commit.get("tags") or []
    suffix = f"  (tag: {', '.join(tags)})" if tags else ""
    parents = commit.get("parents") or []
    merge = " [merge]" if len(parents) > 1 else ""
    when = _when(commit["created"])
    return f"{commit['short']}  {when}  {authors}  {commit['message']}{merge}{suffix}"


def _print_changes(changes: list[dict[str, Any]]) -> None:
    if not changes:
        print("  (no changes)")
    for change in changes:
        print(f"  {change['text']}")
        detail = change.get("detail")
        if detail:
            for line in detail.splitlines()[2:]:  # skip the ---/+++ header
                print(f"      {line}")


def _emit_json(data: Any) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False))


# ----- handlers ------------------------------------------------------------------------------


def _log(args: argparse.Namespace) -> int:
    if args.limit < 1:
        raise CliError("-n must be at least 1")
    result = _call(args, "GET", "log", query={"branch": args.branch, "limit": str(args.limit)})
    if args.json:
        _emit_json(result["commits"])
        return 0
    if not result["commits"]:
        print(f"branch {args.branch} of {args.project} has no commits yet")
    for commit in result["commits"]:
        print(_commit_line(commit))
    return 0


def _show(args: argparse.Namespace) -> int:
    result = _call(args, "GET", f"commits/{quote_ref(args.commit)}")
    if args.json:
        _emit_json(result)
        return 0
    commit = result["commit"]
    print(f"commit   {commit['id']}")
    if len(commit["parents"]) > 1:
        print(f"merge    {' '.join(p[:10] for p in commit['parents'])}")
    print(f"branch   {commit['branch']}")
    print(f"authors  {', '.join(commit['authors']) or '-'}")
    print(f"date     {_when(commit['created'])}")
    if commit.get("tags"):
        print(f"tags     {', '.join(commit['tags'])}")
    print(f"\n    {commit['message']}\n")
    _print_changes(result["changes"])
    return 0


def _diff(args: argparse.Namespace) -> int:
    result = _call(args, "GET", "diff", query={"a": args.a, "b": args.b})
    if args.json:
        _emit_json(result)
        return 0
    print(f"{result['a']['short']} → {result['b']['short']}")
    _print_changes(result["changes"])
    return 0


def _branch(args: argparse.Namespace) -> int:
    body = {"name": args.name}
    if args.source:
        body["from"] = args.source
    branch = _call(args, "POST", "branches", body=body)["branch"]
    print(f"created branch {branch['name']} from {branch['from'][:10]}")
    return 0


def _branches(args: argparse.Namespace) -> int:
    branches = _call(args, "GET", "branches")["branches"]
    if args.json:
        _emit_json(branches)
        return 0
    for branch in branches:
        head = branch["head"][:10] if branch["head"] else "(no commits)"
        print(f"{branch['name']:<20} {head}")
    return 0


def _merge(args: argparse.Namespace) -> int:
    commit = _call(args, "POST", "merge", body={"branch": args.branch, "into": args.into})
    print(_commit_line(commit["commit"]))
    return 0


def _tag(args: argparse.Namespace) -> int:
    body = {"name": args.name}
    if args.commit:
        body["commit"] = args.commit
    tag = _call(args, "POST", "tags", body=body)["tag"]
    print(f"tagged {tag['commit'][:10]} as {tag['name']}")
    return 0


def _tags(args: argparse.Namespace) -> int:
    tags = _call(args, "GET", "tags")["tags"]
    if args.json:
        _emit_json(tags)
        return 0
    for tag in tags:
        print(
            f"{tag['name']:<24} {tag['commit'][:10]}  {_when(tag['created'])}  {tag['by'] or '-'}"
        )
    return 0


def _revert(args: argparse.Namespace) -> int:
    result = _call(args, "POST", "revert", body={"commit": args.commit, "branch": args.branch})
    print(_commit_line(result["commit"]))
    return 0
