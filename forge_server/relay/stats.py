"""Counters of what the relay did and refused, shown by ``GET /health``."""

from __future__ import annotations

from dataclasses import asdict, dataclass

__all__ = ["RelayStats"]


@dataclass
class RelayStats:
    connections_opened: int = 0
    updates_applied: int = 0
    malformed_frames: int = 0
    """Frames that broke the protocol (connection closed 4400)."""
    oversized_frames: int = 0
    """Frames above max_frame_bytes (connection closed 1009)."""
    slow_consumers: int = 0
    """Connections dropped because their bounded send queue filled up (4508)."""
    rate_limited: int = 0
    """Connections closed for sending too many messages or bytes per second (4529)."""
    connection_limit: int = 0
    """Connections refused by the per-user / per-IP limit (4530)."""
    rooms_refused: int = 0
    """Joins refused because max_rooms_loaded rooms were loaded (4503)."""
    documents_too_large: int = 0
    """Updates refused because the document would exceed max_document_bytes (4413)."""
    refused_updates: int = 0
    """Document updates from readers refused with permission-denied."""
    awareness_timeouts: int = 0
    """Awareness states removed after the timeout."""
    awareness_foreign: int = 0
    """Awareness entries dropped for changing a client id another connection owns (or owned
    until it left), or for more ids than max_awareness_ids_per_connection."""
    awareness_renamed: int = 0
    """Awareness states whose ``user.name`` the relay set to the connection's account."""
    awareness_refused: int = 0
    """Awareness states dropped: above max_awareness_state_bytes, or (with accounts) not a JSON
    object, which leaves no ``user`` to bind to the account."""
    awareness_throttled: int = 0
    """Awareness updates held back (merged, relayed later) by max_awareness_updates_per_second."""
    auth_failures: int = 0
    """Upgrades refused with 401 or 403."""
    offenders_refused: int = 0
    """Upgrades refused with 429 because the client sent malformed frames recently."""
    documents_reloaded: int = 0
    """Live documents rebuilt from the store after an update yrs panicked on or left pending."""

    def as_dict(self) -> dict[str, int]:
        return asdict(self)
