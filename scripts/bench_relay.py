"""Relay benchmark: the same open-loop load against Forge, the Node reference relay and pycrdt.

R rooms x C clients; every client sends Yjs updates (a map entry it owns, set again and again)
on a fixed schedule so the aggregate rate is U updates/s whatever the relay does (open loop).
Each update carries ``@sender:seq:send_time@``; every other client of the room that receives it
records the propagation latency (CLOCK_MONOTONIC is shared by all processes of one machine) and
which updates arrived, so lost = sent x (C - 1) - delivered, counted once a client has heard
nothing new for 2 s after its last send (30 s at most). The load runs in separate worker
processes (multiprocessing) that speak the y-websocket protocol over raw aiohttp WebSockets.
Server CPU-seconds (user + system, children included) and peak RSS come from psutil on the
server process, sampled during the run.

Relays, each started fresh per configuration:
  forge   `forge serve` (persistence on: SQLite in a temporary --data-dir)
  node    @y/websocket-server@0.1.1 (tests/interop/node_modules; in-memory)
  pycrdt  pycrdt-websocket's WebsocketServer over aiohttp (scripts/bench_relay_pycrdt_server.py)

``--hostile`` adds (Forge only) the 100 x 4 load while 5 connections send garbage frames
(reconnecting whenever the relay closes them) and one connection never reads while asking for
the full document again and again; it prints the well-behaved clients' p99 beside the clean
run's.

The load generator shares the machine with the relay; on a small machine (2 cores) it competes
for CPU, which two columns show: "lag p99" (how late the generator sent, versus its schedule)
and "gen cpu" (the load processes' CPU-seconds). Latencies are only comparable within one run.

    .venv/bin/python scripts/bench_relay.py                  # both configurations, 10 s each
    .venv/bin/python scripts/bench_relay.py --duration 3 --relays forge,node
    .venv/bin/python scripts/bench_relay.py --hostile
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import multiprocessing as mp
import os
import platform
import random
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
INTEROP = ROOT / "tests" / "interop"
NODE_SERVER = INTEROP / "node_modules" / "@y" / "websocket-server" / "src" / "server.js"
PYCRDT_SERVER = ROOT / "scripts" / "bench_relay_pycrdt_server.py"
MARKER = re.compile(rb"@(\d+):(\d+):(\d+)@")
# After the last send, a client keeps reading until nothing new arrived for DRAIN_QUIET_S
# (at most DRAIN_MAX_S); whatever has not arrived by then counts as lost.
DRAIN_QUIET_S = 2.0
DRAIN_MAX_S = 30.0

# y-websocket framing, written out here so the load side stays cheap and independent.
SYNC, AWARENESS = 0, 1
STEP1, STEP2, UPDATE = 0, 1, 2


def var_uint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    out.append(value)
    return bytes(out)


def sync_frame(kind: int, payload: bytes) -> bytes:
    return bytes((SYNC, kind)) + var_uint(len(payload)) + payload


# ---------------------------------------------------------------------------------------------
# relays


@dataclass
class Relay:
    name: str
    process: subprocess.Popen[bytes]
    port: int
    room_path: str  # format string with {room}
    token: str | None = None
    log_path: Path | None = None

    def url(self, room: int) -> str:
        url = f"ws://127.0.0.1:{self.port}{self.room_path.format(room=room)}"
        return f"{url}?token={self.token}" if self.token else url

    def ensure_rooms(self, rooms: int) -> None:
        """Forge opens only projects that exist (opening never creates one): create them."""
        if self.name != "forge":
            return
        for room in range(rooms):
            request = urllib.request.Request(
                f"http://127.0.0.1:{self.port}/api/projects",
                data=json.dumps({"name": f"bench{room}", "exist_ok": True}).encode(),
                headers={"Authorization": f"Bearer {self.token}",
                         "Content-Type": "application/json"},
                method="POST",
            )
            with urllib.request.urlopen(request, timeout=30):
                pass

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_listening(process: subprocess.Popen[bytes], port: int, log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"relay exited with {process.returncode}; see {log}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit(f"relay did not listen on port {port} within {timeout} s; see {log}")


def start_relay(name: str, workdir: Path) -> Relay:
    port = free_port()
    log = workdir / f"{name}-{port}.log"
    out = log.open("wb")
    if name == "forge":
        data_dir = workdir / f"forge-data-{port}"
        cmd = [sys.executable, "-m", "forge_tui", "serve", "--host", "127.0.0.1"]
        cmd += ["--port", str(port), "--data-dir", str(data_dir), "--log-level", "WARNING"]
        cmd += ["--owner-credentials", str(owner_credentials(data_dir))]
        process = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
        wait_listening(process, port, log, 60)
        return Relay(name, process, port, "/sync/bench{room}/main", forge_token(data_dir), log)
    if name == "node":
        if not NODE_SERVER.exists():
            raise SystemExit(f"{NODE_SERVER} missing: run `npm ci` in {INTEROP}")
        env = {**os.environ, "HOST": "127.0.0.1", "PORT": str(port)}
        process = subprocess.Popen(
            ["node", str(NODE_SERVER)], cwd=INTEROP, env=env, stdout=out, stderr=subprocess.STDOUT
        )
        wait_listening(process, port, log, 30)
        return Relay(name, process, port, "/bench{room}", None, log)
    if name == "pycrdt":
        cmd = [sys.executable, str(PYCRDT_SERVER), "--port", str(port)]
        process = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
        wait_listening(process, port, log, 30)
        return Relay(name, process, port, "/bench{room}", None, log)
    raise SystemExit(f"unknown relay {name!r}: choose forge, node or pycrdt")


def owner_credentials(data_dir: Path) -> Path:
    """Where the benchmark's server writes its administrator token: beside, never inside,
    its data directory."""
    return data_dir.with_name(data_dir.name + "-owner.json")


def forge_token(data_dir: Path) -> str | None:
    """The owner token `forge serve` writes on first start (None when auth is not enabled)."""
    path = owner_credentials(data_dir)
    for _ in range(50):
        if path.exists():
            token = json.loads(path.read_text())["token"]
            return str(token) if token else None
        time.sleep(0.1)
    return None


class ServerMonitor:
    """Samples a relay's RSS (with children) and measures its CPU-seconds over a window."""

    def __init__(self, pid: int) -> None:
        import psutil

        self._process = psutil.Process(pid)
        self.peak_rss = 0
        self._cpu_start = self.cpu()

    def _tree(self) -> list[Any]:
        import psutil

        processes = [self._process]
        try:
            processes += self._process.children(recursive=True)
        except psutil.Error:
            pass
        return processes

    def cpu(self) -> float:
        total = 0.0
        for proc in self._tree():
            try:
                times = proc.cpu_times()
                total += times.user + times.system
            except Exception:  # a child that just exited
                pass
        return total

    def sample(self) -> None:
        rss = 0
        for proc in self._tree():
            try:
                rss += proc.memory_info().rss
            except Exception:
                pass
        self.peak_rss = max(self.peak_rss, rss)

    def restart_cpu(self) -> None:
        self._cpu_start = self.cpu()

    def cpu_used(self) -> float:
        return self.cpu() - self._cpu_start


