"""The client's channel to the relay: a small :class:`Transport` Protocol, the aiohttp WebSocket
one, and the errors a connection attempt ends with."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

__all__ = [
    "AuthRefused",
    "Connector",
    "SyncError",
    "Transport",
    "TransportClosed",
    "room_url",
    "websocket_connector",
]


class SyncError(Exception):
    """The client cannot sync; the message says why and what to do."""


class AuthRefused(SyncError):
    """The relay refused the token (401) or the project (403)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class TransportClosed(Exception):
    """The transport is closed; ``code``/``reason`` are the WebSocket close code and reason."""

    def __init__(self, code: int | None = None, reason: str = "") -> None:
        super().__init__(f"connection closed ({code}): {reason}" if code else "connection closed")
        self.code = code
        self.reason = reason


class Transport(Protocol):
    """A message channel to the relay (one y-websocket message per ``send``/``recv``)."""

    async def send(self, message: bytes) -> None: ...

    async def recv(self) -> bytes:
        """The next message; raises :class:`TransportClosed` when the channel ends."""
        ...

    async def close(self) -> None: ...


Connector = Callable[[], Awaitable[Transport]]


def room_url(server_url: str, room: str) -> str:
    """``http(s)://host:port`` (or ``ws(s)://``) + room → the room's WebSocket URL."""
    base = server_url.rstrip("/")
    for plain, secure in (("http://", "ws://"), ("https://", "wss://")):
        if base.startswith(plain):
            base = secure + base[len(plain) :]
    if not base.startswith(("ws://", "wss://")):
        raise ValueError(f"server URL {server_url!r} must start with http://, https://, ws://")
    return f"{base}/sync/{room.strip('/')}"


class _WebSocketTransport:
    def __init__(self, ws: Any) -> None:
        self._ws = ws

    async def send(self, message: bytes) -> None:
        try:
            await self._ws.send_bytes(message)
        except (ConnectionError, RuntimeError) as exc:
            raise TransportClosed(None, str(exc)) from exc

    async def recv(self) -> bytes:
        from aiohttp import WSMsgType

        msg = await self._ws.receive()
        if msg.type == WSMsgType.BINARY:
            return bytes(msg.data)
        if msg.type == WSMsgType.TEXT:
            raise TransportClosed(None, "relay sent a text frame")
        code = self._ws.close_code
        reason = msg.extra if isinstance(msg.extra, str) else ""
        if msg.type == WSMsgType.ERROR:
            reason = str(self._ws.exception() or msg.data)
        raise TransportClosed(code, reason)

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._ws.close(), timeout=2.0)


def websocket_connector(
    url: str,
    token: str | None = None,
    *,
    heartbeat: float = 20.0,
    max_msg_size: int = 256 * 1024 * 1024,
) -> tuple[Connector, Callable[[], Awaitable[None]]]:
    """A connector opening aiohttp WebSockets to ``url``, and a function that closes its session.

    A 401/403 answer raises :class:`AuthRefused`; other failures raise ``OSError`` or
    aiohttp errors, which the client retries.
    """
    import aiohttp

    session: aiohttp.ClientSession | None = None
    headers = {"Authorization": f"Bearer {token}"} if token else {}

    async def connect() -> Transport:
        nonlocal session
        if session is None or session.closed:
            session = aiohttp.ClientSession()
        try:
            ws = await session.ws_connect(
                url,
                headers=headers,
                heartbeat=heartbeat,
                max_msg_size=max_msg_size,
                timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=5.0),
            )
        except aiohttp.WSServerHandshakeError as exc:
            if exc.status in (401, 403, 404):
                what = {401: "refused the token", 403: "refused access to this project",
                        404: "has no such project, branch or execution"}[exc.status]
                raise AuthRefused(
                    exc.status, f"the server {what} ({exc.status}) for {url}"
                ) from exc
            raise
        return _WebSocketTransport(ws)

    async def close() -> None:
        if session is not None:
            await session.close()

    return connect, close
