"""pycrdt-websocket's relay (``WebsocketServer``, no store) served over aiohttp, for bench_relay.

pycrdt-websocket ships the room logic but no HTTP server of its own (it is usually mounted in
an ASGI server); this adapts an aiohttp WebSocket to its ``Channel`` interface (path, send, recv,
async iteration), as its own ``HttpxWebsocket`` adapter does, so the benchmark compares relays
on the same transport as Forge's.

    python scripts/bench_relay_pycrdt_server.py --port 8702
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from collections import defaultdict

from aiohttp import WSMsgType, web
from pycrdt.websocket import WebsocketServer


class AiohttpChannel:
    """pycrdt's Channel protocol over an aiohttp server-side WebSocket."""

    def __init__(self, ws: web.WebSocketResponse, path: str) -> None:
        self._ws = ws
        self._path = path
        self._send_lock = asyncio.Lock()

    @property
    def path(self) -> str:
        return self._path

    def __aiter__(self) -> AiohttpChannel:
        return self

    async def __anext__(self) -> bytes:
        try:
            return await self.recv()
        except Exception:
            raise StopAsyncIteration from None

    async def send(self, message: bytes) -> None:
        async with self._send_lock:
            await self._ws.send_bytes(message)

    async def recv(self) -> bytes:
        while True:
            msg = await self._ws.receive()
            if msg.type == WSMsgType.BINARY:
                return bytes(msg.data)
            if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR):
                raise ConnectionError("websocket closed")


def _ignore_errors(exception: Exception, log: logging.Logger) -> bool:
    log.debug("pycrdt-websocket: %r", exception)
    return True


async def main(host: str, port: int) -> None:
    server = WebsocketServer(exception_handler=_ignore_errors)
    room_locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)

    async def handle(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=0)
        await ws.prepare(request)
        # pycrdt-websocket 0.16.5 deadlocks when two clients join a new room at once (both
        # call YRoom.start; the second waits forever on the first's lock): start rooms one
        # joiner at a time, then let serve() find the room already started.
        async with room_locks[request.path]:
            await server.get_room(request.path)
        await server.serve(AiohttpChannel(ws, request.path))
        return ws

    app = web.Application()
    app.router.add_get("/{room:.*}", handle)
    async with server:
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, host, port).start()
        print(f"pycrdt-websocket relay on ws://{host}:{port}", flush=True)
        await asyncio.Event().wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    asyncio.run(main(args.host, args.port))