# ---------------------------------------------------------------------------------------------
# load workers (child processes)


@dataclass
class ClientSpec:
    room: int
    url: str
    gid: int  # unique over the whole run; also the Yjs client id (+1)


@dataclass
class ClientResult:
    room: int
    gid: int
    sent: int = 0
    delivered: int = 0  # distinct updates of *other* clients received
    latencies_ms: list[float] = field(default_factory=list)
    lags_ms: list[float] = field(default_factory=list)
    error: str | None = None
    generator_cpu_s: float = 0.0  # set on one client per worker: that worker's CPU-seconds


async def run_client(
    session: Any,
    spec: ClientSpec,
    interval: float,
    ready: asyncio.Event,
    go: asyncio.Event,
    timing: dict[str, float],
    result: ClientResult,
) -> None:
    import aiohttp
    from pycrdt import Doc, Map

    doc: Doc = Doc(client_id=spec.gid + 1)
    entries = doc.get("bench", type=Map)
    outgoing: list[bytes] = []
    doc.observe(lambda event: outgoing.append(event.update))
    seen: set[tuple[int, int]] = set()
    synced = asyncio.Event()
    stopping: list[bool] = []  # non-empty once this client closes on purpose
    progress = [time.monotonic()]  # when an update of another client last arrived

    try:
        ws = await session.ws_connect(spec.url, max_msg_size=0, autoping=True)
    except Exception as exc:
        result.error = f"connect: {exc!r}"
        ready.set()
        return

    async def reader() -> None:
        async for msg in ws:
            if msg.type != aiohttp.WSMsgType.BINARY:
                continue
            data: bytes = msg.data
            if len(data) < 2 or data[0] != SYNC:
                continue
            if data[1] == STEP1:  # the relay asks for our state
                await ws.send_bytes(sync_frame(STEP2, doc.get_update()))
                continue
            if data[1] == STEP2:
                synced.set()
            now = time.monotonic_ns()
            for match in MARKER.finditer(data):
                sender, seq, sent_ns = (int(g) for g in match.groups())
                if sender == spec.gid or (sender, seq) in seen:
                    continue
                seen.add((sender, seq))
                result.latencies_ms.append((now - sent_ns) / 1e6)
                progress[0] = time.monotonic()
        if result.error is None and not stopping:
            result.error = f"closed by relay ({ws.close_code})"

    read_task = asyncio.create_task(reader())
    await ws.send_bytes(sync_frame(STEP1, b"\x00"))
    try:
        await asyncio.wait_for(synced.wait(), 30)
    except TimeoutError:
        result.error = "no sync step 2 within 30 s"
    ready.set()
    await go.wait()
    start = timing["start"] + random.random() * interval
    deadline = timing["start"] + timing["duration"]
    seq = 0
    while not ws.closed:
        scheduled = start + seq * interval
        if scheduled >= deadline:
            break
        delay = scheduled - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        sent_ns = time.monotonic_ns()
        result.lags_ms.append((sent_ns / 1e9 - scheduled) * 1e3)
        entries[f"c{spec.gid}"] = f"@{spec.gid}:{seq}:{sent_ns}@"
        update = outgoing.pop()
        outgoing.clear()
        try:
            await ws.send_bytes(sync_frame(UPDATE, update))
        except Exception as exc:
            result.error = f"send: {exc!r}"
            break
        seq += 1
        result.sent = seq
    await asyncio.sleep(max(0.0, deadline - time.monotonic()))
    while time.monotonic() < deadline + DRAIN_MAX_S:
        if time.monotonic() - progress[0] >= DRAIN_QUIET_S:
            break
        await asyncio.sleep(0.1)
    stopping.append(True)
    result.delivered = len(seen)
    await ws.close()
    read_task.cancel()


