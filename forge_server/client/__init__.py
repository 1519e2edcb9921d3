"""Python sync client: binds a pycrdt ``Doc`` to a relay room over the y-websocket protocol.

::

    async with open_document("http://127.0.0.1:8700", token, "demo/main") as client:
        client.doc.get("notes", type=Text).insert(0, "hi")
        client.awareness.set_local_state({"user": {"name": "ada"}})
    # leaving the block waits until the relay has stored the edits

:class:`SyncClient` does the handshake (sync step 1/2), sends local updates, applies remote ones,
relays awareness both ways, and reconnects with exponential backoff after a drop; edits made
while disconnected are merged by the re-sync. ``await client.synced()`` waits for the first
(or current) sync; ``client.status`` and ``client.on_status(cb)`` expose the connection state.

The client talks to a :class:`Transport` (send / recv / close), so any channel can carry it;
:func:`websocket_connector` makes the aiohttp WebSocket one.
"""

from __future__ import annotations

from ._awareness import Awareness, AwarenessChange
from ._sync import ConnectionStatus, SyncClient, open_document
from ._transport import (
    AuthRefused,
    SyncError,
    Transport,
    TransportClosed,
    room_url,
    websocket_connector,
)

__all__ = [
    "AuthRefused",
    "Awareness",
    "AwarenessChange",
    "ConnectionStatus",
    "SyncClient",
    "SyncError",
    "Transport",
    "TransportClosed",
    "open_document",
    "room_url",
    "websocket_connector",
]
