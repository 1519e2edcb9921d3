"""`kill -9` the relay while 10 clients write; restart; nothing broadcast is lost; clients
reconnect and converge. Several cycles, on a real `forge serve` subprocess with token auth."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pycrdt import Decoder, Doc, Map

from forge_server.auth import AuthStore
from forge_server.client import SyncClient, room_url
from forge_server.relay.store import Store, merge_state

ROOM = "crash/main"
WRITERS = 10
CYCLES = 3


def state_vector(doc: Doc) -> dict[int, int]:
    decoder = Decoder(doc.get_state())
    return dict(
        (decoder.read_var_uint(), decoder.read_var_uint()) for _ in range(decoder.read_var_uint())
    )


def on_disk(data_dir: Path) -> Doc:
    """The room as the relay's SQLite file holds it (read while the relay is dead)."""
    store = Store(data_dir / "forge.db")
    try:
        doc = Doc()
        doc.apply_update(merge_state(store.load(ROOM)))
        return doc
    finally:
        store.close()


class Writer:
    def __init__(self, index: int, url: str, token: str) -> None:
        self.index = index
        self.client = SyncClient(url, token=token, backoff_initial=0.05, backoff_max=0.3)
        self.edits = 0

    async def write(self, stop: asyncio.Event) -> None:
        entries = self.client.doc.get("entries", type=Map)
        while not stop.is_set():
            entries[f"w{self.index}-{self.edits}"] = self.edits
            self.edits += 1
            await asyncio.sleep(0.02)


async def wait_until(predicate: Callable[[], bool], timeout: float = 30.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.02)


@pytest.mark.slow
async def test_kill_9_while_ten_clients_write(tmp_path: Path, serve_process: Any) -> None:
    with AuthStore.open(tmp_path) as store:
        store.add_user("writer")
        store.create_project("crash", "writer")
        token, _ = store.create_token("writer")
    server = serve_process(tmp_path, "--log-level", "WARNING")
    url = room_url(server.url, ROOM)
    writers = [Writer(i, url, token) for i in range(WRITERS)]
    broadcast: list[bytes] = []  # every update the relay sent to the watcher
    watcher = SyncClient(url, token=token, backoff_initial=0.05, backoff_max=0.3)
    watcher.doc.observe(lambda event: broadcast.append(event.update))
    async with contextlib.AsyncExitStack() as stack:
        for client in [watcher, *(w.client for w in writers)]:
            await stack.enter_async_context(client)
        await asyncio.gather(*(c.synced(30) for c in [watcher, *(w.client for w in writers)]))
        for cycle in range(CYCLES):
            stop = asyncio.Event()
            writing = [asyncio.ensure_future(w.write(stop)) for w in writers]
            seen_before = len(broadcast)
            await wait_until(lambda: len(broadcast) >= seen_before + 100)  # mid-stream
            server.kill()
            stop.set()
            await asyncio.gather(*writing)
            # Everything the relay broadcast before dying is in its file.
            disk = on_disk(tmp_path)
            before = (state_vector(disk), disk.get("entries", type=Map).to_py())
            for update in list(broadcast):
                disk.apply_update(update)
            after = (state_vector(disk), disk.get("entries", type=Map).to_py())
            assert after == before, f"cycle {cycle}: a broadcast update was not on disk"
            server.start()
            # The writers reconnect on their own and re-send what the relay had not stored.
            await asyncio.gather(*(w.client.flush(60) for w in writers))

        # Nothing is lost, and everyone converges with a fresh client's view.
        expected = {f"w{w.index}-{k}": k for w in writers for k in range(w.edits)}
        fresh = SyncClient(url, token=token)
        await stack.enter_async_context(fresh)
        await fresh.synced(30)
        everyone = [watcher, fresh, *(w.client for w in writers)]

        def converged() -> bool:
            return all(
                state_vector(c.doc) == state_vector(fresh.doc)
                and c.doc.get("entries", type=Map).to_py() == expected
                for c in everyone
            )

        await wait_until(converged, 60)
    assert sum(w.edits for w in writers) >= CYCLES * 100
    assert sum(w.client.connections for w in writers) >= WRITERS * (CYCLES + 1)


SLEEPY = '''
import time

def sleepy() -> int:
    time.sleep(120)
    return 1
'''


async def test_restart_settles_what_a_killed_server_left_running(
        tmp_path: Path, serve_process: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """`kill -9` mid-run, restart: the execution's document says failed (interrupted) within
    2 s of the restart, with no HTTP request about it (clients watching see it at once)."""
    from forge_ops.schema import ExecutionDoc, ProjectDoc
    from forge_tui.cli import main as forge_main

    monkeypatch.setenv("FORGE_CONFIG_DIR", str(tmp_path / "config"))
    server = serve_process(tmp_path / "data", "--no-auth", "--executor", "local",
                           "--log-level", "WARNING")
    assert await asyncio.to_thread(forge_main, ["project", "create", "left",
                                                "--server", server.url]) == 0
    async with SyncClient(room_url(server.url, "left/main")) as client:
        await client.synced(30)
        project = ProjectDoc(client.doc)
        operation = project.add_operation("Sleepy", SLEEPY)
        project.add_node(project.add_pipeline("slow"), operation)
        await client.flush(30)
    execution = await asyncio.to_thread(_run_detached, server.url)
    watcher = SyncClient(room_url(server.url, f"left/executions/{execution}"),
                         backoff_initial=0.05, backoff_max=0.2)
    async with watcher:
        await watcher.synced(30)

        def status() -> str | None:
            return ExecutionDoc(watcher.doc).meta.get("status")

        await wait_until(lambda: status() == "running")
        server.kill()
        server.start()
        restarted = asyncio.get_running_loop().time()
        await wait_until(lambda: status() == "failed", 30)
        assert asyncio.get_running_loop().time() - restarted < 2.0
        jobs = ExecutionDoc(watcher.doc).to_plain()["jobs"]
        assert [job["status"] for job in jobs.values()] == ["failed"]
        assert all("interrupted: the server stopped" in job["error"] for job in jobs.values())
    assert "settled 1 execution(s) that a previous server process left running" in "".join(
        server.output)


def _run_detached(url: str) -> str:
    import contextlib
    import io

    from forge_tui.cli import main as forge_main

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert forge_main(["run", "left", "slow", "--detach", "--server", url]) == 0
    return out.getvalue().split()[0]
