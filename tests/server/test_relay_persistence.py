"""Nothing the relay broadcast is lost: restarts, kill -9, offline edits, compaction."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pycrdt import Array, Decoder, Doc, Map, Text

from forge_server.client import ConnectionStatus, SyncClient, open_document, room_url
from forge_server.relay.app import ROOMS
from forge_server.relay.config import RelayConfig
from forge_server.relay.rooms import RoomManager
from forge_server.relay.store import Store

StartRelay = Any


def state_vector(doc: Doc) -> dict[int, int]:
    decoder = Decoder(doc.get_state())
    count = decoder.read_var_uint()
    return dict((decoder.read_var_uint(), decoder.read_var_uint()) for _ in range(count))


def content(doc: Doc) -> dict[str, object]:
    return {
        "text": str(doc.get("text", type=Text)),
        "map": doc.get("map", type=Map).to_py(),
        "array": doc.get("array", type=Array).to_py(),
    }


async def wait_for(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.02)


async def test_edits_restart_edits_keep_everything(start_relay: StartRelay, data_dir: Path) -> None:
    relay = await start_relay(data_dir=data_dir)
    url = room_url(relay.url, "proj/main")
    async with SyncClient(url, backoff_max=0.2) as a, SyncClient(url, backoff_max=0.2) as b:
        await asyncio.gather(a.synced(5), b.synced(5))
        a.doc.get("text", type=Text).insert(0, "before restart é中🎉 ")
        b.doc.get("map", type=Map)["before"] = {"n": 1}
        await wait_for(lambda: content(a.doc) == content(b.doc) and "n" in str(content(a.doc)))
        before = content(b.doc)

        port = relay.port
        await relay.stop()
        relay = await start_relay(data_dir=data_dir, port=port)
        await wait_for(lambda: a.is_synced and b.is_synced)

        a.doc.get("array", type=Array).append("after restart")
        text = b.doc.get("text", type=Text)
        text.insert(len(text), "and after")
        await a.flush(5)
        await b.flush(5)

    async with open_document(relay.url, None, "proj/main") as fresh:
        await wait_for(lambda: "and after" in str(fresh.doc.get("text", type=Text)))
        got = content(fresh.doc)
    assert str(got["text"]).startswith(str(before["text"]))
    assert got["text"] == "before restart é中🎉 and after"
    assert got["map"] == before["map"] == {"before": {"n": 1.0}}
    assert got["array"] == ["after restart"]


async def test_offline_edits_merge_on_reconnect(start_relay: StartRelay, data_dir: Path) -> None:
    relay = await start_relay(data_dir=data_dir)
    url = room_url(relay.url, "proj/main")
    statuses: list[ConnectionStatus] = []
    async with SyncClient(url, backoff_max=0.2) as a, SyncClient(url, backoff_max=0.2) as b:
        a.on_status(statuses.append)
        await asyncio.gather(a.synced(5), b.synced(5))
        a.doc.get("text", type=Text).insert(0, "shared ")
        await a.flush(5)
        await wait_for(lambda: str(b.doc.get("text", type=Text)) == "shared ")

        port = relay.port
        await relay.stop()
        await wait_for(lambda: a.status == ConnectionStatus.RECONNECTING)
        # Both sides edit while the relay is down, including the same text.
        text_a = a.doc.get("text", type=Text)
        text_a.insert(len(text_a), "from-a")
        a.doc.get("map", type=Map)["a"] = "offline a"
        b.doc.get("text", type=Text).insert(0, "from-b ")
        b.doc.get("array", type=Array).append("offline b")

        relay = await start_relay(data_dir=data_dir, port=port)
        await wait_for(lambda: a.is_synced and b.is_synced)
        await a.flush(5)
        await b.flush(5)
        await wait_for(lambda: content(a.doc) == content(b.doc), timeout=10)
        assert state_vector(a.doc) == state_vector(b.doc)
        merged = content(a.doc)
    assert merged["text"] == "from-b shared from-a"
    assert merged["map"] == {"a": "offline a"}
    assert merged["array"] == ["offline b"]
    assert ConnectionStatus.RECONNECTING in statuses
    assert statuses[-1] == ConnectionStatus.OFFLINE  # stopped at the end of the block

    async with open_document(relay.url, None, "proj/main") as fresh:
        assert content(fresh.doc) == merged


@pytest.mark.slow
async def test_kill_9_loses_nothing_that_was_broadcast(
    serve_process: Callable[..., Any], data_dir: Path
) -> None:
    server = serve_process(data_dir, "--no-auth")
    url = room_url(server.url, "proj/main")
    async with SyncClient(url, backoff_max=0.2) as writer, SyncClient(url) as watcher:
        await asyncio.gather(writer.synced(10), watcher.synced(10))
        items = writer.doc.get("array", type=Array)
        for i in range(200):
            items.append(i)
            if i % 20 == 0:
                await asyncio.sleep(0.01)
        # Kill as soon as the watcher has seen some of it: what it saw was broadcast.
        watched = watcher.doc.get("array", type=Array)
        await wait_for(lambda: len(watched) >= 50)
        server.kill()
        seen = watcher.doc.get_update()
        seen_content = content(watcher.doc)
    assert len(seen_content["array"]) >= 50  # type: ignore[arg-type]

    server.start()
    async with open_document(server.url, None, "proj/main") as fresh:
        after = Doc()
        after.apply_update(fresh.doc.get_update())
        recovered = content(after)
        after.apply_update(seen)  # adds nothing if every broadcast update survived
        assert content(after) == recovered
        stored = recovered["array"]
        assert stored[: len(seen_content["array"])] == seen_content["array"]  # type: ignore[index]


class TestStoreAndCompaction:
    async def test_compaction_preserves_content(self, data_dir: Path) -> None:
        store = Store(data_dir / "forge.db")
        source = Doc()
        updates: list[bytes] = []
        source.observe(lambda event: updates.append(event.update))
        text = source.get("text", type=Text)
        for i in range(300):
            with source.transaction():
                text.insert(0, f"{i} é ")
                source.get("map", type=Map)[f"k{i % 7}"] = i
                if i % 3 == 0:
                    del text[0:2]
        for update in updates:
            await store.append("p/main", update, "ada")
        expected = content(source)

        def stored_content() -> dict[str, object]:
            state = store.load("p/main")
            doc = Doc()
            if state.snapshot:
                doc.apply_update(state.snapshot)
            for update in state.updates:
                doc.apply_update(update)
            return content(doc)

        assert stored_content() == expected
        assert len(store.load("p/main").updates) == 300
        removed = await store.compact("p/main")
        assert removed == 300
        state = store.load("p/main")
        assert state.snapshot is not None
        assert state.updates == []
        assert stored_content() == expected

        # More updates after the snapshot, then compaction in a worker thread.
        source.get("array", type=Array).append("late")
        await store.append("p/main", updates[-1], "ada")
        assert await store.compact("p/main", inline_below=0) == 1
        expected = content(source)
        assert stored_content() == expected
        store.close()

    async def test_rooms_listed_by_project_and_created_from_snapshot(self, data_dir: Path) -> None:
        store = Store(data_dir / "forge.db")
        doc = Doc()
        doc.get("text", type=Text).insert(0, "base")
        await store.append("p/main", doc.get_update())
        store.create_room("p/feature", doc.get_update())
        await store.append("q/main", doc.get_update())
        assert store.rooms() == ["p/feature", "p/main", "q/main"]
        assert store.rooms(prefix="p/") == ["p/feature", "p/main"]
        with pytest.raises(Exception, match="already exists"):
            store.create_room("p/main", doc.get_update())
        store.close()


class TestRoomManager:
    async def test_concurrent_joins_share_one_load(self, data_dir: Path) -> None:
        config = RelayConfig(data_dir=data_dir)
        store = Store(config.db_path)
        doc = Doc()
        doc.get("text", type=Text).insert(0, "stored")
        await store.append("p/main", doc.get_update())
        rooms = RoomManager(store, config)
        got = await asyncio.gather(*(rooms.get("p/main") for _ in range(10)))
        assert all(room is got[0] for room in got)
        assert rooms.loads == 1
        assert str(got[0].doc.get("text", type=Text)) == "stored"
        await rooms.close()
        store.close()

    async def test_server_side_updates_subscribers_and_branches(
        self, start_relay: StartRelay
    ) -> None:
        relay = await start_relay()
        rooms: RoomManager = relay.app[ROOMS]
        seen: list[tuple[str, str | None, bytes]] = []
        unsubscribe = rooms.subscribe(
            lambda room, update, author: seen.append((room, author, update))
        )
        async_seen: list[str] = []

        async def async_subscriber(room: str, update: bytes, author: str | None) -> None:
            async_seen.append(room)

        rooms.subscribe(async_subscriber, room="p/main")

        async with open_document(relay.url, None, "p/main") as client:
            source = Doc()
            source.get("text", type=Text).insert(0, "from server")
            await rooms.apply_update("p/main", source.get_update(), author="coordinator")
            await wait_for(lambda: str(client.doc.get("text", type=Text)) == "from server")

            room = await rooms.get("p/main")
            with room.edit(author="history") as doc:
                doc.get("map", type=Map)["by"] = "history"
            await wait_for(lambda: client.doc.get("map", type=Map).to_py() == {"by": "history"})

            client.doc.get("array", type=Array).append("by client")
            await client.flush(5)
            await wait_for(lambda: len(seen) == 3)

        assert [(r, a) for r, a, _ in seen] == [
            ("p/main", "coordinator"),
            ("p/main", "history"),
            ("p/main", "local"),  # AllowAll's user name
        ]
        assert async_seen == ["p/main"] * 3
        unsubscribe()

        # A branch: a new room whose initial state is the main room's.
        snapshot = (await rooms.get("p/main")).doc.get_update()
        await rooms.create("p/feature", snapshot)
        async with open_document(relay.url, None, "p/feature") as branch:
            assert content(branch.doc)["text"] == "from server"
            assert content(branch.doc)["map"] == {"by": "history"}
        with pytest.raises(Exception, match="already exists"):
            await rooms.create("p/feature", snapshot)
        assert rooms.project_rooms("p") == ["p/feature", "p/main"]
        assert len(seen) == 3  # unsubscribed

    async def test_idle_rooms_unload_and_reload(self, start_relay: StartRelay) -> None:
        relay = await start_relay(room_idle_s=0.2, sweep_interval_s=0.05)
        rooms: RoomManager = relay.app[ROOMS]
        async with open_document(relay.url, None, "p/main") as client:
            client.doc.get("text", type=Text).insert(0, "me")
            await client.flush(5)
            client.doc.get("text", type=Text).insert(0, "keep ")
        await wait_for(lambda: rooms.loaded("p/main") is None, timeout=5)
        # Compacted into a snapshot when unloaded.
        await wait_for(lambda: rooms.store.load("p/main").snapshot is not None, timeout=5)
        assert rooms.store.load("p/main").updates == []
        async with open_document(relay.url, None, "p/main") as client:
            assert str(client.doc.get("text", type=Text)) == "keep me"
        assert rooms.loads == 2
