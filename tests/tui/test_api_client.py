"""The one HTTP API client: its sync and async sides answer alike, refusals keep the server's
message, status and problems, and an unreachable server says how to start one."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from forge_tui.api_client import ApiClient, ApiError, json_object, open_stream, quote

PROBLEMS = [{"kind": "unconnected", "message": "Train.model is not connected", "node": "n1"}]


async def _echo(request: web.Request) -> web.Response:
    body = await request.json() if request.can_read_body else None
    return web.json_response(
        {
            "path": request.raw_path.split("?")[0],
            "query": dict(request.query),
            "auth": request.headers.get("Authorization"),
            "body": body,
        }
    )


async def _refuse(request: web.Request) -> web.Response:
    return web.json_response({"error": "pipeline has problems", "problems": PROBLEMS}, status=400)


async def _plain_error(request: web.Request) -> web.Response:
    return web.Response(text="not json", status=502)


async def _crash(request: web.Request) -> web.Response:
    raise RuntimeError("a bug")  # aiohttp answers a plain-text 500


async def _html(request: web.Request) -> web.Response:
    return web.Response(text="<html>a directory listing</html>", content_type="text/html")


@pytest.fixture
async def server() -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_route("*", "/api/echo/{rest:.*}", _echo)
    app.router.add_post("/api/refuse", _refuse)
    app.router.add_get("/api/plain", _plain_error)
    app.router.add_get("/api/html", _html)
    app.router.add_get("/api/crash", _crash)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        await runner.cleanup()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _sync_call(server: str, method: str, path: str, **kwargs: object) -> dict[str, object]:
    with open_stream(server, "tok", method, path, **kwargs) as answer:  # type: ignore[arg-type]
        return json_object(answer.read(), answer.url)


async def test_both_sides_send_path_query_body_and_token(server: str) -> None:
    path = f"echo/{quote('a b', 'c/d')}"
    expected = {
        "path": "/api/echo/a%20b/c%2Fd",
        "query": {"branch": "dev"},
        "auth": "Bearer tok",
        "body": {"x": 1},
    }
    answer = await ApiClient(server, "tok").request("POST", path, {"x": 1}, query={"branch": "dev"})
    assert answer == expected
    sync = await asyncio.to_thread(
        _sync_call, server, "POST", path, body={"x": 1}, query={"branch": "dev"}
    )
    assert sync == expected


async def test_refusal_keeps_message_status_and_problems(server: str) -> None:
    with pytest.raises(ApiError) as refused:
        await ApiClient(server, None).request("POST", "refuse", {})
    assert refused.value.status == 400
    assert refused.value.message == "pipeline has problems"
    assert refused.value.problems == PROBLEMS
    assert str(refused.value) == "pipeline has problems\n  - Train.model is not connected"

    with pytest.raises(ApiError) as sync_refused:
        await asyncio.to_thread(_sync_call, server, "POST", "refuse", body={})
    assert (sync_refused.value.status, sync_refused.value.message) == (400, "pipeline has problems")
    assert sync_refused.value.problems == PROBLEMS


async def test_answers_of_another_kind_of_server_say_so(server: str) -> None:
    for path, what in (("plain", "answered 502 Bad Gateway, not a Forge server's answer"),
                       ("html", "sent no JSON, not a Forge server's answer")):
        expected = rf"^{server}api/{path} {what}: check --server"
        with pytest.raises(ApiError, match=expected):
            await ApiClient(server, None).request("GET", path)
        with pytest.raises(ApiError, match=expected):
            await asyncio.to_thread(_sync_call, server, "GET", path)


async def test_a_server_error_points_at_the_servers_log(server: str) -> None:
    expected = rf"^{server}api/crash answered 500 Internal Server Error; the server's log says"
    with pytest.raises(ApiError, match=expected):
        await ApiClient(server, None).request("GET", "crash")
    with pytest.raises(ApiError, match=expected):
        await asyncio.to_thread(_sync_call, server, "GET", "crash")


async def test_a_server_that_does_not_answer_is_not_called_unreachable() -> None:
    with socket.socket() as listening:  # accepts connections, never answers
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        url = f"http://127.0.0.1:{listening.getsockname()[1]}"
        expected = rf"^the Forge server at {url} did not answer within 0.5 s; it may be busy"
        with pytest.raises(ApiError, match=expected):
            await ApiClient(url, None, timeout=0.5).request("GET", "projects")
        with pytest.raises(ApiError, match=expected):
            await asyncio.to_thread(_sync_call, url, "GET", "projects", timeout=0.5)


async def test_unreachable_server_says_how_to_start_one() -> None:
    url = f"http://127.0.0.1:{_closed_port()}"
    with pytest.raises(ApiError) as failed:
        await ApiClient(url, None, timeout=5).request("GET", "projects")
    assert failed.value.status == 0
    assert failed.value.message.startswith(f"cannot reach the Forge server at {url}: ")
    assert "forge serve" in failed.value.message
    with pytest.raises(ApiError, match=r"cannot reach the Forge server at .*forge serve"):
        await asyncio.to_thread(_sync_call, url, "GET", "projects")
