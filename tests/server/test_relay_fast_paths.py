"""The relay's fast paths keep their guarantees: batched off-loop writes, pre-encoded broadcast
frames, early 429 for repeat offenders, refusals that do not wait for a close handshake."""

from __future__ import annotations

import asyncio
import base64
import os
import struct
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from pycrdt import Doc, Text

from forge_server.client import SyncClient, room_url
from forge_server.relay.app import OFFENDERS, STATS
from forge_server.relay.connection import CloseCode
from forge_server.relay.offenders import OffenderTracker, offender_key
from forge_server.relay.protocol import decode_message, websocket_frame
from forge_server.relay.store import Store, StoreError

StartRelay = Any


def text_update(text: str) -> bytes:
    doc = Doc()
    doc.get("text", type=Text).insert(0, text)
    return doc.get_update()


@pytest.mark.parametrize("writer_thread", [False, True], ids=["on-loop", "writer-thread"])
class TestStoreBatches:
    async def test_batches_commit_in_order_and_callbacks_see_row_ids(
        self, data_dir: Path, writer_thread: bool
    ) -> None:
        store = Store(data_dir / "forge.db", writer_thread=writer_thread)
        seen: list[tuple[str, int | BaseException]] = []
        futures = []
        for i in range(300):
            room = f"p{i % 3}/main"
            futures.append(
                store.append(
                    room,
                    text_update(f"u{i}"),
                    "ada",
                    then=lambda r, room=room: seen.append((room, r)),
                )
            )
            if i % 50 == 0:
                await asyncio.sleep(0)  # let batches form while more rows arrive
        ids = await asyncio.gather(*futures)
        assert ids == sorted(ids) and len(set(ids)) == 300  # commit order = append order
        assert [r for _, r in seen] == ids  # callbacks ran in commit order, before the futures
        assert store.batches_written < 300  # rows really were batched
        for n in range(3):
            assert len(store.load(f"p{n}/main").updates) == 100
        store.close()

    async def test_flush_now_commits_without_the_loop_running(
        self, data_dir: Path, writer_thread: bool
    ) -> None:
        store = Store(data_dir / "forge.db", writer_thread=writer_thread)
        update = text_update("x")
        future = store.append("p/main", update)
        store.flush_now()  # no await: the row is on disk and the future resolved right here
        assert future.done() and future.result() >= 1
        assert store.load("p/main").updates == [update]
        store.close()

    async def test_a_failed_batch_reaches_every_waiter(
        self, data_dir: Path, writer_thread: bool
    ) -> None:
        store = Store(data_dir / "forge.db", writer_thread=writer_thread)
        await store.append("p/main", text_update("ok"))
        store._writer_conn.execute("DROP TABLE room_updates")  # break the next write
        errors: list[int | BaseException] = []
        future = store.append("p/main", text_update("lost"), then=errors.append)
        with pytest.raises(StoreError, match="could not write room updates"):
            await asyncio.wait_for(future, 5)
        assert len(errors) == 1 and isinstance(errors[0], StoreError)
        store.close()


async def test_relay_with_writer_thread_syncs_and_persists(
    start_relay: StartRelay, data_dir: Path
) -> None:
    relay = await start_relay(data_dir=data_dir, store_writer_thread=True)
    url = room_url(relay.url, "p/main")
    async with SyncClient(url) as a, SyncClient(url) as b:
        await asyncio.gather(a.synced(5), b.synced(5))
        for i in range(50):
            a.doc.get("text", type=Text).insert(0, f"{i} ")
        await a.flush(10)
        async with asyncio.timeout(10):
            while str(b.doc.get("text", type=Text)) != str(a.doc.get("text", type=Text)):
                await asyncio.sleep(0.02)
        expected = str(a.doc.get("text", type=Text))
    await relay.stop()
    store = Store(data_dir / "forge.db")
    doc = Doc()
    state = store.load("p/main")
    for update in ([state.snapshot] if state.snapshot else []) + state.updates:
        doc.apply_update(update)
    assert str(doc.get("text", type=Text)) == expected
    store.close()


def test_bool_relay_setting_parses() -> None:
    from forge_server.relay.config import RelayConfig

    on = RelayConfig.from_settings(Path("/tmp/x"), ["store_writer_thread=true"])
    assert on.store_writer_thread is True
    assert (
        RelayConfig.from_settings(Path("/tmp/x"), ["store-writer-thread=0"]).store_writer_thread
        is False
    )
    with pytest.raises(ValueError, match="needs true or false"):
        RelayConfig.from_settings(Path("/tmp/x"), ["store_writer_thread=maybe"])


class TestWebsocketFrame:
    @pytest.mark.parametrize("size", [0, 125, 126, 65535, 65536, 200_000])
    def test_header_lengths(self, size: int) -> None:
        payload = os.urandom(size)
        frame = websocket_frame(payload)
        assert frame[0] == 0x82  # FIN + binary, no RSV bits (uncompressed)
        if size < 126:
            assert frame[1] == size and frame[2:] == payload
        elif size < 65536:
            assert frame[1] == 126 and struct.unpack("!H", frame[2:4])[0] == size
            assert frame[4:] == payload
        else:
            assert frame[1] == 127 and struct.unpack("!Q", frame[2:10])[0] == size
            assert frame[10:] == payload

    async def test_large_and_small_broadcasts_arrive_intact(self, start_relay: StartRelay) -> None:
        relay = await start_relay()
        url = room_url(relay.url, "p/main")
        async with SyncClient(url) as a, SyncClient(url) as b:
            await asyncio.gather(a.synced(5), b.synced(5))
            text = a.doc.get("text", type=Text)
            text.insert(0, "é中文🙂" * 30_000)  # > 64 KiB frame: 8-byte length
            text.insert(0, "small")
            await a.flush(10)
            async with asyncio.timeout(10):
                while str(b.doc.get("text", type=Text)) != str(text):
                    await asyncio.sleep(0.02)


