"""Benchmark of version history: a project with N commits (default 1,000).

Measures, against a real relay on a real port (in-process, loopback HTTP):
- the first page of ``forge log`` (GET /log?limit=20, and the CLI handler in-process);
- opening an arbitrary commit's content (GET /commits/{id}?content=1);
with baselines measured in the same run: GET /health (the HTTP floor) and rebuilding a commit's
content by decoding its CRDT snapshot (what a replaying implementation would pay at least).
Targets (issue 4): first page of log <= 100 ms; open a commit <= 50 ms.

    .venv/bin/python scripts/bench_history.py [--commits 1000] [--samples 50]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import itertools
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
from pycrdt import Doc

from forge_ops.schema import ProjectDoc
from forge_server.history import HISTORY, History, history_setup
from forge_server.relay.config import RelayConfig
from forge_server.relay.rooms import project_room
from forge_server.relay.server import RelayServer
from forge_tui.cli import main as forge_main

OPERATION = "def op_{i}(data, rate=0.1):\n" + "".join(
    f"    x_{k} = data * {k}\n" for k in range(30)
)


async def build(history: History, server: RelayServer, commits: int) -> list[str]:
    """A project of 20 operations and a 20-node pipeline, then ``commits`` edits, each committed."""
    rooms = history.rooms
    name = project_room("bench")
    ids: list[str] = []
    async with rooms.hold(name) as room:
        with room.edit("bench") as doc:
            project = ProjectDoc.create("bench", doc)
            ops = [project.add_operation(f"Op{i}", OPERATION.format(i=i)) for i in range(20)]
            pipe = project.add_pipeline("pipeline")
            nodes = [project.add_node(pipe, op) for op in ops]
            for a, b in itertools.pairwise(nodes):
                project.connect(pipe, a, "out", b, "data")
        rng = random.Random(1)
        for i in range(commits):
            with room.edit(rng.choice(["alice", "bob"])) as doc:
                view = ProjectDoc(doc)
                view.set_attribute(pipe, rng.choice(nodes), "rate", round(rng.random(), 4))
                if i % 10 == 0:
                    op = rng.choice(ops)
                    view.set_code(op, OPERATION.format(i=i) + f"    # edit {i}\n")
            await room.written()
            commit = await history.commit("bench")
            assert commit is not None
            ids.append(commit.id)
    return ids


async def timed(fn: Callable[[], Awaitable[object]], samples: int) -> list[float]:
    await fn()  # warm up
    out = []
    for _ in range(samples):
        start = time.perf_counter()
        await fn()
        out.append((time.perf_counter() - start) * 1000)
    return out


def row(label: str, ms: list[float], target: str = "") -> str:
    ms = sorted(ms)
    p95 = ms[min(len(ms) - 1, int(len(ms) * 0.95))]
    return f"{label:<48} {statistics.median(ms):>8.2f} {p95:>8.2f} {max(ms):>8.2f}  {target}"


async def run(commits: int, samples: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        server = RelayServer(RelayConfig(data_dir=Path(tmp)), setups=[history_setup()])
        async with server:
            history = server.app[HISTORY]
            start = time.perf_counter()
            ids = await build(history, server, commits)
            build_s = time.perf_counter() - start
            rng = random.Random(2)
            base = f"{server.url}/api/projects/bench"
            async with aiohttp.ClientSession() as session:

                async def get(url: str) -> None:
                    async with session.get(url) as response:
                        assert response.status == 200, await response.text()
                        await response.read()

                health = await timed(lambda: get(f"{server.url}/health"), samples)
                log_page = await timed(lambda: get(f"{base}/log?limit=20"), samples)
                open_commit = await timed(
                    lambda: get(f"{base}/commits/{rng.choice(ids)}?content=1"), samples
                )

            def cli_log() -> None:
                with contextlib.redirect_stdout(io.StringIO()):
                    assert forge_main(["log", "bench", "--server", server.url]) == 0

            async def cli() -> None:
                await asyncio.to_thread(cli_log)

            cli_ms = await timed(cli, samples)

            async def replay() -> None:
                doc = Doc()
                doc.apply_update(history.store.state(rng.choice(ids)))
                ProjectDoc(doc).to_plain()

            replay_ms = await timed(replay, samples)
            size = len(history.store.state(ids[-1]))

    print(
        f"bench_history: {commits} commits built in {build_s:.1f} s "
        f"(snapshot {size / 1024:.0f} KiB); {samples} samples each; times in ms"
    )
    print(f"{'':<48} {'median':>8} {'p95':>8} {'max':>8}")
    print(row("baseline: GET /health (HTTP floor)", health))
    print(row("first page of log: GET /log?limit=20", log_page, "target <= 100"))
    print(row("first page of log: `forge log` handler", cli_ms, "target <= 100"))
    print(row("open a commit: GET /commits/{id}?content=1", open_commit, "target <= 50"))
    print(row("baseline: decode CRDT snapshot + to_plain", replay_ms))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--commits", type=int, default=1000)
    parser.add_argument("--samples", type=int, default=50)
    args = parser.parse_args()
    asyncio.run(run(args.commits, args.samples))
    return 0


if __name__ == "__main__":
    sys.exit(main())
