"""Port type compatibility: which output may feed which input."""

from __future__ import annotations

from ._interface import Port
from .types import ANY

__all__ = ["PortTypeMismatch", "check_connection", "types_compatible"]


class PortTypeMismatch(ValueError):
    """An output port of one type was connected to an input port of another."""


def types_compatible(source_type: str, target_type: str) -> bool:
    """Same spelling, or either side is ``Any``."""
    return source_type == target_type or ANY in (source_type, target_type)


def check_connection(source_node: str, source: Port, target_node: str, target: Port) -> None:
    """Raise PortTypeMismatch naming both ports and both types if they cannot be connected."""
    if types_compatible(source.type, target.type):
        return
    raise PortTypeMismatch(
        f"cannot connect {source_node}.{source.name} ({source.type}) to "
        f"{target_node}.{target.name} ({target.type}): the port types differ; connect a "
        f"{target.type} output to {target_node}.{target.name} instead (an Any port accepts "
        "every type)"
    )
