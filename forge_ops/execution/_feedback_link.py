"""A direct TCP link from Ray workers to the executor that carries live feedback.

A Ray actor call costs the relay, the caller and Ray's daemons about a millisecond of CPU each
(ad-hoc probe: a job plotting every 20 ms cost the relay actor and the driver 2–3% of a core
each, CPU that a training job on the same cores then lacks). A frame on a socket costs
microseconds, so workers send feedback to a listener in the executor's process; the relay
actor is the fallback for a worker that cannot reach it (a firewall between nodes, Ray Client).

Protocol: a worker connects, sends the executor's token (``TOKEN_BYTES`` bytes), then frames
of a 4-byte big-endian length and a UTF-8 JSON body ``{"key": attempt key, "seq": 1, 2, …,
"events": [[job id, event kind, data], …]}``. Frames of one connection arrive in order, so the
executor knows an attempt's feedback is all in once it has the ``seq`` the attempt reported.
A connection that sends a wrong token, an oversized or malformed frame, or no token within
``AUTH_SECONDS``, is closed; nothing it sent is delivered.
"""

from __future__ import annotations

import hmac
import json
import logging
import secrets
import selectors
import socket
import struct
import time
from collections.abc import Callable

from ._task import TaskEvent, TaskEventKind

_log = logging.getLogger(__name__)
TOKEN_BYTES = 32
#: Feedback is small (console lines are capped, images travel as artifact hashes).
MAX_FRAME_BYTES = 16 * 1024 * 1024
#: How long a worker waits to connect, or for the executor to take a frame, before it falls
#: back to the relay actor.
SEND_TIMEOUT_SECONDS = 2.0
#: How long a new connection may take to send the token (the port may face a network).
AUTH_SECONDS = 5.0
_LENGTH = struct.Struct(">I")

#: What the listener hands on: (attempt key, seq, events).
Deliver = Callable[[str, int, list[TaskEvent]], None]


def encode_frame(key: str, seq: int, events: list[TaskEvent]) -> bytes:
    body = json.dumps({"key": key, "seq": seq,
                       "events": [[e.job_id, e.kind.value, e.data] for e in events]},
                      separators=(",", ":")).encode()
    return _LENGTH.pack(len(body)) + body


def decode_frame(body: bytes) -> tuple[str, int, list[TaskEvent]]:
    """The frame's key, seq and events; raises (ValueError, KeyError, …) if malformed."""
    frame = json.loads(body)
    events = []
    for job_id, kind, data in frame["events"]:
        if "items" in data:  # JSON made the items' tuples lists
            data["items"] = [tuple(item) for item in data["items"]]
        events.append(TaskEvent(str(job_id), TaskEventKind(kind), dict(data)))
    return str(frame["key"]), int(frame["seq"]), events


class _Connection:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = bytearray()
        self.authenticated = False
        self.deadline = time.monotonic() + AUTH_SECONDS