class TestOffenderTracker:
    def test_strikes_decay_and_refuse_above_threshold(self) -> None:
        tracker = OffenderTracker(threshold=3, half_life_s=10)
        for _ in range(3):
            tracker.strike("a", now=100.0)
        assert tracker.retry_after("b", now=100.0) is None  # others are unaffected
        wait = tracker.retry_after("a", now=100.0)
        assert wait is not None and wait == pytest.approx(0.1)  # exactly at the threshold
        tracker.strike("a", now=100.0)  # score 4: log2(4/3) half-lives to go
        wait = tracker.retry_after("a", now=100.0)
        assert wait == pytest.approx(10 * 0.42, abs=0.05)
        assert tracker.retry_after("a", now=100.0 + wait - 0.1) is not None
        assert tracker.retry_after("a", now=100.0 + wait + 0.01) is None
        assert tracker.retry_after("a", now=200.0) is None and len(tracker) == 0  # forgotten

    def test_memory_is_bounded(self) -> None:
        tracker = OffenderTracker(threshold=2, half_life_s=60, max_keys=100)
        for _ in range(5):
            tracker.strike("worst", now=0.0)
        for i in range(10_000):
            tracker.strike(f"k{i}", now=0.0)
        assert len(tracker) <= 100
        assert tracker.retry_after("worst", now=0.0) is not None  # the worst one is kept

    def test_key_never_holds_the_token(self) -> None:
        key = offender_key("10.0.0.1", "forge_secret_token")
        assert "secret" not in key and key.startswith("10.0.0.1|")
        assert key != offender_key("10.0.0.1", "another") and offender_key("h", None) == "h"


async def malformed_close(session: aiohttp.ClientSession, url: str) -> int | None:
    ws = await session.ws_connect(url)
    await ws.send_bytes(b"\x07")
    async with asyncio.timeout(5):
        while (await ws.receive()).type not in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED):
            pass
    return ws.close_code


class TestRepeatOffenders:
    async def test_upgrades_refused_with_429_after_repeated_malformed_frames(
        self, start_relay: StartRelay
    ) -> None:
        relay = await start_relay(
            malformed_strikes_before_refusal=3, malformed_strike_half_life_s=60
        )
        url = relay.ws_url("p/main")
        async with SyncClient(room_url(relay.url, "p/main")) as good, aiohttp.ClientSession() as s:
            await good.synced(5)
            for _ in range(3):
                assert await malformed_close(s, url) == CloseCode.MALFORMED
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await s.ws_connect(url)
            assert refused.value.status == 429
            assert int(refused.value.headers["Retry-After"]) >= 1  # type: ignore[index]
            assert relay.app[STATS].offenders_refused == 1
            # Another client (another token) from the same address, and the connected one,
            # are unaffected.
            other = await s.ws_connect(url, headers={"Authorization": "Bearer someone-else"})
            await other.close()
            good.doc.get("text", type=Text).insert(0, "still syncing")
            await good.flush(5)

    async def test_forgiven_once_the_score_decays(self, start_relay: StartRelay) -> None:
        relay = await start_relay(
            malformed_strikes_before_refusal=2, malformed_strike_half_life_s=60
        )
        url = relay.ws_url("p/main")
        async with aiohttp.ClientSession() as s:
            for _ in range(2):
                await malformed_close(s, url)
            with pytest.raises(aiohttp.WSServerHandshakeError):
                await s.ws_connect(url)
            relay.app[OFFENDERS].half_life_s = 0.05  # fast-forward the decay
            await asyncio.sleep(0.5)
            ws = await s.ws_connect(url)
            await ws.close()
        assert len(relay.app[OFFENDERS]) == 0  # decayed away and forgotten


async def test_refusal_ends_the_socket_without_waiting_for_the_reply(
    start_relay: StartRelay,
) -> None:
    """A client that sends garbage and never answers the close frame is still dropped at once
    (the relay does not wait out a close handshake)."""
    relay = await start_relay()
    reader, writer = await asyncio.open_connection("127.0.0.1", relay.port)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(
        (
            f"GET /sync/p/main HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 101")
    writer.write(b"\x82\x81\x00\x00\x00\x00\x07")  # masked binary frame: unknown message type
    await writer.drain()
    received = b""
    async with asyncio.timeout(1.5):  # well under aiohttp's close-handshake wait
        while chunk := await reader.read(65536):
            received += chunk
    close_at = received.find(b"\x88")
    assert close_at >= 0, "no close frame before the end of the socket"
    assert struct.unpack("!H", received[close_at + 2 : close_at + 4])[0] == CloseCode.MALFORMED
    # Frames before it were the relay's greeting (sync step 1), decodable as y-websocket.
    assert received[0] == 0x82
    decode_message(received[2 : 2 + received[1]])
    writer.close()
