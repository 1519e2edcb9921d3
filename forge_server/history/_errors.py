"""Errors of the version-control engine, each with the HTTP status it maps to."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

from forge_server.http_api import RequestError


class HistoryError(RequestError):
    """A history request that cannot be done; the message says what to do instead."""


class NotFound(HistoryError):
    status = 404


class Conflict(HistoryError):
    status = 409


def nearest(name: str, candidates: Iterable[str], what: str) -> str:
    """`` (did you mean: a, b?)``-style hint listing the closest known names, or ''."""
    close = difflib.get_close_matches(name, list(candidates), n=3, cutoff=0.5)
    return f"; did you mean {', '.join(repr(c) for c in close)}?" if close else f"; {what}"
