"""A small JSON client for the server's HTTP API (what `forge project` and `forge demo` call)."""

from __future__ import annotations

import json
from types import TracebackType
from typing import Any

import aiohttp

__all__ = ["ApiError", "ForgeApi"]


class ApiError(Exception):
    """The server refused a call (``status`` set) or could not be reached (``status`` None)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class ForgeApi:
    """``async with ForgeApi(server, token) as api: await api.call("GET", "/api/projects")``."""

    def __init__(self, server: str, token: str | None, *, timeout: float = 30.0) -> None:
        self.server = server.rstrip("/")
        self.token = token
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> ForgeApi:
        headers = {"Accept": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        self._session = aiohttp.ClientSession(headers=headers, timeout=self._timeout)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def call(
        self, method: str, path: str, body: dict[str, Any] | None = None
    ) -> tuple[int, dict[str, Any]]:
        """Send one request; returns (status, JSON body) for 2xx, raises ApiError otherwise."""
        assert self._session is not None, "use ForgeApi as an async context manager"
        try:
            async with self._session.request(method, self.server + path, json=body) as response:
                text = await response.text()
                status = response.status
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise ApiError(
                f"cannot reach the Forge server at {self.server}: {exc or type(exc).__name__}; "
                "start it with `forge serve` or pass --server URL"
            ) from None
        try:
            payload = json.loads(text) if text else {}
        except ValueError:
            payload = {"error": text.strip()[:200]}
        if not isinstance(payload, dict):
            payload = {"value": payload}
        if status >= 400:
            message = str(payload.get("error") or f"server answered {status}")
            problems = payload.get("problems")
            if isinstance(problems, list):  # a run refused by validation: list what to fix
                message += "".join(
                    f"\n  - {p.get('message', p) if isinstance(p, dict) else p}"
                    for p in problems
                )
            raise ApiError(message, status)
        return status, payload
