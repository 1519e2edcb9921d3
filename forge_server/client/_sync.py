"""The sync client: keeps a pycrdt ``Doc`` in sync with one relay room over a transport."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from enum import StrEnum
from types import TracebackType

from pycrdt import Doc, TransactionEvent, merge_updates

from forge_server.relay.protocol import (
    EMPTY_UPDATE,
    AuthMessage,
    AwarenessMessage,
    ProtocolError,
    QueryAwarenessMessage,
    SyncMessage,
    SyncType,
    decode_awareness,
    decode_message,
    encode_message,
    is_crdt_panic,
)

from ._awareness import Awareness
from ._transport import (
    AuthRefused,
    Connector,
    SyncError,
    Transport,
    TransportClosed,
    room_url,
    websocket_connector,
)

__all__ = ["ConnectionStatus", "SyncClient", "open_document"]

# Close codes after which reconnecting cannot help (the same state would be refused again).
def _final_refusal(code: int | None, reason: str) -> SyncError | None:
    """The error for a close the relay means as final (4400-4499: reconnecting cannot help),
    else None. A refused token, role or room is an :class:`AuthRefused` (status 401/403/404),
    as when the refusal came as an HTTP answer."""
    if code is None or not 4400 <= code < 4500:
        return None
    if code in (4401, 4403, 4404):
        return AuthRefused(code - 4000, f"the relay refused the connection ({code}): {reason}")
    return SyncError(f"the relay closed the room for good ({code}): {reason}")


class ConnectionStatus(StrEnum):
    CONNECTING = "connecting"  # first attempt
    CONNECTED = "connected"
    RECONNECTING = "reconnecting"  # lost the connection, retrying with backoff
    OFFLINE = "offline"  # not started, stopped, or refused for good (see SyncClient.error)


class SyncClient:
    """Keeps ``doc`` in sync with one relay room; an async context manager."""

    def __init__(
        self,
        url: str,
        doc: Doc | None = None,
        *,
        token: str | None = None,
        connector: Connector | None = None,
        backoff_initial: float = 0.1,
        backoff_max: float = 5.0,
        max_messages_per_second: float = 250.0,
        log: logging.Logger | None = None,
    ) -> None:
        self.url = url
        self.doc: Doc = doc if doc is not None else Doc()
        self.log = log or logging.getLogger(__name__)
        self.status = ConnectionStatus.OFFLINE
        self.error: SyncError | None = None
        self.permission_denied: str | None = None  # last refusal reason (reader's edits)
        self.awareness = Awareness(self.doc.client_id, self._send_awareness)
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        # Below the relay's per-connection limit (500/s by default); while paced, queued
        # local updates merge into fewer, larger messages.
        self.max_messages_per_second = max_messages_per_second
        self.connections = 0  # successful connections so far
        self._close_session: Callable[[], Awaitable[None]] | None = None
        if connector is None:
            connector, self._close_session = websocket_connector(url, token)
        self._connector = connector
        self._status_callbacks: list[Callable[[ConnectionStatus], None]] = []
        self._denied_callbacks: list[Callable[[str], None]] = []
        self._synced = asyncio.Event()
        self._changed = asyncio.Event()  # set on any status / sync / error change
        self._outbox: deque[tuple[bool, bytes]] = deque()  # (is_update, message or update)
        self._outbox_ready = asyncio.Event()
        self._step2_waiters: deque[asyncio.Future[None]] = deque()
        self._handshake_done = False
        self._applying_remote = False
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._transport: Transport | None = None
        self._subscription = self.doc.observe(self._on_local_update)

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        if self._task is None:
            self._stopping = False
            self._set_status(ConnectionStatus.CONNECTING)
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            if self._transport is not None and self.awareness.local_state is not None:
                # Say goodbye so others see us leave now rather than after a timeout.
                self.awareness.local_state = None
                self.awareness.clock += 1
                with contextlib.suppress(Exception):  # a dead relay must not hold stop() up
                    await asyncio.wait_for(
                        self._transport.send(self.awareness.local_message()), timeout=1.0
                    )
            self._stopping = True
            # Cancel until it ends: a cancellation landing inside a library's own timeout
            # handling can be swallowed, and a stopped client must never linger.
            while not task.done():
                task.cancel()
                await asyncio.wait([task], timeout=1.0)
            with contextlib.suppress(asyncio.CancelledError):
                task.result()
        if self._close_session is not None:
            await self._close_session()
        with contextlib.suppress(ValueError):
            self.doc.unobserve(self._subscription)
        self._set_status(ConnectionStatus.OFFLINE)

    async def __aenter__(self) -> SyncClient:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # -- state -----------------------------------------------------------------------------

    @property
    def is_synced(self) -> bool:
        return self._synced.is_set()

    def on_status(self, callback: Callable[[ConnectionStatus], None]) -> Callable[[], None]:
        """Call ``callback(status)`` on every status change; returns unsubscribe."""
        self._status_callbacks.append(callback)
        return lambda: (
            self._status_callbacks.remove(callback) if callback in self._status_callbacks else None
        )

    def on_permission_denied(self, callback: Callable[[str], None]) -> Callable[[], None]:
        """Call ``callback(reason)`` when the relay refuses an edit (a reader's); unsubscribe."""
        self._denied_callbacks.append(callback)
        return lambda: (
            self._denied_callbacks.remove(callback) if callback in self._denied_callbacks else None
        )

    async def synced(self, timeout: float | None = None) -> None:  # noqa: ASYNC109
        """Wait until the document is in sync with the relay (raises if refused for good)."""
        async with asyncio.timeout(timeout):
            while not self._synced.is_set():
                if self.error is not None:
                    raise self.error
                self._changed.clear()
                await self._changed.wait()
        if self.error is not None:
            raise self.error

    async def flush(self, timeout: float | None = None) -> None:  # noqa: ASYNC109
        """Wait until the relay has stored every local edit made so far.

        Sends a sync step 1 after everything queued: the relay answers a step 1 only after it
        has processed and persisted the frames before it on the same connection.
        """
        async with asyncio.timeout(timeout):
            while True:
                await self.synced()
                while not self._handshake_done:
                    if self.error is not None:
                        raise self.error
                    self._changed.clear()
                    await self._changed.wait()
                waiter = self._queue_step1()
                try:
                    await waiter
                    return
                except TransportClosed:
                    continue  # connection dropped; the re-sync will carry the edits

    # -- internals -------------------------------------------------------------------------

    def _set_status(self, status: ConnectionStatus) -> None:
        if status == self.status:
            return
        self.status = status
        self._changed.set()
        for callback in list(self._status_callbacks):
            try:
                callback(status)
            except Exception:
                self.log.exception("status callback failed")

    def _on_local_update(self, event: TransactionEvent) -> None:
        if self._applying_remote or self._transport is None:
            return  # offline edits travel with the next handshake's sync step 2
        update = event.update
        if update != EMPTY_UPDATE:
            self._enqueue(True, update)

    def _send_awareness(self, message: bytes) -> None:
        if self._transport is not None:
            self._enqueue(False, message)

    def _enqueue(self, is_update: bool, data: bytes) -> None:
        self._outbox.append((is_update, data))
        self._outbox_ready.set()

    def _queue_step1(self) -> asyncio.Future[None]:
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._step2_waiters.append(waiter)
        self._enqueue(False, encode_message(SyncMessage(SyncType.STEP1, self.doc.get_state())))
        return waiter

    async def _run(self) -> None:
        delay = self.backoff_initial
        while not self._stopping:
            try:
                transport = await self._connector()
            except AuthRefused as exc:
                self.error = exc
                self.log.error("%s", exc)
                self._set_status(ConnectionStatus.OFFLINE)
                return
            except (OSError, TransportClosed, TimeoutError, ValueError) as exc:
                self._retrying(f"cannot connect: {exc}")
            except Exception as exc:  # aiohttp client errors
                self._retrying(f"cannot connect: {exc}")
            else:
                delay = self.backoff_initial
                try:
                    await self._session(transport)
                except TransportClosed as exc:
                    final = _final_refusal(exc.code, exc.reason)
                    if final is not None:
                        self.error = final
                        self.log.error("%s", self.error)
                        self._set_status(ConnectionStatus.OFFLINE)
                        return
                    self._retrying(str(exc))
                finally:
                    await self._end_session(transport)
            await asyncio.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, self.backoff_max)

    def _retrying(self, why: str) -> None:
        self.log.info("sync with %s interrupted (%s); reconnecting", self.url, why)
        self._set_status(ConnectionStatus.RECONNECTING)

    async def _end_session(self, transport: Transport) -> None:
        self._transport = None
        self._handshake_done = False
        self._synced.clear()
        self._outbox.clear()
        while self._step2_waiters:
            waiter = self._step2_waiters.popleft()
            if not waiter.done():
                waiter.set_exception(TransportClosed(None, "connection lost"))
                waiter.exception()  # retrieved here; flush() sees it when awaiting
        self.awareness.forget_others()
        self._changed.set()
        await transport.close()

    async def _session(self, transport: Transport) -> None:
        self._transport = transport
        self.connections += 1
        self._set_status(ConnectionStatus.CONNECTED)
        self._outbox.clear()
        handshake = self._queue_step1()
        handshake.add_done_callback(self._on_handshake)
        if self.awareness.local_state is not None:
            self._enqueue(False, self.awareness.local_message())
        sender = asyncio.get_running_loop().create_task(self._send_loop(transport))
        ticker = asyncio.get_running_loop().create_task(self._tick())
        try:
            while True:
                await self._handle(await transport.recv())
                if sender.done():
                    sender.result()  # re-raise a send failure
        finally:
            sender.cancel()
            ticker.cancel()

    def _on_handshake(self, future: asyncio.Future[None]) -> None:
        if not future.cancelled() and future.exception() is None:
            self._synced.set()
            self._changed.set()

    async def _send_loop(self, transport: Transport) -> None:
        rate = self.max_messages_per_second
        allowance, stamp = rate, time.monotonic()
        while True:
            if not self._outbox:
                self._outbox_ready.clear()
                await self._outbox_ready.wait()
                continue
            now = time.monotonic()
            allowance = min(rate, allowance + (now - stamp) * rate)
            stamp = now
            if allowance < 1.0:
                await asyncio.sleep((1.0 - allowance) / rate)
                continue
            allowance -= 1.0
            is_update, data = self._outbox.popleft()
            if is_update:
                # Merge a burst of local updates into one message.
                batch = [data]
                while self._outbox and self._outbox[0][0]:
                    batch.append(self._outbox.popleft()[1])
                update = batch[0] if len(batch) == 1 else merge_updates(*batch)
                data = encode_message(SyncMessage(SyncType.UPDATE, update))
            await transport.send(data)

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            self.awareness.renew_and_expire()

    async def _handle(self, data: bytes) -> None:
        try:
            message = decode_message(data)
        except ProtocolError as exc:
            raise TransportClosed(None, f"relay sent a malformed frame: {exc}") from exc
        if isinstance(message, SyncMessage):
            if message.kind == SyncType.STEP1:
                update = self.doc.get_update(message.payload)
                self._enqueue(False, encode_message(SyncMessage(SyncType.STEP2, update)))
                self._handshake_done = True
                self._changed.set()
                return
            self._apply_remote(message.payload)
            if message.kind == SyncType.STEP2 and self._step2_waiters:
                waiter = self._step2_waiters.popleft()
                if not waiter.done():
                    waiter.set_result(None)
        elif isinstance(message, AwarenessMessage):
            try:
                self.awareness.apply(decode_awareness(message.payload))
            except ProtocolError as exc:
                self.log.warning("ignored a malformed awareness update: %s", exc)
        elif isinstance(message, AuthMessage):
            self.permission_denied = message.reason
            self.log.warning("relay refused an edit: %s", message.reason)
            self._changed.set()
            for callback in list(self._denied_callbacks):
                try:
                    callback(message.reason)
                except Exception:
                    self.log.exception("permission-denied callback failed")
        elif isinstance(message, QueryAwarenessMessage):
            if self.awareness.local_state is not None:
                self._enqueue(False, self.awareness.local_message())

    def _apply_remote(self, update: bytes) -> None:
        self._applying_remote = True
        try:
            self.doc.apply_update(update)
        except ValueError as exc:
            self.log.warning("ignored an update the relay sent that does not decode: %s", exc)
        except BaseException as exc:
            if not is_crdt_panic(exc):
                raise
            # A Rust panic (a BaseException) would end the sync task for good; reconnecting
            # re-syncs the whole state instead.
            raise TransportClosed(None, f"pycrdt failed on a relay update: {exc}") from exc
        finally:
            self._applying_remote = False


@contextlib.asynccontextmanager
async def open_document(
    server_url: str,
    token: str | None,
    room: str,
    *,
    doc: Doc | None = None,
    timeout: float = 10.0,  # noqa: ASYNC109
) -> AsyncIterator[SyncClient]:
    """Open a room, wait until it is synced, yield the client; on a normal exit wait until
    the relay has stored the local edits. Raises :class:`SyncError` with a clear message."""
    client = SyncClient(room_url(server_url, room), doc, token=token)
    async with client:
        try:
            await client.synced(timeout)
        except TimeoutError:
            raise SyncError(
                f"could not sync room {room!r} with {server_url} within {timeout:g}s "
                f"(status: {client.status}); is `forge serve` running there?"
            ) from None
        yield client
        try:
            await client.flush(timeout)
        except TimeoutError:
            raise SyncError(
                f"edits to room {room!r} were not confirmed by {server_url} within {timeout:g}s"
            ) from None
