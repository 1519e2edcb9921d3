"""``forge project create NAME [--example cifar10]`` and ``forge project list``."""

from __future__ import annotations

import argparse
import json
from typing import Any

from forge_tui.cli.api import api_call
from forge_tui.cli.options import add_client_options


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "project", help="create and list projects", description="Create and list projects."
    )
    actions = parser.add_subparsers(dest="project_command", metavar="ACTION")
    parser.set_defaults(handler=lambda args: _usage(parser))

    create = actions.add_parser(
        "create",
        help="create a project (you become its owner)",
        description="Create a project on the server; you become its owner. With --example, "
        "it starts as a copy of an example project.",
    )
    create.add_argument("name", help="project name (letters, digits, '.', '_', '-')")
    create.add_argument(
        "--example",
        metavar="NAME",
        help="start from an example project: cifar10 (the paper's CIFAR-10 pipeline, "
        "its offline twin, a custom operation and layer)",
    )
    create.add_argument(
        "--exist-ok", action="store_true", help="succeed if the project exists already"
    )
    add_client_options(create)
    create.set_defaults(handler=_create)

    listing = actions.add_parser(
        "list", help="list your projects", description="List the projects you have a role on."
    )
    listing.add_argument("--json", action="store_true", help="print JSON for scripts")
    add_client_options(listing)
    listing.set_defaults(handler=_list)


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def _create(args: argparse.Namespace) -> int:
    body: dict[str, Any] = {"name": args.name, "exist_ok": args.exist_ok}
    if args.example:
        body["example"] = args.example
    result = api_call(args, "POST", "projects", body)
    verb = "Created" if result.get("created") else "Found existing"
    source = f" from example {result['example']}" if result.get("example") else ""
    print(f"{verb} project {result['name']}{source} (your role: {result.get('role')})")
    if result.get("pipelines"):
        print(f"  pipelines: {', '.join(result['pipelines'])}")
    print(f"  open it with: forge tui --project {result['name']}")
    return 0


def _list(args: argparse.Namespace) -> int:
    projects = api_call(args, "GET", "projects").get("projects", [])
    if args.json:
        print(json.dumps(projects, indent=2))
        return 0
    if not projects:
        print("No projects yet; create one with `forge project create NAME --example cifar10`")
        return 0
    width = max(len(p["name"]) for p in projects)
    for project in projects:
        branches = sorted(
            room.split("/", 1)[1]
            for room in project.get("rooms", [])
            if "/executions/" not in room
        )
        executions = sum("/executions/" in room for room in project.get("rooms", []))
        print(
            f"{project['name']:<{width}}  {project['role']:<6}  "
            f"branches: {', '.join(branches) or '-'}  executions: {executions}"
        )
    return 0
