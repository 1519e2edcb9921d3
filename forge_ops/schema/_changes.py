"""The vocabulary of a semantic diff: what changed (Action, Target), one Change with the sentence
a person would write, and how values and code are rendered in those sentences."""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

_VALUE_WIDTH = 40


class Action(StrEnum):
    ADDED = "added"
    REMOVED = "removed"
    RENAMED = "renamed"
    CHANGED = "changed"
    CONNECTED = "connected"
    DISCONNECTED = "disconnected"
    EDITED = "edited"


class Target(StrEnum):
    PROJECT = "project"
    OPERATION = "operation"
    LAYER = "layer"
    PIPELINE = "pipeline"
    NODE = "node"
    ATTRIBUTE = "attribute"
    REFERENCE = "reference"
    SETTING = "setting"
    CONNECTION = "connection"
    ARCHITECTURE = "architecture"
    ARCH_LAYER = "architecture layer"
    CODE = "code"
    INPUT_SHAPE = "input shape"
    EXECUTION = "execution"
    ARTIFACT = "artifact"
    SWEEP = "sweep"


Scope = tuple[str, str, str]
"""The entry a change belongs to: (collection, id, display name), e.g. a pipeline."""


@dataclass(frozen=True)
class Change:
    """One semantic change between two snapshots."""

    action: Action
    target: Target
    text: str
    """The sentence a person would write for this change alone."""
    scope: Scope
    """The entry the change belongs to: (collection, id, display name), e.g. a pipeline."""
    path: tuple[str, ...] = ()
    """Keys from the document root to what changed."""
    old: Any = None
    new: Any = None
    lines_added: int = 0
    lines_removed: int = 0
    detail: str | None = field(default=None, compare=False)
    """A unified diff for code edits (for ``forge show``)."""

    def to_json(self) -> dict[str, Any]:
        return {
            "action": str(self.action),
            "target": str(self.target),
            "text": self.text,
            "scope": list(self.scope),
            "path": list(self.path),
            "old": self.old,
            "new": self.new,
            "lines_added": self.lines_added,
            "lines_removed": self.lines_removed,
        }


def format_value(value: Any) -> str:
    """Render an attribute value briefly, Python-style (strings quoted, long values cut)."""
    if isinstance(value, str):
        text = repr(value)
    elif value is None or isinstance(value, bool | int | float):
        text = repr(value)
    else:
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
    return text if len(text) <= _VALUE_WIDTH else text[: _VALUE_WIDTH - 1] + "…"


def code_diff(old: str, new: str, label: str = "code") -> tuple[int, int, str]:
    """Return (lines added, lines removed, unified diff) between two versions of code."""
    diff = list(
        difflib.unified_diff(
            old.splitlines(), new.splitlines(), f"a/{label}", f"b/{label}", lineterm="", n=2
        )
    )
    added = sum(1 for line in diff if line.startswith("+") and not line.startswith("+++"))
    removed = sum(1 for line in diff if line.startswith("-") and not line.startswith("---"))
    return added, removed, "\n".join(diff)
