"""Attribute values as the editors show them (short, one line) and as users type them."""

from __future__ import annotations

import ast
import json
from typing import Any


def show_value(value: Any, limit: int = 18) -> str:
    """``value`` as one line of at most ``limit`` characters (text as is, the rest as JSON)."""
    text = value if isinstance(value, str) else json.dumps(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def parse_value(text: str) -> Any:
    """A Python literal (numbers, strings, lists, True/None) or else the text itself."""
    try:
        return ast.literal_eval(text.strip())
    except (ValueError, SyntaxError):
        return text
