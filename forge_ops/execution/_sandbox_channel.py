"""The line between an executor and the sandbox it started: pickled messages over a Unix
socket, each with file descriptors if need be (pipes, pidfds), and what a pidfd tells.

Only the executor's side and the sandbox's own server (code of ours, started before any job)
hold the channel; the jobs a sandbox forks close it first thing.
"""

from __future__ import annotations

import os
import pickle
import socket
import struct
import threading
from typing import Any

_HEADER = struct.Struct("!I")
_MAX_FDS = 4


class Channel:
    """Messages both ways over a stream socket (sending is thread-safe)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._send_lock = threading.Lock()

    def fileno(self) -> int:
        return self.sock.fileno()

    def send(self, message: Any, fds: list[int] | None = None) -> None:
        data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
        with self._send_lock:
            # The descriptors ride with the header, so the reader gets them with the message.
            sent = socket.send_fds(self.sock, [_HEADER.pack(len(data))], fds or [])
            if sent < _HEADER.size:
                self.sock.sendall(_HEADER.pack(len(data))[sent:])
            self.sock.sendall(data)

    def recv(self) -> tuple[Any, list[int]]:
        """The next message and the descriptors that came with it; EOFError at the end."""
        header, fds, _, _ = socket.recv_fds(self.sock, _HEADER.size, _MAX_FDS)
        if not header:
            raise EOFError("the other side closed the channel")
        header += self._exactly(_HEADER.size - len(header))
        (size,) = _HEADER.unpack(header)
        message = pickle.loads(self._exactly(size))  # noqa: S301 - the other end is ours
        return message, fds

    def _exactly(self, size: int) -> bytes:
        chunks = []
        while size:
            chunk = self.sock.recv(min(size, 1 << 20))
            if not chunk:
                raise EOFError("the other side closed the channel mid-message")
            chunks.append(chunk)
            size -= len(chunk)
        return b"".join(chunks)

    def close(self) -> None:
        self.sock.close()


def host_pid(pidfd: int) -> int | None:
    """The pid, in this process's PID namespace, of the process a pidfd (from a sandbox with
    its own PID namespace) refers to; None once it has gone."""
    try:
        with open(f"/proc/self/fdinfo/{pidfd}") as info:
            for line in info:
                if line.startswith("Pid:"):
                    pid = int(line.split()[1])
                    return pid if pid > 0 else None
    except (OSError, ValueError):
        return None
    return None


def close_quietly(*fds: int) -> None:
    for fd in fds:
        try:
            os.close(fd)
        except OSError:
            pass
