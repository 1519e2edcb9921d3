"""The demo's own server: ``forge serve`` in a background process, stopped when the demo ends."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import IO

__all__ = ["DemoServer", "DemoServerError", "default_data_dir"]


class DemoServerError(Exception):
    """The background server did not start or has no usable credentials."""


def default_data_dir() -> Path:
    """``$XDG_DATA_HOME/forge/demo`` (``~/.local/share/forge/demo`` by default)."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "forge" / "demo"


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class DemoServer:
    """Runs ``forge serve`` on loopback with its data (SQLite, artifacts) in
    ``data_dir``; its output goes to ``data_dir/server.log``. Use as a context manager."""

    def __init__(
        self,
        data_dir: Path,
        *,
        port: int = 0,
        executor: str = "local",
        ray_address: str | None = None,
        startup_timeout: float = 90.0,
    ) -> None:
        self.data_dir = data_dir
        self.port = port or free_port()
        self.executor = executor
        self.ray_address = ray_address
        self.startup_timeout = startup_timeout
        self.log_path = data_dir / "server.log"
        self.token: str | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._lock: IO[str] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DemoServerError(
                f"cannot use {self.data_dir} as the demo's data folder: "
                f"{exc.strerror or exc}; pass --data-dir DIR (a folder, or a path to create)"
            ) from None
        self._check_port()
        self._lock_data_dir()
        try:
            self._spawn()
            self._wait_healthy()
            self.token = self._owner_token()
        except BaseException:
            self.stop()  # also releases the data folder
            raise

    def _spawn(self) -> None:
        command = [
            sys.executable, "-m", "forge_tui", "serve",
            "--host", "127.0.0.1", "--port", str(self.port),
            "--data-dir", str(self.data_dir), "--executor", self.executor,
            "--owner-credentials", str(self.owner_credentials),
            # One person's private server: jobs run in the sandbox where there is one.
            "--unconfined-jobs",
        ]  # fmt: skip
        if self.ray_address:
            command += ["--ray-address", self.ray_address]
        with self.log_path.open("ab") as log:
            log.write(f"\n--- forge demo: {' '.join(command)}\n".encode())
            log.flush()
            # A session of its own: Ctrl-C in the demo's terminal reaches the demo, which then
            # stops the server in order (flushing the documents) instead of both racing.
            self._process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
                start_new_session=True,
            )

    def _check_port(self) -> None:
        """A port already taken (by another Forge server, say) would have the demo talk to
        that server instead of its own."""
        import socket

        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", self.port))
            except OSError:
                raise DemoServerError(
                    f"port {self.port} is in use; pass another --port, or leave it out for a "
                    "free one") from None

    def _lock_data_dir(self) -> None:
        """Two servers on one SQLite file would fight over it: one demo per data folder."""
        import fcntl

        handle = (self.data_dir / "demo.lock").open("w")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            raise DemoServerError(
                f"another forge demo is using {self.data_dir}; quit it first, or pass "
                "--data-dir to run a second demo with its own data"
            ) from None
        self._lock = handle

    def _unlock_data_dir(self) -> None:
        if self._lock is not None:
            self._lock.close()  # closing releases the lock
            self._lock = None

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            assert self._process is not None
            if self._process.poll() is not None:
                raise DemoServerError(
                    f"the demo server exited with status {self._process.returncode}; "
                    f"its output is in {self.log_path}:\n{self.log_tail()}"
                )
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=2) as response:  # noqa: S310
                    if json.loads(response.read()).get("status") == "ok":
                        return
            except (urllib.error.URLError, OSError, ValueError):
                pass
            time.sleep(0.2)
        raise DemoServerError(
            f"the demo server did not answer {self.url}/health within "
            f"{self.startup_timeout:g}s; see {self.log_path}"
        )

    @property
    def owner_credentials(self) -> Path:
        """The demo server's administrator token: beside its data folder, never inside it
        (the demo's jobs run beside the data folder)."""
        return self.data_dir.with_name(self.data_dir.name + "-owner.json")

    def _owner_token(self) -> str:
        path = self.owner_credentials
        try:
            token = json.loads(path.read_text(encoding="utf-8")).get("token")
        except (OSError, ValueError) as exc:
            raise DemoServerError(
                f"cannot read the demo's owner token from {path} ({exc}); delete the demo "
                f"data folder {self.data_dir} to start afresh, or pass --data-dir"
            ) from None
        if not isinstance(token, str):
            raise DemoServerError(f"{path} holds no token; delete {self.data_dir} and retry")
        return token

    def log_tail(self, lines: int = 20) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def stop(self, timeout: float = 40.0) -> int | None:
        """SIGTERM (the server flushes and stops its executor), SIGKILL if it hangs."""
        process, self._process = self._process, None
        try:
            if process is None:
                return None
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)  # its whole session: workers too
                    process.wait(timeout=10)
            return process.returncode
        finally:
            self._unlock_data_dir()

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def __enter__(self) -> DemoServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
