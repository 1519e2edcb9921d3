"""Running the relay: an async context manager for embedding and tests, and ``run_relay``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable, Iterable
from types import TracebackType

from aiohttp import web
from aiohttp.http_exceptions import BadHttpMessage

from forge_server.principal import Authorizer
from forge_server.relay.app import AppSetup, RedactingAccessLogger, create_app
from forge_server.relay.config import RelayConfig

__all__ = ["MalformedRequestFilter", "RelayServer", "run_relay"]

log = logging.getLogger("forge_server.relay")


class MalformedRequestFilter(logging.Filter):
    """aiohttp answers a malformed request (a request line or header over its limit, bad
    syntax) with a 400 and then logs an ERROR with a traceback: anyone who can reach the port
    could fill the log that way. Such a record becomes one WARNING line naming the problem."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, BadHttpMessage):
            peer = record.args[0] if isinstance(record.args, tuple) and record.args else "?"
            what = (exc.message or type(exc).__name__).splitlines()[0][:120]
            record.msg, record.args = "refused a malformed request from %s (400): %s", (peer, what)
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            record.exc_info = record.exc_text = None
        return True


def _quiet_malformed_requests() -> None:
    server_log = logging.getLogger("aiohttp.server")
    if not any(isinstance(f, MalformedRequestFilter) for f in server_log.filters):
        server_log.addFilter(MalformedRequestFilter())


class RelayServer:
    """The relay listening on a real port; ``port=0`` picks a free one (see :attr:`url`)."""

    def __init__(
        self,
        config: RelayConfig,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        authorizer: Authorizer | None = None,
        setups: Iterable[AppSetup] = (),
        shutdown_timeout: float = 5.0,
    ) -> None:
        self.config = config
        self.host = host
        self.port = port
        self.app = create_app(config, authorizer=authorizer, setups=setups)
        self._shutdown_timeout = shutdown_timeout
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        """``http://host:port`` of the running relay."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def ws_url(self, room: str) -> str:
        return self.url.replace("http", "ws", 1) + f"/sync/{room}"

    async def start(self) -> None:
        _quiet_malformed_requests()
        runner = web.AppRunner(
            self.app,
            access_log_class=RedactingAccessLogger,
            shutdown_timeout=self._shutdown_timeout,
            handle_signals=False,
        )
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port)
        await site.start()
        self._runner = runner
        server = site._server
        sockets = getattr(server, "sockets", None) or []
        if sockets:
            self.port = int(sockets[0].getsockname()[1])
        log.info("relay listening on %s (data in %s)", self.url, self.config.data_dir)

    async def stop(self) -> None:
        """Close connections, flush and compact every room, close the store."""
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    async def __aenter__(self) -> RelayServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()


async def run_relay(
    config: RelayConfig,
    *,
    host: str = "127.0.0.1",
    port: int = 8700,
    authorizer: Authorizer | None = None,
    setups: Iterable[AppSetup] = (),
    on_ready: Callable[[RelayServer], None] | None = None,
) -> None:
    """Serve until SIGINT/SIGTERM, then shut down gracefully (everything flushed to disk)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    async with RelayServer(
        config, host=host, port=port, authorizer=authorizer, setups=setups
    ) as server:
        if on_ready is not None:
            on_ready(server)
        await stop.wait()
        log.info("shutting down")