class FeedbackListener:
    """The executor's end: accepts workers' connections and hands their frames to ``deliver``.

    It owns no thread: the executor's feedback thread calls ``serve`` in its loop (with the
    relay poll between calls), and ``wake`` from another thread ends a ``serve`` early.
    """

    def __init__(self, host: str, deliver: Deliver) -> None:
        self.token = secrets.token_hex(TOKEN_BYTES // 2).encode()
        self._deliver = deliver
        self._selector = selectors.DefaultSelector()
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._server = socket.create_server((host, 0), family=family, backlog=64)
        self._server.setblocking(False)
        self._selector.register(self._server, selectors.EVENT_READ)
        self._wake_reader, self._wake_writer = socket.socketpair()
        self._wake_reader.setblocking(False)
        self._wake_writer.setblocking(False)
        self._selector.register(self._wake_reader, selectors.EVENT_READ)
        self.address = f"{host}:{self._server.getsockname()[1]}"
        #: Connections that have not sent the token yet.
        self._unproven: set[_Connection] = set()

    def serve(self, timeout: float) -> None:
        """Accept, read and deliver for up to ``timeout`` seconds (less if woken)."""
        for key, _ in self._selector.select(timeout):
            if key.fileobj is self._server:
                self._accept()
            elif key.fileobj is self._wake_reader:
                try:
                    self._wake_reader.recv(4096)
                except BlockingIOError:
                    pass
            else:
                self._read(key.data)
        if self._unproven:
            now = time.monotonic()
            for connection in [c for c in self._unproven if c.deadline <= now]:
                self._drop(connection, f"no token within {AUTH_SECONDS:g} s")

    def wake(self) -> None:
        try:
            self._wake_writer.send(b"\0")
        except (BlockingIOError, OSError):  # already woken, or closed
            pass

    def close(self) -> None:
        for key in list(self._selector.get_map().values()):
            key.fileobj.close()  # type: ignore[union-attr]
        self._selector.close()
        self._wake_writer.close()

    def _accept(self) -> None:
        try:
            sock, _ = self._server.accept()
        except (BlockingIOError, OSError):
            return
        sock.setblocking(False)
        connection = _Connection(sock)
        self._unproven.add(connection)
        self._selector.register(sock, selectors.EVENT_READ, connection)

    def _drop(self, connection: _Connection, why: str | None = None) -> None:
        if why is not None:
            _log.warning("closed a feedback connection from %s: %s",
                         _peer(connection.sock), why)
        self._unproven.discard(connection)
        self._selector.unregister(connection.sock)
        connection.sock.close()

    def _read(self, connection: _Connection) -> None:
        try:
            data = connection.sock.recv(1 << 16)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:  # the worker went away
            self._drop(connection)
            return
        buffer = connection.buffer
        buffer += data
        if not connection.authenticated:
            if len(buffer) < TOKEN_BYTES:
                return
            if not hmac.compare_digest(bytes(buffer[:TOKEN_BYTES]), self.token):
                self._drop(connection, "wrong token")
                return
            connection.authenticated = True
            self._unproven.discard(connection)
            del buffer[:TOKEN_BYTES]
        while len(buffer) >= _LENGTH.size:
            (length,) = _LENGTH.unpack_from(buffer)
            if length > MAX_FRAME_BYTES:
                self._drop(connection, f"a frame of {length} bytes (at most "
                                       f"{MAX_FRAME_BYTES} are accepted)")
                return
            if len(buffer) < _LENGTH.size + length:
                return
            body = bytes(buffer[_LENGTH.size:_LENGTH.size + length])
            del buffer[:_LENGTH.size + length]
            try:
                frame = decode_frame(body)
            except Exception as exc:  # whatever the bytes hold, only this connection suffers
                self._drop(connection, f"a malformed frame ({type(exc).__name__}: {exc})")
                return
            self._deliver(*frame)


def _peer(sock: socket.socket) -> str:
    try:
        host, port = sock.getpeername()[:2]
        return f"{host}:{port}"
    except OSError:
        return "a closed socket"


class FeedbackSender:
    """A worker's end: one connection to one executor's listener, shared by its jobs in turn."""

    def __init__(self, address: str, token: bytes) -> None:
        host, port = address.rsplit(":", 1)
        self._sock = socket.create_connection((host, int(port)), timeout=SEND_TIMEOUT_SECONDS)
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._sock.sendall(token)

    def send(self, key: str, seq: int, events: list[TaskEvent]) -> bool:
        """Send one frame; False (and the connection closed) if it could not be sent whole."""
        try:
            self._sock.sendall(encode_frame(key, seq, events))
            return True
        except OSError:
            self._sock.close()
            return False

    def close(self) -> None:
        """Let go of the connection (a worker keeps its sender for life; tests end theirs)."""
        self._sock.close()

    def __enter__(self) -> FeedbackSender:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def parse_route(route: str) -> tuple[str, str | None, bytes | None]:
    """``route`` as the executor passes it to tasks: (relay name, listener address, token)."""
    relay, _, rest = route.partition(" ")
    if not rest:
        return relay, None, None
    address, _, token = rest.partition(" ")
    return relay, address, token.encode()


def make_route(relay: str, listener: FeedbackListener | None) -> str:
    """The one string a task gets for its feedback (a string: Ray passes it fastest)."""
    if listener is None:
        return relay
    return f"{relay} {listener.address} {listener.token.decode()}"
