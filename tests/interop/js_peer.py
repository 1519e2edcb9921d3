"""Drive the real JavaScript Yjs peer (``peer.mjs``) from Python, one JSON command per line."""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import shutil
from pathlib import Path
from typing import Any

INTEROP_DIR = Path(__file__).resolve().parent
PEER_SCRIPT = INTEROP_DIR / "peer.mjs"
NODE_MODULES = INTEROP_DIR / "node_modules"
REQUIRED_PACKAGES = ("yjs", "y-websocket", "ws", "@y/websocket-server")


def missing_reason() -> str | None:
    """Why the JavaScript side cannot run here, or None when it can."""
    if shutil.which("node") is None:
        return "node is not installed (needed for the interop tests)"
    for package in REQUIRED_PACKAGES:
        if not (NODE_MODULES / package / "package.json").exists():
            return (
                f"{NODE_MODULES / package} is missing: run `npm ci` in tests/interop "
                "(scripts/setup.sh does it when npm is available)"
            )
    return None


class JsPeerError(RuntimeError):
    """The JavaScript peer answered a command with an error."""


class JsPeer:
    """A ``node peer.mjs`` child process; every method sends one command and awaits its answer."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self._process = process
        self._ids = itertools.count(1)
        self._lock = asyncio.Lock()

    @classmethod
    async def start(cls) -> JsPeer:
        process = await asyncio.create_subprocess_exec(
            "node",
            str(PEER_SCRIPT),
            cwd=INTEROP_DIR,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        return cls(process)

    async def call(self, cmd: str, timeout: float = 15.0, **args: Any) -> dict[str, Any]:
        assert self._process.stdin is not None and self._process.stdout is not None
        async with self._lock:
            ident = next(self._ids)
            line = json.dumps({"id": ident, "cmd": cmd, **args}) + "\n"
            self._process.stdin.write(line.encode())
            await self._process.stdin.drain()
            raw = await asyncio.wait_for(self._process.stdout.readline(), timeout)
        if not raw:
            raise JsPeerError(f"node peer exited (code {self._process.returncode}) during {cmd}")
        answer: dict[str, Any] = json.loads(raw)
        assert answer["id"] == ident, answer
        if not answer["ok"]:
            raise JsPeerError(f"{cmd} failed in node: {answer['error']}")
        return answer

    async def connect(
        self, url: str, room: str, params: dict[str, str] | None = None, *, wait: bool = True
    ) -> int:
        """Open a provider on ``room``; with ``wait``, answer once it synced."""
        answer = await self.call("connect", url=url, room=room, params=params or {}, wait=wait)
        return int(answer["clientID"])

    async def synced(self, timeout: float = 10.0) -> None:
        """Wait until the provider is synced (an error after ``timeout`` seconds)."""
        await self.call("synced", timeout=timeout + 5, ms=int(timeout * 1000))

    async def closes(self) -> dict[str, Any]:
        """``codes`` (every close code seen, None for a local close), ``terminal`` (the code
        that made it stop, or None), ``attempts`` (sockets opened), ``shouldConnect`` (whether
        it will reconnect) and ``synced``."""
        return await self.call("closes")

    async def edit(self, *ops: dict[str, Any]) -> None:
        await self.call("edit", ops=list(ops))

    async def apply(self, update: bytes) -> None:
        await self.call("apply", update=base64.b64encode(update).decode())

    async def updates(self) -> list[bytes]:
        answer = await self.call("updates")
        return [base64.b64decode(u) for u in answer["updates"]]

    async def state(self, schema: dict[str, list[str]], sv: bytes | None = None) -> dict[str, Any]:
        args: dict[str, Any] = {"schema": schema}
        if sv is not None:
            args["sv"] = base64.b64encode(sv).decode()
        answer = await self.call("state", **args)
        for key in ("sv", "update", "diff"):
            if key in answer:
                answer[key] = base64.b64decode(answer[key])
        answer["texts"] = {k: base64.b64decode(v) for k, v in answer["texts"].items()}
        answer["clocks"] = {int(k): v for k, v in answer["clocks"].items()}
        return answer

    async def set_awareness(self, state: dict[str, Any] | None) -> None:
        await self.call("awareness", state=state)

    async def peers(self) -> dict[int, Any]:
        answer = await self.call("peers")
        return {int(k): v for k, v in answer["states"].items()}

    async def disconnect(self) -> None:
        await self.call("disconnect")

    async def close(self) -> None:
        if self._process.returncode is None:
            try:
                await self.call("quit", timeout=5)
            except (JsPeerError, TimeoutError, BrokenPipeError, ConnectionResetError):
                pass
            try:
                await asyncio.wait_for(self._process.wait(), 5)
            except TimeoutError:
                self._process.kill()
                await self._process.wait()
