"""One client's WebSocket in a room: bounded send queue, rate limits, message dispatch.

A connection reads frames, decodes them strictly and hands them to its room. It never
lets a peer grow the relay's memory: outgoing messages wait in a queue bounded in messages and
bytes, and a client that stops reading is disconnected (logged, counted) when the queue fills.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from enum import IntEnum
from typing import Protocol

from aiohttp import WSMsgType, web

from forge_server.principal import Principal
from forge_server.relay.config import RelayConfig
from forge_server.relay.offenders import OffenderTracker
from forge_server.relay.protocol import (
    EMPTY_UPDATE,
    AuthMessage,
    AwarenessEntry,
    AwarenessMessage,
    ProtocolError,
    QueryAwarenessMessage,
    SyncMessage,
    SyncType,
    decode_awareness,
    decode_message,
    encode_message,
    websocket_frame,
)
from forge_server.relay.stats import RelayStats

__all__ = [
    "EMPTY_UPDATE",
    "CloseCode",
    "Connection",
    "ConnectionLimiter",
    "ConnectionRoom",
    "RelayRefusal",
]

_ids = itertools.count(1)
# Frames go straight to a socket whose unsent buffer stays below this (asyncio's default high
# water mark); beyond it they wait in the connection's bounded queue.
_DIRECT_WRITE_BYTES = 64 * 1024
_DRAIN_POLL_S = 0.005


class CloseCode(IntEnum):
    """WebSocket close codes the relay uses; the close reason says which limit or rule.

    y-websocket clients treat 4400-4499 as final (reconnecting cannot help: a bad frame, a
    revoked token) and retry every other code with backoff, 4500-4599 being "try again later":
    limits that pass (a rate, a full queue, too many connections) use that band."""

    NORMAL = 1000
    GOING_AWAY = 1001  # server shutting down
    MESSAGE_TOO_BIG = 1009  # frame above max_frame_bytes (sent by aiohttp)
    INTERNAL_ERROR = 1011
    MALFORMED = 4400  # frame or update that breaks the protocol
    UNAUTHENTICATED = 4401  # no valid token (at connect, or revoked/expired while open)
    FORBIDDEN = 4403  # no role on the project (at connect, or removed while the socket was open)
    NOT_FOUND = 4404  # no such project, execution, or (for readers) branch
    DOCUMENT_TOO_LARGE = 4413
    AT_CAPACITY = 4503  # max_rooms_loaded reached
    SLOW_CONSUMER = 4508  # send queue full: the client is not reading
    RATE_LIMITED = 4529  # messages or bytes per second
    TOO_MANY_CONNECTIONS = 4530  # per user


# Closes that wait for the client's close reply; every refusal ends the socket right after
# sending its close frame.
_CLOSE_HANDSHAKE = frozenset({CloseCode.NORMAL, CloseCode.GOING_AWAY})


class RelayRefusal(Exception):
    """Something a connection did that ends it with ``code`` and ``reason``."""

    def __init__(self, code: CloseCode, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class _TokenBucket:
    """Allows ``rate`` units per second on average, bursts up to one second's worth."""

    __slots__ = ("capacity", "level", "rate", "stamp")

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.capacity = rate
        self.level = rate
        self.stamp = time.monotonic()

    def take(self, amount: float) -> bool:
        now = time.monotonic()
        self.level = min(self.capacity, self.level + (now - self.stamp) * self.rate)
        self.stamp = now
        if amount > self.level:
            # A single frame larger than a second's budget is allowed when the bucket is full.
            if amount > self.capacity and self.level >= self.capacity:
                self.level = 0.0
                return True
            return False
        self.level -= amount
        return True

    def seconds_until(self, amount: float) -> float:
        """How long until ``amount`` can be taken (0 when it can be now)."""
        level = min(self.capacity, self.level + (time.monotonic() - self.stamp) * self.rate)
        return max(0.0, (min(amount, self.capacity) - level) / self.rate)


