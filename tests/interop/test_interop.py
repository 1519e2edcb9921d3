"""The real JavaScript client (yjs 13.6.33 + y-websocket 3.1.0 under Node) and Forge's Python
client edit the same rooms through Forge's relay, and must end up with identical documents."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from js_peer import JsPeer, missing_reason
from pycrdt import Array, Doc, Map, Text

from forge_server.client import SyncClient
from forge_server.relay.server import RelayServer
from forge_server.relay.text_integrity import SplitKind, SurrogateGuard

_MISSING = missing_reason()
pytestmark = [
    pytest.mark.interop,
    pytest.mark.skipif(_MISSING is not None, reason=_MISSING or ""),
]

SCHEMA = {"text": ["code"], "map": ["meta"], "array": ["items"]}


@pytest_asyncio.fixture(loop_scope="session")
async def js() -> AsyncIterator[JsPeer]:
    peer = await JsPeer.start()
    yield peer
    await peer.close()


async def connect_js(js: JsPeer, relay: RelayServer, room: str) -> int:
    # y-websocket connects to `${serverUrl}/${roomname}`: /sync/{project}/{branch}
    return await js.connect(relay.ws_url("").rstrip("/"), room)


async def eventually(check: Callable[[], Any], timeout: float = 5.0) -> None:
    """Poll an async or sync predicate until it holds (sync arrives asynchronously)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {timeout} s: {check}")
        await asyncio.sleep(0.05)


def utf16_len(text: str) -> int:
    """Length in UTF-16 code units: how Yjs (and the JS peer's indexes) count."""
    return len(text.encode("utf-16-le")) // 2


def decode_state_vector(data: bytes) -> dict[int, int]:
    numbers = []
    value = shift = 0
    for byte in data:  # lib0 var-uints
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            numbers.append(value)
            value = shift = 0
    count, pairs = numbers[0], numbers[1:]
    assert len(pairs) == 2 * count and shift == 0
    return dict(zip(pairs[::2], pairs[1::2], strict=True))


def python_content(doc: Doc) -> dict[str, Any]:
    return {
        "code": str(doc.get("code", type=Text)),
        "meta": doc.get("meta", type=Map).to_py(),
        "items": doc.get("items", type=Array).to_py(),
    }


async def assert_identical(js: JsPeer, client: SyncClient, timeout: float = 5.0) -> None:
    """Byte-for-byte convergence: state vectors, text bytes, content; and nothing to exchange."""
    doc = client.doc

    async def converged() -> bool:
        # Deletions do not move state vectors: wait for the content too.
        state = await js.state(SCHEMA)
        return state["clocks"] == decode_state_vector(doc.get_state()) and state[
            "json"
        ] == python_content(doc)

    with contextlib.suppress(AssertionError):  # if not, the asserts below show how
        await eventually(converged, timeout)
    state = await js.state(SCHEMA)
    # Same entries, byte for byte once decoded (Yjs writes them sorted by client id, yrs in
    # its hash map's order, so the encodings may differ in order only).
    assert decode_state_vector(state["sv"]) == decode_state_vector(doc.get_state())
    assert len(state["sv"]) == len(doc.get_state())
    assert state["texts"]["code"] == str(doc.get("code", type=Text)).encode("utf-8")
    assert state["json"] == python_content(doc)
    # Each side's complete state, applied to the other, changes nothing.
    fresh: Doc = Doc()
    fresh.apply_update(state["update"])
    assert decode_state_vector(fresh.get_state()) == decode_state_vector(doc.get_state())
    assert python_content(fresh) == python_content(doc)
    await js.apply(doc.get_update())
    again = await js.state(SCHEMA)
    assert (again["clocks"], again["json"], again["texts"]) == (
        state["clocks"],
        state["json"],
        state["texts"],
    )


