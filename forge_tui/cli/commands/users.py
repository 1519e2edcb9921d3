"""``forge user ...`` and ``forge token ...``: accounts, roles and access tokens.

These act directly on a server's data directory (``--data-dir``), so they work whether or not
the server is running; a change takes effect at the next connection or request.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from forge_tui.cli.errors import CliError

if TYPE_CHECKING:
    from forge_server.auth import AuthStore

Action = Callable[["AuthStore", argparse.Namespace], int]

DATA_DIR_ENV = "FORGE_DATA_DIR"
DEFAULT_DATA_DIR = "forge-data"


def _add_data_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-dir",
        metavar="DIR",
        default=os.environ.get(DATA_DIR_ENV, DEFAULT_DATA_DIR),
        help=f"the server's data directory (default: ${DATA_DIR_ENV}, then ./{DEFAULT_DATA_DIR})",
    )


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    user = subparsers.add_parser("user", help="manage users and their project roles")
    user_sub = user.add_subparsers(dest="user_command", metavar="ACTION", required=True)

    add = user_sub.add_parser("add", help="create a user")
    add.add_argument("name")
    add.add_argument("--admin", action="store_true", help="administrator: owner of every project")
    add.add_argument(
        "--creator",
        action="store_true",
        help="may create projects (and owns those) on a server started with "
        "--project-creators admins, the default",
    )
    add.set_defaults(handler=partial(_run, _do_user_add))

    creator = user_sub.add_parser(
        "creator", help="allow an existing user to create projects (or stop, with --off)"
    )
    creator.add_argument("name")
    creator.add_argument("--off", action="store_true", help="no longer allow it")
    creator.set_defaults(handler=partial(_run, _do_user_creator))

    lst = user_sub.add_parser("list", help="list users, their roles and active tokens")
    lst.set_defaults(handler=partial(_run, _do_user_list))

    remove = user_sub.add_parser("remove", help="delete a user with all their tokens and roles")
    remove.add_argument("name")
    remove.set_defaults(handler=partial(_run, _do_user_remove))

    grant = user_sub.add_parser("grant", help="give a user a role on a project")
    grant.add_argument("name")
    grant.add_argument("project")
    grant.add_argument("role", choices=["owner", "writer", "reader"])
    grant.set_defaults(handler=partial(_run, _do_user_grant))

    revoke = user_sub.add_parser("revoke", help="remove a user's role on a project")
    revoke.add_argument("name")
    revoke.add_argument("project")
    revoke.set_defaults(handler=partial(_run, _do_user_revoke))

    token = subparsers.add_parser("token", help="create, list and revoke access tokens")
    token_sub = token.add_subparsers(dest="token_command", metavar="ACTION", required=True)

    create = token_sub.add_parser("create", help="create a token for a user (printed once)")
    create.add_argument("name")
    create.add_argument(
        "--expires", metavar="DURATION", help="lifetime, e.g. 30d, 12h, 2w (default: never)"
    )
    create.add_argument("--label", default="", help="a note to recognise the token by")
    create.set_defaults(handler=partial(_run, _do_token_create))

    tlist = token_sub.add_parser("list", help="list tokens (ids and states, never secrets)")
    tlist.add_argument("name", nargs="?", help="only this user's tokens")
    tlist.set_defaults(handler=partial(_run, _do_token_list))

    trevoke = token_sub.add_parser("revoke", help="revoke a token by id, or all of a user's")
    target = trevoke.add_mutually_exclusive_group(required=True)
    target.add_argument("token_id", nargs="?", help="the token's id (see `forge token list`)")
    target.add_argument("--user", metavar="NAME", help="revoke every token of this user")
    trevoke.set_defaults(handler=partial(_run, _do_token_revoke))

    for parser in (add, creator, lst, remove, grant, revoke, create, tlist, trevoke):
        _add_data_dir(parser)


def _open(args: argparse.Namespace) -> AuthStore:
    from forge_server.auth import AuthStore

    data_dir = Path(args.data_dir)
    if not data_dir.is_dir():
        raise CliError(
            f"data directory {data_dir} does not exist; pass the one `forge serve` uses "
            f"with --data-dir (or set ${DATA_DIR_ENV})"
        )
    return AuthStore.open(data_dir)


def _run(action: Action, args: argparse.Namespace) -> int:
    """Run one store action, turning the store's input errors into one-line CLI errors."""
    from forge_server.auth import AuthStoreError

    with _open(args) as store:
        try:
            return action(store, args)
        except AuthStoreError as exc:
            raise CliError(str(exc)) from None