class ConnectionLimiter:
    """Counts open connections per authenticated user, and upgrades per IP address while they
    are being authenticated: behind an SSH tunnel or a proxy every user shares one address, so
    an address limit on open connections would let one user lock everyone out."""

    def __init__(self, config: RelayConfig) -> None:
        self.config = config
        self.per_user: dict[str, int] = {}
        self.per_ip: dict[str, int] = {}  # upgrades not yet authenticated

    @property
    def total(self) -> int:
        return sum(self.per_user.values())

    @contextmanager
    def authenticating(self, ip: str) -> Iterator[None]:
        """Hold one of the address's slots while its upgrade is authenticated; raises
        :class:`RelayRefusal` when the address has too many upgrades in flight."""
        if self.per_ip.get(ip, 0) >= self.config.max_connections_per_ip:
            raise RelayRefusal(
                CloseCode.TOO_MANY_CONNECTIONS,
                f"address already has {self.config.max_connections_per_ip} connections being "
                "authenticated (max_connections_per_ip)",
            )
        with _counted(self.per_ip, ip):
            yield

    @contextmanager
    def admit(self, user: str) -> Iterator[None]:
        """Hold one of the user's slots for the duration; raises :class:`RelayRefusal` when the
        user is over the limit."""
        if self.per_user.get(user, 0) >= self.config.max_connections_per_user:
            raise RelayRefusal(
                CloseCode.TOO_MANY_CONNECTIONS,
                f"user already has {self.config.max_connections_per_user} connections "
                "(max_connections_per_user)",
            )
        with _counted(self.per_user, user):
            yield


@contextmanager
def _counted(counts: dict[str, int], key: str) -> Iterator[None]:
    counts[key] = counts.get(key, 0) + 1
    try:
        yield
    finally:
        counts[key] -= 1
        if counts[key] == 0:
            del counts[key]


class ConnectionRoom(Protocol):
    """What a connection needs from the room it serves (:class:`~forge_server.relay.room.Room`)."""

    name: str

    def join(self, conn: Connection) -> None: ...

    def leave(self, conn: Connection) -> None: ...

    async def written(self) -> None:
        """Wait until every update applied so far is committed to the store."""
        ...

    def sync_step2(self, state_vector: bytes) -> bytes:
        """The reply to a peer's sync step 1 (raises ``ProtocolError`` on a bad vector)."""
        ...

    def apply_client_update(self, update: bytes, origin: Connection) -> None: ...

    def apply_awareness(self, entries: list[AwarenessEntry], conn: Connection) -> None: ...

    def awareness_message(self) -> bytes | None: ...


