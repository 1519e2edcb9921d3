"""Say how an operation's interface changed between two versions of its code.

A commit that edits code should say what a colleague needs to know without reading the diff:
that ``RandomFlips`` gained an input ``mask: Dataset`` (so its node has a new port to wire), not
only "+3 −1 lines". The interfaces are read with ``ast`` (never run), like everywhere else
outside jobs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ._interface import InterfaceError
from ._parse import parse_interface

__all__ = ["describe_interface_changes"]


def describe_interface_changes(old_code: str, new_code: str, operation: str) -> list[str]:
    """Sentences such as ``Added input mask: Dataset to RandomFlips``, in interface order;
    empty when the interface is the same or either version declares none."""
    try:
        old, new = parse_interface(old_code), parse_interface(new_code)
    except InterfaceError:
        return []
    sentences: list[str] = []
    for kind, before, after in (
        ("input", old.inputs, new.inputs),
        ("output", old.outputs, new.outputs),
        ("attribute", old.attributes, new.attributes),
        ("reference", old.references, new.references),
    ):
        sentences += _member_changes(kind, before, after, operation)
    return sentences


def _member_changes(kind: str, before: Sequence[Any], after: Sequence[Any],
                    operation: str) -> list[str]:
    old = {m.name: m for m in before}
    new = {m.name: m for m in after}
    out: list[str] = []
    for name, member in new.items():
        if name not in old:
            out.append(f"Added {kind} {_declared(member)} to {operation}")
        elif _type_of(old[name]) != _type_of(member):
            out.append(f"Changed {kind} {name} of {operation} from {_type_of(old[name])} to "
                       f"{_type_of(member)}")
    out += [f"Removed {kind} {name} from {operation}" for name in old if name not in new]
    return out


def _type_of(member: Any) -> str:
    return str(getattr(member, "type", ""))


def _declared(member: Any) -> str:
    kind = _type_of(member)
    return f"{member.name}: {kind}" if kind else str(member.name)
