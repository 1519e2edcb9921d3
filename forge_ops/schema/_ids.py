"""Identifiers and timestamps used in documents."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime


def new_id() -> str:
    """Return a short random hex id (8 characters) for a document entry."""
    return secrets.token_hex(4)


def now_iso(timespec: str = "seconds") -> str:
    """Return the current UTC time as an ISO 8601 string (``timespec`` as for
    :meth:`datetime.isoformat`: documents use seconds, job and artifact records milliseconds)."""
    return datetime.now(UTC).isoformat(timespec=timespec)