class TestJavaScriptClient:
    async def test_concurrent_edits_converge_byte_for_byte(
        self, js: JsPeer, relay: RelayServer, make_client: Any, new_room: Any
    ) -> None:
        room = new_room("interop")
        client: SyncClient = await make_client(room)
        await client.synced(timeout=10)
        await connect_js(js, relay, room)
        doc = client.doc
        code = doc.get("code", type=Text)
        meta = doc.get("meta", type=Map)
        items = doc.get("items", type=Array)

        # Python first: text with é, 中文 and emoji, nested maps, an array.
        with doc.transaction():
            code += "def f():  # é 中文 😀\n"
            meta["name"] = "Forge ✓"
            meta["train"] = Map({"lr": 0.01, "layers": [64, 32], "tags": Map({"a": "α"})})
            items.extend(["one", 2, {"three": 3.5}])
        await eventually(lambda: _js_has(js, "meta", "train"))

        # JavaScript edits the same things at once (UTF-16 indexes, pairs kept whole).
        header = "# 🎉 from Node\n"
        end16 = utf16_len(header) + utf16_len(str(code))
        await js.edit(
            {"op": "text_insert", "text": "code", "index": 0, "value": header},
            {"op": "text_insert", "text": "code", "index": end16, "value": "    return 1\n"},
            {"op": "map_set", "path": ["meta", "train"], "key": "lr", "value": 0.001},
            {"op": "map_set_map", "path": ["meta", "train"], "key": "optimizer"},
            {"op": "map_set", "path": ["meta", "train", "optimizer"], "key": "name", "value": "Ω"},
            {"op": "map_delete", "path": ["meta", "train", "tags"], "key": "a"},
            {"op": "array_insert", "array": "items", "index": 1, "values": ["js", [1, 2]]},
        )
        with doc.transaction():
            code.insert(0, "\U0001f680")  # concurrent with the JS insert at the same place
            meta["by"] = "python"
            del items[0]
        await assert_identical(js, client)

        # Deletions from both sides, after convergence: whole characters only.
        js_text = (await js.state(SCHEMA))["json"]["code"]
        start16 = utf16_len(js_text[: js_text.index("é")])
        await js.edit(
            {"op": "text_delete", "text": "code", "index": start16, "length": 4},  # "é 中文"
            {"op": "array_delete", "array": "items", "index": 0, "length": 1},
            {"op": "map_delete", "path": ["meta"], "key": "name"},
        )
        await eventually(lambda: "中文" not in str(code))
        with doc.transaction():
            text = str(code)
            start = len(text[: text.index("😀")].encode())
            del code[start : start + len("😀".encode())]
            del meta["train"]["layers"]
        await assert_identical(js, client)
        final = python_content(doc)
        assert "😀" not in final["code"] and "🎉" in final["code"] and "🚀" in final["code"]
        assert "name" not in final["meta"] and final["meta"]["train"]["optimizer"] == {"name": "Ω"}

    async def test_awareness_is_seen_and_removed_when_js_leaves(
        self, js: JsPeer, relay: RelayServer, make_client: Any, new_room: Any
    ) -> None:
        room = new_room("interop")
        client: SyncClient = await make_client(room)
        await client.synced(timeout=10)
        js_id = await connect_js(js, relay, room)
        presence = {"user": {"name": "node-ada", "color": "#e5c07b"}, "cursor": {"line": 3}}
        await js.set_awareness(presence)
        await eventually(lambda: client.awareness.states.get(js_id) == presence)

        client.awareness.set_local_state({"user": {"name": "py-grace"}})
        await eventually(lambda: _js_sees(js, client.doc.client_id, {"user": {"name": "py-grace"}}))

        await js.disconnect()
        # Removed by the leave message (or the relay's cleanup), well before the 30 s timeout.
        await eventually(lambda: js_id not in client.awareness.states, timeout=5)

    async def test_insert_inside_a_surrogate_pair_is_detected(
        self,
        js: JsPeer,
        relay: RelayServer,
        make_client: Any,
        new_room: Any,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        # The documented limitation: Yjs splits the pair (U+FFFD twice), yrs does not.
        room = new_room("interop")
        client: SyncClient = await make_client(room)
        await client.synced(timeout=10)
        await connect_js(js, relay, room)
        guard = SurrogateGuard(client.doc.get_update())
        await js.updates()  # forget the handshake's updates
        await js.edit({"op": "text_insert", "text": "code", "index": 0, "value": "a😀b"})
        await js.edit({"op": "text_insert", "text": "code", "index": 2, "value": "X"})
        updates = await js.updates()
        findings = [f for u in updates for f in guard.check(u)]
        assert [f.kind for f in findings] == [SplitKind.INSERT_INSIDE_PAIR]

        js_text = (await js.state(SCHEMA))["json"]["code"]
        assert js_text == "a\ufffdX\ufffdb"
        await eventually(lambda: "X" in str(client.doc.get("code", type=Text)))
        assert str(client.doc.get("code", type=Text)) != js_text  # the copies diverged
        # ...and the relay logged it (its rooms run a SurrogateGuard on every update)
        relay_warnings = [
            r.getMessage()
            for r in caplog.records
            if r.name == "forge_server.relay.text_integrity" and r.levelno == logging.WARNING
        ]
        assert any(room in m and "surrogate pair" in m for m in relay_warnings), relay_warnings

    async def test_js_client_rides_out_a_relay_crash(
        self, js: JsPeer, make_client: Any, serve_process: Any, tmp_path: Path
    ) -> None:
        # `forge serve` with auth: the JS client passes its token as a query parameter.
        server = serve_process(tmp_path / "data")
        await eventually(lambda: server.token is not None)  # written just after it listens
        server.create_project("interop-crash")  # opening a room never creates a project
        room = "interop-crash/main"
        client: SyncClient = await make_client(
            room, token=server.token, server=server.url, backoff_max=0.5
        )
        await client.synced(timeout=10)
        ws_base = server.url.replace("http", "ws", 1) + "/sync"
        await js.connect(ws_base, room, params={"token": server.token})
        code = client.doc.get("code", type=Text)
        code += "before 😀\n"
        await js.edit({"op": "map_set", "path": ["meta"], "key": "js", "value": "before"})
        await assert_identical(js, client)

        server.kill()  # SIGKILL; both sides keep editing while it is down
        await js.edit({"op": "text_insert", "text": "code", "index": 0, "value": "js é\n"})
        code += "py 中文\n"
        await asyncio.to_thread(server.start)  # same port, same data dir

        # y-websocket reconnects by itself (backoff at most 2.5 s) and both re-sync.
        await assert_identical(js, client, timeout=15)
        final = python_content(client.doc)
        assert final["code"] == "js é\nbefore 😀\npy 中文\n"
        assert final["meta"]["js"] == "before"


async def _js_has(js: JsPeer, root: str, key: str) -> bool:
    return key in (await js.state(SCHEMA))["json"][root]


async def _js_sees(js: JsPeer, client_id: int, state: dict[str, Any]) -> bool:
    return (await js.peers()).get(client_id) == state
