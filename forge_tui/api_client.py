"""The one client of the server's HTTP API (``/api/…``): sync for CLI commands, async for the
TUI and the demo.

Both transports raise :class:`ApiError` for a refused or failed call: its ``message`` is the
server's own ``error`` text (or says the server cannot be reached and how to start it),
``status`` the HTTP status (0: no answer) and ``problems`` the validation problems of a refused
run. The sync side uses only the standard library so that ``forge`` commands start quickly; the
async side uses aiohttp, imported when first called.
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Mapping
from typing import Any

__all__ = ["ApiClient", "ApiError", "json_object", "open_stream", "quote", "quote_ref"]

DEFAULT_TIMEOUT_S = 30.0


class ApiError(Exception):
    """A refused or failed API call; ``str()`` adds the problems, one line each."""

    def __init__(
        self, message: str, *, status: int = 0, problems: list[dict[str, Any]] | None = None
    ) -> None:
        self.message = message
        self.status = status
        self.problems = problems if isinstance(problems, list) else []
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message + "".join(
            f"\n  - {p.get('message', p) if isinstance(p, dict) else p}" for p in self.problems
        )


def quote(*parts: str) -> str:
    """URL path segments joined by ``/``, each quoted whole (a ``/`` inside one becomes ``%2F``)."""
    return "/".join(urllib.parse.quote(part, safe="") for part in parts)


def quote_ref(ref: str) -> str:
    """A commit, branch or tag as a URL path; a ``/`` in it stays (``run/{id}`` tags)."""
    return urllib.parse.quote(ref, safe="/")


def _url(server: str, path: str) -> str:
    return f"{server.rstrip('/')}/api/{path.lstrip('/')}"


def _headers(token: str | None) -> dict[str, str]:
    headers = {"Accept": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return headers


def _refusal(status: int, reason: str, body: bytes, url: str) -> ApiError:
    """The ApiError for an HTTP error answer: the server's ``error`` and ``problems``."""
    try:
        payload = json.loads(body)
    except ValueError:
        payload = None
    detail = payload if isinstance(payload, dict) else {}
    answered = f"{url} answered {status} {reason}".rstrip()
    if status == 500:  # Forge itself failed (its errors are JSON otherwise)
        hint = "; the server's log says why"
    else:
        hint = ", not a Forge server's answer: check --server (and any proxy in front of Forge)"
    message = detail.get("error") or answered + hint
    return ApiError(str(message), status=status, problems=detail.get("problems"))


def _unreachable(server: str, reason: object) -> ApiError:
    return ApiError(
        f"cannot reach the Forge server at {server.rstrip('/')}: {reason}; start it with "
        "`forge serve` or pass --server URL"
    )


def _no_answer(server: str, timeout: float) -> ApiError:
    return ApiError(
        f"the Forge server at {server.rstrip('/')} did not answer within {timeout:g} s; it "
        "may be busy: try again, or look at its log"
    )


def json_object(body: bytes, url: str = "the server") -> dict[str, Any]:
    """A JSON answer's body as a dict (a non-object value as ``{"value": …}``); ApiError when
    it is not JSON (another kind of server answered)."""
    try:
        data = json.loads(body) if body else {}
    except (ValueError, RecursionError):
        raise ApiError(f"{url} sent no JSON, not a Forge server's answer: check --server"
                       ) from None
    return data if isinstance(data, dict) else {"value": data}


# ----- sync (CLI) ----------------------------------------------------------------------------


def open_stream(
    server: str,
    token: str | None,
    method: str,
    path: str,
    body: dict[str, Any] | None = None,
    *,
    query: dict[str, str] | None = None,
    timeout: float = DEFAULT_TIMEOUT_S,
) -> Any:
    """The open HTTP response of ``/api/{path}`` (close it), or ApiError."""
    import urllib.error
    import urllib.request

    url = _url(server, path)
    if query:
        url += "?" + urllib.parse.urlencode(query)
    headers = _headers(token)
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(url, data=data, headers=headers, method=method)  # noqa: S310
    try:
        return urllib.request.urlopen(request, timeout=timeout)  # noqa: S310
    except urllib.error.HTTPError as exc:
        raise _refusal(exc.code, str(exc.reason), exc.read(), url.partition("?")[0]) from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        if isinstance(reason, TimeoutError):  # connected, or connecting, but no answer
            raise _no_answer(server, timeout) from None
        raise _unreachable(server, reason) from None


# ----- async (TUI, demo) ---------------------------------------------------------------------


class ApiClient:
    """``await ApiClient(server, token).request("GET", "projects")``; a session per call."""

    def __init__(
        self, server: str, token: str | None, *, timeout: float = DEFAULT_TIMEOUT_S
    ) -> None:
        self.server = server.rstrip("/")
        self.token = token
        self.timeout = timeout

    async def request(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        *,
        query: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """``method`` on ``/api/{path}``: the JSON answer, or ApiError."""
        content, _ = await self.request_bytes(method, path, body, query=query)
        return json_object(content, _url(self.server, path))

    async def request_bytes(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        *,
        query: dict[str, str] | None = None,
    ) -> tuple[bytes, Mapping[str, str]]:
        """The raw answer of ``/api/{path}`` and its headers (e.g. image pixels), or ApiError."""
        import aiohttp

        timeout = aiohttp.ClientTimeout(total=self.timeout)
        try:
            async with (
                aiohttp.ClientSession(timeout=timeout) as session,
                session.request(
                    method, _url(self.server, path), params=query, json=body,
                    headers=_headers(self.token),
                ) as answer,
            ):
                content = await answer.read()
                if answer.status >= 400:
                    raise _refusal(answer.status, answer.reason or "", content,
                                   _url(self.server, path))
                return content, answer.headers
        except TimeoutError:
            raise _no_answer(self.server, self.timeout) from None
        except (aiohttp.ClientError, OSError) as exc:
            raise _unreachable(self.server, str(exc) or exc.__class__.__name__) from None
