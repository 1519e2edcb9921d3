"""Python names for what users name freely: layers, steps and architectures.

Exported source, built modules and the pipeline exporter all derive their attribute, file and
class names here, so a name means the same identifier everywhere (and state dicts match).
"""

from __future__ import annotations

import keyword
import re

__all__ = ["class_name", "identifier"]

_NOT_IDENT = re.compile(r"\W+")
# Names exported code uses for itself (modules it imports, ``self``).
_RESERVED = frozenset({"self", "torch", "nn", "F", "super", "math", "operator"})


def identifier(name: str, fallback: str = "layer") -> str:
    """Turn a display name (``"features.0"``, ``"Conv 1"``) into a Python identifier."""
    ident = _NOT_IDENT.sub("_", name.strip()).strip("_") or fallback
    if ident[0].isdigit():
        ident = f"{fallback}_{ident}"
    if keyword.iskeyword(ident) or ident in _RESERVED:
        ident = f"{ident}_"
    return ident


def class_name(name: str) -> str:
    """Turn an architecture's name into a CamelCase class name (``"my net"`` -> ``MyNet``)."""
    parts = [p for p in _NOT_IDENT.split(name) if p]
    ident = "".join(p[:1].upper() + p[1:] for p in parts) or "Network"
    if ident[0].isdigit():
        ident = f"Net{ident}"
    return ident