def load_worker(
    specs: list[ClientSpec],
    interval: float,
    duration: float,
    ready_q: mp.Queue,  # type: ignore[type-arg]
    go: Any,
    start_at: Any,
    out_q: mp.Queue,  # type: ignore[type-arg]
) -> None:
    import aiohttp

    async def main() -> list[ClientResult]:
        loop = asyncio.get_running_loop()
        results = [ClientResult(s.room, s.gid) for s in specs]
        readies = [asyncio.Event() for _ in specs]
        go_local = asyncio.Event()
        timing: dict[str, float] = {"duration": duration}
        # one session (connection pool without a limit) for all of this worker's clients
        session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        tasks = [
            asyncio.create_task(run_client(session, s, interval, r, go_local, timing, res))
            for s, r, res in zip(specs, readies, results, strict=True)
        ]
        for event in readies:
            await event.wait()
        ready_q.put(len(specs))
        await loop.run_in_executor(None, go.wait)
        cpu_start = time.process_time()
        timing["start"] = start_at.value
        go_local.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        results[0].generator_cpu_s = time.process_time() - cpu_start
        await session.close()
        return results

    out_q.put(asyncio.run(main()))


# ---------------------------------------------------------------------------------------------
# hostile connections (child process)


def ws_client_frame(payload: bytes) -> bytes:
    """A masked binary frame (mask key 0, so the payload goes as is)."""
    header = bytearray([0x82])
    if len(payload) < 126:
        header.append(0x80 | len(payload))
    elif len(payload) < 1 << 16:
        header.append(0x80 | 126)
        header += len(payload).to_bytes(2, "big")
    else:
        header.append(0x80 | 127)
        header += len(payload).to_bytes(8, "big")
    return bytes(header) + b"\x00\x00\x00\x00" + payload