class Connection:
    """A client connected to one room."""

    def __init__(
        self,
        ws: web.WebSocketResponse,
        principal: Principal,
        *,
        peer: str,
        config: RelayConfig,
        stats: RelayStats,
        log: logging.Logger,
        transport: asyncio.BaseTransport | None = None,
        offenders: OffenderTracker | None = None,
        offender_key: str | None = None,
        token: str | None = None,
        anonymous: bool = False,
    ) -> None:
        self.id = next(_ids)
        self.ws = ws
        self.principal = principal
        # Without accounts (--no-auth) everyone is one principal: presence names are the
        # clients' own, as there is no account to bind them to.
        self.anonymous = anonymous
        self.token = token  # checked again while the socket is open (revocation closes it)
        self.peer = peer
        self.transport = transport  # the socket, to drop a peer that will not take a close
        self.offenders = offenders  # where a malformed frame counts against this client
        self.offender_key = offender_key or peer
        self.config = config
        self.stats = stats
        self.log = log
        self.room: ConnectionRoom | None = None
        self.awareness_ids: set[int] = set()  # awareness client ids this connection owns
        self.awareness_budget = _TokenBucket(config.max_awareness_updates_per_second)
        self.closed = False
        self.close_code: int | None = None
        self._queue: deque[bytes] = deque()
        self._queued_bytes = 0
        self._wakeup = asyncio.Event()
        self._writer: asyncio.Task[None] | None = None
        self._socket = transport if isinstance(transport, asyncio.WriteTransport) else None
        self._messages = _TokenBucket(config.max_messages_per_second)
        self._bytes = _TokenBucket(config.max_bytes_per_second)

    def __repr__(self) -> str:
        room = self.room.name if self.room else None
        return f"<Connection #{self.id} user={self.principal.user!r} room={room!r}>"

    @property
    def user(self) -> str:
        return self.principal.user

    @property
    def account(self) -> str | None:
        """The account its awareness states are bound to (None without accounts)."""
        return None if self.anonymous else self.principal.user

    @property
    def can_write(self) -> bool:
        return self.principal.role is not None and self.principal.role.can_write

    # -- sending ---------------------------------------------------------------------------

    def send(self, message: bytes) -> None:
        """Queue a message without waiting; a client whose queue is full is disconnected."""
        self.send_frame(websocket_frame(message))

    def send_frame(self, frame: bytes) -> None:
        """Send an encoded frame (see :func:`websocket_frame`) without waiting.

        While the socket keeps up, the frame goes straight to the transport (no task switch);
        otherwise it waits in the bounded queue, and a client whose queue fills is not reading:
        it is disconnected (logged, counted).
        """
        if self.closed or self.close_code is not None:  # closed, or being closed
            return
        transport = self._socket
        if transport is None or transport.is_closing() or self.ws.closed:
            return  # the socket is ending: nothing more can go out on it
        if (
            not self._queue
            and transport.get_write_buffer_size() + len(frame) <= _DIRECT_WRITE_BYTES
        ):
            transport.write(frame)
            return
        if (
            len(self._queue) >= self.config.send_queue_messages
            or self._queued_bytes + len(frame) > self.config.send_queue_bytes
        ):
            self.stats.slow_consumers += 1
            self.log.warning(
                "disconnecting %r: send queue full (%d messages, %d bytes); client is not reading",
                self,
                len(self._queue),
                self._queued_bytes,
            )
            self.abort(CloseCode.SLOW_CONSUMER, "send queue full: client is not reading")
            return
        self._queue.append(frame)
        self._queued_bytes += len(frame)
        self._wakeup.set()

    async def _write_loop(self) -> None:
        """Move queued frames to the socket as its buffer drains."""
        transport = self._socket
        while not self.closed:
            if not self._queue:
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            if transport is None or transport.is_closing() or self.ws.closed:
                self._queue.clear()
                self._queued_bytes = 0
                return
            if transport.get_write_buffer_size() > _DIRECT_WRITE_BYTES:
                # asyncio offers no public "writable again" wait on a transport we do not own
                # (aiohttp's protocol does); a short poll only runs for a client behind.
                await asyncio.sleep(_DRAIN_POLL_S)
                continue
            while self._queue and transport.get_write_buffer_size() <= _DIRECT_WRITE_BYTES:
                frame = self._queue.popleft()
                self._queued_bytes -= len(frame)
                transport.write(frame)

    # -- closing ---------------------------------------------------------------------------

    def abort(self, code: CloseCode, reason: str) -> None:
        """Close from outside the read loop (e.g. a broadcast found the queue full)."""
        if self.closed or self.close_code is not None:  # count and log a refusal once
            return
        self.close_code = code
        asyncio.get_running_loop().create_task(self.close(code, reason))

    async def close(self, code: CloseCode, reason: str) -> None:
        if self.closed:
            return
        self.closed = True
        self.close_code = code
        self._wakeup.set()
        self._queue.clear()
        self._queued_bytes = 0
        if self._writer is not None:
            self._writer.cancel()
        message = reason.encode("utf-8")[:123]  # a close reason holds at most 123 bytes
        closing = asyncio.get_running_loop().create_task(self.ws.close(code=code, message=message))
        if code not in _CLOSE_HANDSHAKE:
            # A refused client gets the close frame (written in the task's first step) and
            # then the end of the socket, without the relay waiting for its reply: a flood of
            # reconnecting bad clients must not hold connections open.
            await asyncio.sleep(0)
            if isinstance(self.transport, asyncio.Transport):
                self.transport.close()  # flushes the close frame, then FIN
        try:
            # A client that does not read may never take the close frame: do not wait long.
            await asyncio.wait_for(closing, timeout=2.0)
        except (TimeoutError, ConnectionError, RuntimeError):
            pass
        if not self.ws.closed or code == CloseCode.SLOW_CONSUMER:
            self._abort_transport()

    def _abort_transport(self) -> None:
        if isinstance(self.transport, asyncio.Transport):
            self.transport.abort()

    # -- receiving -------------------------------------------------------------------------

    async def serve(self, room: ConnectionRoom) -> None:
        """Run the connection until the peer leaves or breaks a rule."""
        self.room = room
        self._writer = asyncio.get_running_loop().create_task(self._write_loop())
        try:
            room.join(self)
            async for msg in self.ws:
                if self.closed:
                    break
                if msg.type == WSMsgType.BINARY:
                    await self._receive(msg.data)
                elif msg.type == WSMsgType.TEXT:
                    self.stats.malformed_frames += 1
                    await self._refuse(CloseCode.MALFORMED, "text frames are not y-websocket")
                elif msg.type == WSMsgType.ERROR:
                    self._on_error(self.ws.exception())
                    break
        except RelayRefusal as exc:
            await self._refuse(exc.code, exc.reason)
        finally:
            if not self.closed:
                await self.close(CloseCode.NORMAL, "bye")
            if self._writer is not None:
                self._writer.cancel()
            room.leave(self)

    def _on_error(self, exc: BaseException | None) -> None:
        code = getattr(exc, "code", None)
        if code == CloseCode.MESSAGE_TOO_BIG:
            self.stats.oversized_frames += 1
            self.log.warning("closed %r: %s (max_frame_bytes)", self, exc)
        else:
            self.log.info("connection %r failed: %s", self, exc)
        self.closed = True

    async def _refuse(self, code: CloseCode, reason: str) -> None:
        self.log.warning("closing %r with %d: %s", self, code, reason)
        if code == CloseCode.MALFORMED and self.offenders is not None:
            self.offenders.strike(self.offender_key)
        await self.close(code, reason)

    async def _receive(self, data: bytes) -> None:
        assert self.room is not None
        if not self._messages.take(1):
            self.stats.rate_limited += 1
            raise RelayRefusal(
                CloseCode.RATE_LIMITED,
                f"more than {self.config.max_messages_per_second:g} messages/s "
                "(max_messages_per_second)",
            )
        if not self._bytes.take(len(data)):
            self.stats.rate_limited += 1
            raise RelayRefusal(
                CloseCode.RATE_LIMITED,
                f"more than {self.config.max_bytes_per_second:g} bytes/s (max_bytes_per_second)",
            )
        try:
            message = decode_message(data)
            if isinstance(message, SyncMessage):
                await self._receive_sync(message)
            elif isinstance(message, AwarenessMessage):
                # States are parsed by the presence table, only those it accepts.
                entries = decode_awareness(message.payload, validate_json=False)
                self.room.apply_awareness(entries, self)
            elif isinstance(message, QueryAwarenessMessage):
                reply = self.room.awareness_message()
                if reply is not None:
                    self.send(reply)
            # An AuthMessage from a client carries nothing the relay acts on.
        except ProtocolError as exc:
            self.stats.malformed_frames += 1
            raise RelayRefusal(CloseCode.MALFORMED, f"malformed frame: {exc}") from exc

    async def _receive_sync(self, message: SyncMessage) -> None:
        assert self.room is not None
        if message.kind == SyncType.STEP1:
            # Answer only with what is on disk, so a client never holds an update the relay
            # could lose in a crash without the client still having it to resend.
            await self.room.written()
            self.send(self.room.sync_step2(message.payload))
            return
        if message.payload == EMPTY_UPDATE:
            return
        if not self.can_write:
            self.stats.refused_updates += 1
            self.log.info("refused a document update from reader %r", self)
            self.send(encode_message(AuthMessage(f"permission denied: {self.user} may only read")))
            return
        self.room.apply_client_update(message.payload, self)
