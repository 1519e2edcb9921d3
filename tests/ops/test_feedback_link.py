"""The direct feedback link between Ray workers and the executor, on real sockets."""

from __future__ import annotations

import logging
import socket
import struct
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from forge_ops.execution._feedback_link import (
    FeedbackListener,
    FeedbackSender,
    encode_frame,
    make_route,
    parse_route,
)
from forge_ops.execution._task import TaskEvent, TaskEventKind


class Served:
    """A listener on loopback, served by a thread, recording what it delivers."""

    def __init__(self) -> None:
        self.frames: list[tuple[str, int, list[TaskEvent]]] = []
        self.listener = FeedbackListener("127.0.0.1", lambda *frame: self.frames.append(frame))
        self._stop = False
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop:
            self.listener.serve(0.05)

    def raw(self, token: bytes | None = None) -> socket.socket:
        """A connection that has sent ``token`` (the listener's own by default)."""
        host, port = self.listener.address.rsplit(":", 1)
        sock = socket.create_connection((host, int(port)), timeout=5)
        sock.sendall(self.listener.token if token is None else token)
        return sock

    def wait_for(self, count: int) -> None:
        deadline = time.monotonic() + 5
        while len(self.frames) < count and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(self.frames) >= count, self.frames

    def close(self) -> None:
        self._stop = True
        self.listener.wake()
        self._thread.join(5)
        self.listener.close()


@pytest.fixture
def served() -> Iterator[Served]:
    server = Served()
    yield server
    server.close()


def feedback(job: str, *items: tuple[Any, ...]) -> TaskEvent:
    return TaskEvent(job, TaskEventKind.FEEDBACK, {"items": list(items), "pid": 7})


def closed_by_peer(sock: socket.socket) -> bool:
    sock.settimeout(5)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


def test_frames_arrive_in_order_with_their_events(served: Served) -> None:
    with FeedbackSender(served.listener.address, served.listener.token) as sender:
        for seq in range(1, 51):
            assert sender.send("J:0:1", seq, [
                feedback("J", ("console", "stdout", f"line {seq}\n"),
                         ("graph", "loss", "error", seq, 0.5))])
    served.wait_for(50)
    assert [seq for _, seq, _ in served.frames] == list(range(1, 51))
    key, seq, events = served.frames[-1]
    assert key == "J:0:1"
    assert events == [feedback("J", ("console", "stdout", "line 50\n"),
                               ("graph", "loss", "error", 50, 0.5))]  # tuples, as sent


def test_a_frame_split_across_reads_is_put_back_together(served: Served) -> None:
    sock = served.raw()
    frame = encode_frame("K:0:1", 1, [TaskEvent("K", TaskEventKind.STARTED, {"pid": 3})])
    for i in range(0, len(frame), 5):
        sock.sendall(frame[i:i + 5])
        time.sleep(0.002)
    served.wait_for(1)
    assert served.frames == [("K:0:1", 1, [TaskEvent("K", TaskEventKind.STARTED, {"pid": 3})])]
    sock.close()


@pytest.mark.parametrize("bad", ["wrong token", "malformed frame", "overflowing seq",
                                 "oversized frame"])
def test_a_bad_connection_is_closed_and_delivers_nothing(
        served: Served, bad: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    good_frame = encode_frame("J:0:1", 1, [feedback("J", ("console", "stdout", "x"))])
    if bad == "wrong token":
        sock = served.raw(b"0" * len(served.listener.token))
        sock.sendall(good_frame)
    elif bad == "malformed frame":
        sock = served.raw()
        sock.sendall(struct.pack(">I", 9) + b"not json!" + good_frame)
    elif bad == "overflowing seq":
        body = b'{"key":"J:0:1","seq":1e400,"events":[]}'
        sock = served.raw()
        sock.sendall(struct.pack(">I", len(body)) + body + good_frame)
    else:
        sock = served.raw()
        sock.sendall(struct.pack(">I", 1 << 30) + b"x" * 100)
    assert closed_by_peer(sock)
    sock.close()
    assert served.frames == []
    why = {"wrong token": "wrong token", "malformed frame": "malformed frame",
           "overflowing seq": "malformed frame", "oversized frame": "at most"}[bad]
    assert any(why in record.getMessage() for record in caplog.records)
    # The listener goes on serving well-behaved workers.
    with FeedbackSender(served.listener.address, served.listener.token) as sender:
        assert sender.send("J:0:2", 1, [feedback("J", ("console", "stdout", "y"))])
    served.wait_for(1)
    assert [key for key, _, _ in served.frames] == ["J:0:2"]


def test_a_connection_that_sends_no_token_is_closed(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr("forge_ops.execution._feedback_link.AUTH_SECONDS", 0.2)
    server = Served()
    try:
        silent = server.raw(b"")
        assert closed_by_peer(silent)
        assert any("no token" in record.getMessage() for record in caplog.records)
        silent.close()
    finally:
        server.close()


def test_a_sender_to_a_closed_listener_fails_instead_of_hanging() -> None:
    server = Served()
    address, token = server.listener.address, server.listener.token
    with FeedbackSender(address, token) as sender:
        server.close()
        results = [sender.send("J:0:1", seq, [feedback("J", ("console", "stdout", "z" * 4096))])
                   for seq in range(1, 200)]
    assert results[-1] is False  # the worker then pushes to the relay actor
    with pytest.raises(OSError):
        FeedbackSender(address, token)


def test_the_route_names_the_relay_and_the_link() -> None:
    server = Served()
    try:
        route = make_route("forge-feedback-abc", server.listener)
        assert parse_route(route) == ("forge-feedback-abc", server.listener.address,
                                      server.listener.token)
        assert parse_route(make_route("forge-feedback-abc", None)) == (
            "forge-feedback-abc", None, None)
    finally:
        server.close()