def garbage_frames(rng: random.Random) -> list[bytes]:
    """Seeded garbage: random bytes, bad varints, lying lengths, mutated real messages."""
    from pycrdt import Doc, Text

    doc: Doc = Doc()
    doc["t"] = Text("hostile ✓")
    real = [sync_frame(UPDATE, doc.get_update()), sync_frame(STEP1, doc.get_state())]
    frames = []
    for _ in range(500):
        choice = rng.randrange(4)
        if choice == 0:
            frames.append(rng.randbytes(rng.randrange(1, 200)))
        elif choice == 1:
            frames.append(bytes([0, 2]) + b"\xff" * rng.randrange(9, 20))
        elif choice == 2:
            frames.append(bytes([0, 2]) + var_uint(rng.randrange(1000, 10**6)) + b"abc")
        else:
            frame = bytearray(rng.choice(real))
            for _ in range(rng.randrange(1, 4)):
                frame[rng.randrange(len(frame))] = rng.randrange(256)
            frames.append(bytes(frame[: rng.randrange(2, len(frame) + 1)]))
    return frames


async def garbage_sender(url: str, frames: list[bytes], stop: float, stats: dict[str, Any]) -> None:
    import aiohttp

    async with aiohttp.ClientSession() as session:
        index = 0
        while time.monotonic() < stop:
            try:
                ws = await session.ws_connect(url, max_msg_size=0)
            except Exception:
                stats["connect_failures"] += 1
                await asyncio.sleep(0.1)
                continue
            stats["connections"] += 1
            while not ws.closed and time.monotonic() < stop:
                try:
                    await ws.send_bytes(frames[index % len(frames)])
                except Exception:
                    break
                index += 1
                stats["frames"] += 1
                try:  # the relay answers garbage by closing; read what it says
                    msg = await ws.receive(timeout=0.02)
                    if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED):
                        code = ws.close_code
                        stats["closes"][str(code)] = stats["closes"].get(str(code), 0) + 1
                except TimeoutError:
                    pass
            await ws.close()