def _do_user_add(store: AuthStore, args: argparse.Namespace) -> int:
    store.add_user(args.name, admin=args.admin, creator=args.creator)
    kind = "administrator" if args.admin else "project creator" if args.creator else "user"
    print(f"created {kind} {args.name}; give them a token with `forge token create {args.name}`")
    return 0


def _do_user_creator(store: AuthStore, args: argparse.Namespace) -> int:
    store.set_creator(args.name, not args.off)
    if args.off:
        print(f"{args.name} may no longer create projects (projects they own stay theirs)")
    else:
        print(f"{args.name} may now create projects")
    return 0


def _do_user_list(store: AuthStore, args: argparse.Namespace) -> int:
    users = store.list_users()
    if not users:
        print("no users yet (`forge serve` creates the first one on its first start)")
        return 0
    width = max(len(u.name) for u in users)
    for u in users:
        roles = (
            "all projects (admin)"
            if u.admin
            else (", ".join(f"{g.project}:{g.role}" for g in u.roles) or "no roles")
        )
        if u.creator and not u.admin:
            roles += "  (may create projects)"
        print(f"{u.name:<{width}}  {u.active_tokens} active token(s)  {roles}")
    return 0


def _do_user_remove(store: AuthStore, args: argparse.Namespace) -> int:
    store.remove_user(args.name)
    print(f"removed user {args.name} with their tokens and roles")
    return 0


def _do_user_grant(store: AuthStore, args: argparse.Namespace) -> int:
    grant = store.grant(args.name, args.project, args.role)
    print(f"{grant.user} is now {grant.role} of {grant.project}")
    return 0


def _do_user_revoke(store: AuthStore, args: argparse.Namespace) -> int:
    if not store.revoke_role(args.name, args.project):
        raise CliError(f"{args.name} has no role on {args.project}; nothing to revoke")
    print(f"{args.name} no longer has a role on {args.project}")
    return 0


def _do_token_create(store: AuthStore, args: argparse.Namespace) -> int:
    from forge_server.auth import format_timestamp as iso
    from forge_server.auth import parse_duration

    expires_in = parse_duration(args.expires) if args.expires else None
    token, info = store.create_token(args.name, expires_in=expires_in, label=args.label)
    until = f"expires {iso(info.expires)}" if info.expires else "never expires"
    print(token)
    print(
        f"token {info.token_id} for {info.user}, {until}. It is shown only this once: "
        "store it now (e.g. `forge login URL TOKEN`).",
        file=sys.stderr,
    )
    return 0


def _do_token_list(store: AuthStore, args: argparse.Namespace) -> int:
    from forge_server.auth import format_timestamp as iso

    if args.name is not None and not store.user_exists(args.name):
        raise CliError(f"no user named {args.name!r}; `forge user list` shows the users")
    tokens = store.list_tokens(args.name)
    if not tokens:
        print("no tokens")
        return 0
    now = time.time()
    for t in tokens:
        expiry = f"expires {iso(t.expires)}" if t.expires else "no expiry"
        label = f"  {t.label}" if t.label else ""
        print(
            f"{t.token_id}  {t.user}  {t.state(now):<7}  created {iso(t.created)}  {expiry}{label}"
        )
    return 0


def _do_token_revoke(store: AuthStore, args: argparse.Namespace) -> int:
    if args.user is not None:
        count = store.revoke_user_tokens(args.user)
        print(f"revoked {count} token(s) of {args.user}")
        return 0
    info = store.revoke_token(args.token_id)
    print(f"token {info.token_id} of {info.user} is revoked")
    return 0