async def never_reader(port: int, path: str, stop: float, stats: dict[str, Any]) -> None:
    """Joins a room over a raw socket, asks for the document over and over, never reads."""
    from pycrdt import Doc, Text

    loop = asyncio.get_running_loop()
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await loop.sock_connect(sock, ("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    request = (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    await loop.sock_sendall(sock, request.encode())
    response = b""
    while b"\r\n\r\n" not in response:  # byte by byte: read the headers and nothing more
        chunk = await loop.sock_recv(sock, 1)
        if not chunk:
            stats["never_reader"] = "refused at upgrade"
            return
        response += chunk
    stats["never_reader_status"] = response.split(b"\r\n", 1)[0].decode()
    # make the document big, so that each request for it costs the relay 256 KiB of queue
    blob: Doc = Doc()
    blob["blob"] = Text("x" * 256 * 1024)
    try:
        await loop.sock_sendall(sock, ws_client_frame(sync_frame(UPDATE, blob.get_update())))
        while time.monotonic() < stop:
            await loop.sock_sendall(sock, ws_client_frame(sync_frame(STEP1, b"\x00")))
            stats["never_reader_requests"] += 1
            await asyncio.sleep(0.05)
    except OSError as exc:
        stats["never_reader_send_error"] = repr(exc)
    # Now read: EOF after the buffered bytes means the relay dropped us.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    received = 0
    outcome = "still connected at the end"
    try:
        while True:
            chunk = await asyncio.wait_for(loop.sock_recv(sock, 1 << 16), 2.0)
            if not chunk:
                outcome = "disconnected by the relay"
                break
            received += len(chunk)
    except TimeoutError:
        pass
    except OSError:
        outcome = "disconnected by the relay (reset)"
    stats["never_reader"] = outcome
    stats["never_reader_bytes_buffered"] = received
    sock.close()


def hostile_worker(
    relay_port: int,
    urls: list[str],
    never_reader_path: str,
    go: Any,
    start_at: Any,
    duration: float,
    out_q: mp.Queue,  # type: ignore[type-arg]
) -> None:
    async def main() -> dict[str, Any]:
        stats: dict[str, Any] = {
            "connections": 0,
            "connect_failures": 0,
            "frames": 0,
            "closes": {},
            "never_reader_requests": 0,
        }
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, go.wait)
        stop = start_at.value + duration
        rng = random.Random(1234)
        frames = garbage_frames(rng)
        await asyncio.gather(
            *(garbage_sender(url, frames[i::5], stop, stats) for i, url in enumerate(urls)),
            never_reader(relay_port, never_reader_path, stop, stats),
        )
        return stats

    out_q.put(asyncio.run(main()))


# ---------------------------------------------------------------------------------------------
# one run


@dataclass
class RunResult:
    label: str
    relay: str
    sent: int
    expected: int
    delivered: int
    latencies: list[float]
    lags: list[float]
    cpu_s: float
    peak_rss_mb: float
    generator_cpu_s: float
    errors: list[str]
    hostile: dict[str, Any] | None = None

    @property
    def lost(self) -> int:
        return self.expected - self.delivered


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run_load(
    relay: Relay,
    rooms: int,
    clients: int,
    rate: float,
    duration: float,
    workers: int,
    hostile: bool = False,
) -> RunResult:
    relay.ensure_rooms(rooms + 1)
    ctx = mp.get_context("spawn")
    interval = rooms * clients / rate
    specs = [
        ClientSpec(room, relay.url(room), room * clients + c)
        for room in range(rooms)
        for c in range(clients)
    ]
    ready_q: mp.Queue = ctx.Queue()  # type: ignore[type-arg]
    out_q: mp.Queue = ctx.Queue()  # type: ignore[type-arg]
    go = ctx.Event()
    start_at = ctx.Value("d", 0.0)
    procs = [
        ctx.Process(
            target=load_worker,
            args=(specs[i::workers], interval, duration, ready_q, go, start_at, out_q),
        )
        for i in range(workers)
    ]
    for proc in procs:
        proc.start()
    if hostile:
        garbage_urls = [relay.url(1 + i) for i in range(5)]  # into busy rooms
        never_path = relay.url(0).split(f":{relay.port}", 1)[1]  # room 0: a busy room
        hostile_proc = ctx.Process(
            target=hostile_worker,
            args=(relay.port, garbage_urls, never_path, go, start_at, duration, out_q),
        )
        hostile_proc.start()
    monitor = ServerMonitor(relay.process.pid)
    connected = 0
    while connected < len(specs):
        connected += ready_q.get(timeout=20)
    monitor.restart_cpu()
    start_at.value = time.monotonic() + 0.5
    go.set()
    end = start_at.value + duration + DRAIN_MAX_S + 1.0
    results: list[Any] = []
    expected_outputs = workers + (1 if hostile else 0)
    while len(results) < expected_outputs:
        monitor.sample()
        if relay.process.poll() is not None:
            raise SystemExit(f"{relay.name} relay died during the run; see {relay.log_path}")
        try:
            results.append(out_q.get(timeout=0.2))
        except Exception:  # queue.Empty
            if time.monotonic() > end + 60:
                raise SystemExit("load workers did not finish") from None
    cpu = monitor.cpu_used()
    for proc in procs:
        proc.join()
    hostile_stats = None
    client_results: list[ClientResult] = []
    for item in results:
        if isinstance(item, dict):
            hostile_stats = item
        else:
            client_results += item
    sent_by_room: dict[int, int] = {}
    for res in client_results:
        sent_by_room[res.room] = sent_by_room.get(res.room, 0) + res.sent
    expected = sum(res.sent * (clients - 1) for res in client_results)
    return RunResult(
        label=f"{rooms}x{clients} @{rate:g}/s" + (" hostile" if hostile else ""),
        relay=relay.name,
        sent=sum(sent_by_room.values()),
        expected=expected,
        delivered=sum(res.delivered for res in client_results),
        latencies=[x for res in client_results for x in res.latencies_ms],
        lags=[x for res in client_results for x in res.lags_ms],
        cpu_s=cpu,
        generator_cpu_s=sum(res.generator_cpu_s for res in client_results),
        peak_rss_mb=monitor.peak_rss / 2**20,
        errors=[f"client {r.gid}: {r.error}" for r in client_results if r.error],
        hostile=hostile_stats,
    )


def print_table(results: list[RunResult]) -> None:
    header = (
        f"{'load':<22} {'relay':<7} {'sent':>7} {'expected':>9} {'delivered':>9} {'lost':>6} "
        f"{'p50 ms':>7} {'p99 ms':>7} {'max ms':>8} {'cpu s':>6} {'rss MB':>7} {'lag p99':>8} "
        f"{'gen cpu':>7}"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        print(
            f"{r.label:<22} {r.relay:<7} {r.sent:>7} {r.expected:>9} {r.delivered:>9} "
            f"{r.lost:>6} {percentile(r.latencies, 0.5):>7.2f} "
            f"{percentile(r.latencies, 0.99):>7.2f} "
            f"{max(r.latencies, default=float('nan')):>8.1f} {r.cpu_s:>6.2f} "
            f"{r.peak_rss_mb:>7.1f} {percentile(r.lags, 0.99):>8.2f} {r.generator_cpu_s:>7.2f}"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=10.0, help="load seconds per run")
    parser.add_argument("--relays", default="forge,node,pycrdt", help="comma-separated list")
    parser.add_argument(
        "--configs",
        default="100x4@2000,20x10@400",
        help="comma-separated ROOMSxCLIENTS@RATE (aggregate updates/s)",
    )
    parser.add_argument("--workers", type=int, default=2, help="load generator processes")
    parser.add_argument(
        "--hostile", action="store_true", help="also run 100x4@2000 against Forge under attack"
    )
    parser.add_argument(
        "--hostile-config",
        default="100x4@2000",
        help="ROOMSxCLIENTS@RATE of the hostile run (smaller on small machines)",
    )
    args = parser.parse_args()
    configs = []
    for text in args.configs.split(","):
        match = re.fullmatch(r"(\d+)x(\d+)@(\d+(?:\.\d+)?)", text.strip())
        if not match:
            parser.error(f"config {text!r} is not ROOMSxCLIENTS@RATE, e.g. 100x4@2000")
        configs.append((int(match[1]), int(match[2]), float(match[3])))
    relays = [name.strip() for name in args.relays.split(",") if name.strip()]
    match = re.fullmatch(r"(\d+)x(\d+)@(\d+(?:\.\d+)?)", args.hostile_config.strip())
    if not match:
        parser.error(f"--hostile-config {args.hostile_config!r} is not ROOMSxCLIENTS@RATE")
    hostile_cfg = (int(match[1]), int(match[2]), float(match[3]))
    hostile_label = f"{hostile_cfg[0]}x{hostile_cfg[1]} @{hostile_cfg[2]:g}/s"

    print(
        f"# bench_relay {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.node()}: "
        f"{os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}; "
        f"{args.duration:g} s per run, {args.workers} load processes on the same machine; "
        f"load average {os.getloadavg()[0]:.1f} at start"
    )
    results: list[RunResult] = []
    with tempfile.TemporaryDirectory(prefix="bench-relay-") as tmp:
        workdir = Path(tmp)
        runs = [(name, cfg, False) for cfg in configs for name in relays]
        if args.hostile:
            runs.append(("forge", hostile_cfg, True))
            if not any(n == "forge" and c == hostile_cfg for n, c, _ in runs[:-1]):
                runs.insert(len(runs) - 1, ("forge", hostile_cfg, False))
        for name, (rooms, clients, rate), hostile in runs:
            relay = start_relay(name, workdir)
            try:
                result = run_load(relay, rooms, clients, rate, args.duration, args.workers, hostile)
            finally:
                relay.stop()
            results.append(result)
            print(
                f"  done: {result.label} {name}: lost {result.lost}, "
                f"p99 {percentile(result.latencies, 0.99):.2f} ms",
                file=sys.stderr,
            )
            for err in result.errors[:5]:
                print(f"    {err}", file=sys.stderr)
            if len(result.errors) > 5:
                print(f"    ... {len(result.errors) - 5} more client errors", file=sys.stderr)
    print_table(results)
    print(f"# load average {os.getloadavg()[0]:.1f} at the end")
    for r in results:
        if r.hostile is not None:
            clean = next(
                (x for x in results if x.relay == "forge" and x.label == hostile_label), None
            )
            clean_p99 = percentile(clean.latencies, 0.99) if clean else float("nan")
            print(
                f"\nhostile (forge, {hostile_label}): well-behaved p99 "
                f"{percentile(r.latencies, 0.99):.2f} ms vs clean {clean_p99:.2f} ms; "
                f"lost {r.lost}"
            )
            stats = r.hostile
            print(
                f"  garbage: {stats['frames']} frames on {stats['connections']} connections, "
                f"closes by code {stats['closes']}, connect failures {stats['connect_failures']}"
            )
            print(
                f"  never-reader: {stats.get('never_reader')} after "
                f"{stats['never_reader_requests']} full-document requests "
                f"({stats.get('never_reader_status', '?')})"
            )
    node = {r.label: r for r in results if r.relay == "node"}
    for r in results:
        if r.relay == "forge" and r.label in node:
            ratio = percentile(r.latencies, 0.99) / percentile(node[r.label].latencies, 0.99)
            verdict = "meets" if ratio <= 2 and r.lost == 0 else "MISSES"
            print(
                f"target {r.label}: forge p99 = {ratio:.2f} x node p99, lost {r.lost} "
                f"-> {verdict} (p99 <= 2x node, zero lost)"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
