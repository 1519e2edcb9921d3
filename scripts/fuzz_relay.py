#!/usr/bin/env python3
"""Fuzz a live Forge relay: hostile frames into rooms while well-behaved clients edit them.

Starts ``forge serve`` (token auth, a temporary data directory) unless ``--server`` is given, then
runs, at the same time:

- well-behaved clients (the Python sync client) in each room, each setting its own keys in the
  map ``wb`` and inserting into the text ``wb_text``;
- fuzz connections (as a writer, and as a reader) sending frames made by mutating real captured
  y-websocket messages (whole frames byte by byte, or their payloads re-wrapped so the mutation
  reaches the CRDT and awareness decoders) and random bytes, reconnecting whenever the relay
  closes them. The captured messages edit other root types (``fz_*``), so a mutation that
  happens to be a valid edit cannot touch what the well-behaved clients check.

After each hostile frame a fuzz connection sends a sync step 1 and waits for the answer (the
relay answers a step 1 only after processing what came before it) or for the close, so every
frame counted was certainly read by the relay, not just written into a dead socket.
At the end it checks: the relay still answers ``/health``; every well-behaved client converged to
the same state as a fresh client; the ``wb`` content is exactly what the well-behaved clients
wrote. It prints the figures and exits 0 only if all checks pass. The test
``tests/server/test_fuzz_relay.py`` runs the same engine on 20,000 frames.

    .venv/bin/python scripts/fuzz_relay.py --frames 1000000 --seed 1
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import collections
import contextlib
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from pycrdt import Array, Doc, Map, Text

from forge_server.client import SyncClient, room_url
from forge_server.relay.protocol import (
    AuthMessage,
    AwarenessEntry,
    AwarenessMessage,
    Decoder,
    Encoder,
    ProtocolError,
    QueryAwarenessMessage,
    SyncMessage,
    SyncType,
    decode_message,
    encode_awareness,
    encode_message,
)

PROBE = encode_message(SyncMessage(SyncType.STEP1, b"\x00"))  # sync step 1, empty state


# -- material: real messages ---------------------------------------------------------------------


def capture_material(seed: int) -> list[bytes]:
    """Frames a real client sends while editing: every update its document emitted (captured
    from the document's update events), state vectors, full-state step 2s, awareness updates,
    queryAwareness and auth messages. They edit only ``fz_*`` root types."""
    rng = random.Random(seed)
    frames: list[bytes] = []
    doc = Doc()
    updates: list[bytes] = []
    doc.observe(lambda event: updates.append(event.update))
    text = doc.get("fz_text", type=Text)
    fmap = doc.get("fz_map", type=Map)
    arr = doc.get("fz_array", type=Array)
    for step in range(120):
        with doc.transaction():
            kind = rng.randrange(5)
            if kind == 0 or len(str(text)) < 4:
                pos = rng.randint(0, len(str(text)))
                text.insert(
                    pos, rng.choice(["abc", "é中", "hello ", "🙂", "x" * rng.randint(1, 40)])
                )
            elif kind == 1:
                start = rng.randrange(len(str(text)) - 1)
                del text[start : start + rng.randint(1, 2)]
            elif kind == 2:
                fmap[f"k{rng.randrange(10)}"] = {"n": step, "s": "v" * rng.randrange(20)}
            elif kind == 3:
                arr.append([step, "item", {"deep": [1, 2, step]}])
            else:
                fmap[f"nested{step % 3}"] = Map({"a": step})
        if step % 10 == 0:
            frames.append(encode_message(SyncMessage(SyncType.STEP1, doc.get_state())))
    for update in updates:
        frames.append(encode_message(SyncMessage(SyncType.UPDATE, update)))
    frames.append(encode_message(SyncMessage(SyncType.STEP2, doc.get_update())))
    frames.append(encode_message(SyncMessage(SyncType.STEP2, b"\x00\x00")))
    for clock in range(1, 6):
        state = {"user": {"name": f"fuzz{clock}", "color": "#ff0000"}, "cursor": [clock, 3]}
        entries = [AwarenessEntry(rng.getrandbits(30), clock, json.dumps(state))]
        frames.append(encode_message(AwarenessMessage(encode_awareness(entries))))
    frames.append(encode_message(QueryAwarenessMessage()))
    frames.append(encode_message(AuthMessage("permission denied")))
    return frames


# -- mutations -----------------------------------------------------------------------------------

_INTERESTING = [0x00, 0x01, 0x7F, 0x80, 0xFF, 0xFE, 0xC0]


def mutate_bytes(rng: random.Random, data: bytes, others: list[bytes]) -> bytes:
    buf = bytearray(data)
    for _ in range(rng.choice((1, 1, 1, 2, 3, 8))):
        op = rng.randrange(9)
        pos = rng.randrange(len(buf) + 1)
        if op == 0 and buf:  # flip a bit
            i = min(pos, len(buf) - 1)
            buf[i] ^= 1 << rng.randrange(8)
        elif op == 1 and buf:  # set a byte
            buf[min(pos, len(buf) - 1)] = rng.randrange(256)
        elif op == 2 and buf:  # an interesting byte (varint edges)
            buf[min(pos, len(buf) - 1)] = rng.choice(_INTERESTING)
        elif op == 3:  # insert random bytes
            buf[pos:pos] = rng.randbytes(rng.randint(1, 16))
        elif op == 4 and buf:  # delete a range
            del buf[pos : pos + rng.randint(1, 16)]
        elif op == 5:  # truncate
            del buf[pos:]
        elif op == 6 and buf:  # duplicate a chunk
            chunk = bytes(buf[pos : pos + rng.randint(1, 32)])
            buf[pos:pos] = chunk
        elif op == 7:  # splice with another frame
            other = rng.choice(others)
            cut = rng.randrange(len(other) + 1)
            buf = buf[:pos] + bytearray(other[cut:])
        else:  # a huge varint
            buf[pos:pos] = bytes([0xFF] * rng.randint(1, 12) + [0x7F])
    return bytes(buf)


def rewrap(rng: random.Random, frame: bytes, others: list[bytes]) -> bytes | None:
    """Mutate the payload of a sync/awareness frame and re-encode it with a correct length, so
    the mutation passes the frame codec and reaches the CRDT or awareness decoder."""
    if len(frame) < 3 or frame[0] not in (0, 1):
        return None
    if frame[0] == 0:
        kind = frame[1]
        header_len = 2
    else:
        kind = None
        header_len = 1
    # skip the var-uint length of the payload
    i = header_len
    while i < len(frame) and frame[i] & 0x80:
        i += 1
    payload = frame[i + 1 :]
    mutated = mutate_bytes(rng, payload, [o[3:] for o in others[:50]] or [b""])
    enc = Encoder()
    if kind is None:
        enc.var_uint(1)
    else:
        enc.var_uint(0).var_uint(kind)
    return enc.var_bytes(mutated).to_bytes()


def random_frame(rng: random.Random) -> bytes:
    size = rng.choice((0, 1, 2, 3, 5, 8, 16, 64, 256, 1024, rng.randint(0, 4096)))
    data = rng.randbytes(size)
    if data and rng.random() < 0.5:  # a plausible message type, then noise
        data = bytes([rng.randrange(4)]) + data[1:]
    return data


def plausible_frame(rng: random.Random, material: list[bytes]) -> bytes:
    """A frame that follows the protocol but lies: spoofed or odd awareness, state vectors
    naming unknown clients, replays, queryAwareness and auth messages from a client."""
    roll = rng.randrange(5)
    if roll == 0:  # someone else's presence, odd clocks, odd (valid) JSON
        state = rng.choice(
            [
                "null",
                "{}",
                "[]",
                '"x"',
                "1e308",
                json.dumps({"user": "x" * rng.randrange(500)}),
                json.dumps({"nested": [[[[{"a": None}]]]]}),
                json.dumps({"é": "中🙂"}),
            ]
        )
        entries = [
            AwarenessEntry(
                rng.getrandbits(rng.choice((1, 8, 32, 53))),
                rng.getrandbits(rng.choice((1, 8, 32, 53))),
                state,
            )
            for _ in range(rng.randint(0, 5))
        ]
        return encode_message(AwarenessMessage(encode_awareness(entries)))
    if roll == 1:  # a state vector full of made-up clients and clocks
        enc = Encoder()
        count = rng.randint(0, 8)
        enc.var_uint(count)
        for _ in range(count):
            enc.var_uint(rng.getrandbits(32)).var_uint(rng.getrandbits(rng.choice((4, 20, 53))))
        return encode_message(SyncMessage(SyncType.STEP1, enc.to_bytes()))
    if roll == 2:
        return encode_message(QueryAwarenessMessage())
    if roll == 3:
        return encode_message(AuthMessage("let me in" * rng.randrange(20)))
    return rng.choice(material)  # a real message again (a replay)


def hostile_frames(rng: random.Random, material: list[bytes]) -> Iterator[bytes]:
    """Endless seeded hostile frames: a third break the frame codec (byte mutations, random
    bytes), a third carry mutated payloads to the CRDT / awareness decoders, a third are
    plausible lies (spoofed presence, made-up state vectors, replays)."""
    while True:
        roll = rng.random()
        base = rng.choice(material)
        if roll < 0.25:
            yield mutate_bytes(rng, base, material)
        elif roll < 0.33:
            yield random_frame(rng)
        elif roll < 0.66:
            yield rewrap(rng, base, material) or mutate_bytes(rng, base, material)
        else:
            yield plausible_frame(rng, material)


# -- connections ---------------------------------------------------------------------------------


@dataclass
class FuzzStats:
    sent: int = 0
    confirmed: int = 0  # read by the relay for certain (a later probe was answered, or it closed)
    connections: int = 0
    refused_connects: int = 0
    permission_denied: int = 0
    closes: Counter[str] = field(default_factory=Counter)


class Refused(Exception):
    """The relay answered the WebSocket handshake with an HTTP error."""


class RelayGone(Exception):
    """The relay has refused or dropped every connection for ``RELAY_GONE_S`` seconds."""


RELAY_GONE_S = 15.0


class RawWebSocket:
    """A bare-bones WebSocket client (RFC 6455) on asyncio streams: a fuzzer reconnects after
    nearly every other frame, and a full client library would cost more than the relay."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.close_code: int | None = None

    @classmethod
    async def connect(cls, url: str, token: str) -> RawWebSocket:
        match = re.fullmatch(r"ws://([^/:]+):(\d+)(/.*)", url)
        if match is None:
            raise ValueError(f"expected ws://host:port/path, got {url!r}")
        host, port, path = match.group(1), int(match.group(2)), match.group(3)
        reader, writer = await asyncio.open_connection(host, port)
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write(
            (
                f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                f"Sec-WebSocket-Version: 13\r\nAuthorization: Bearer {token}\r\n\r\n"
            ).encode()
        )
        head = await reader.readuntil(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 101"):
            writer.close()
            raise Refused(head.split(b"\r\n", 1)[0].decode(errors="replace"))
        return cls(reader, writer)

    def send(self, data: bytes, opcode: int = 0x2) -> None:
        n = len(data)
        header = bytearray([0x80 | opcode])
        if n < 126:
            header.append(0x80 | n)
        elif n < 65536:
            header.append(0x80 | 126)
            header += n.to_bytes(2, "big")
        else:
            header.append(0x80 | 127)
            header += n.to_bytes(8, "big")
        mask = os.urandom(4)
        header += mask
        masked = (
            int.from_bytes(data, "big") ^ int.from_bytes((mask * (n // 4 + 1))[:n], "big")
        ).to_bytes(n, "big")
        self.writer.write(bytes(header) + masked)

    async def recv(self) -> tuple[int, bytes]:
        """The next data frame as (opcode, payload); answers pings; (8, b"") when closed."""
        while True:
            try:
                b0, b1 = await self.reader.readexactly(2)
                n = b1 & 0x7F
                if n == 126:
                    n = int.from_bytes(await self.reader.readexactly(2), "big")
                elif n == 127:
                    n = int.from_bytes(await self.reader.readexactly(8), "big")
                payload = await self.reader.readexactly(n)
            except (asyncio.IncompleteReadError, ConnectionError):
                return 0x8, b""
            opcode = b0 & 0x0F
            if opcode == 0x9:
                self.send(payload, 0xA)
                continue
            if opcode == 0x8:
                self.close_code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else None
                with contextlib.suppress(ConnectionError):
                    self.send(payload[:2], 0x8)  # answer the close at once
            return opcode, payload

    async def close(self) -> None:
        if not self.writer.is_closing():
            with contextlib.suppress(ConnectionError):
                self.send(b"\x03\xe8", 0x8)
            self.writer.close()
        with contextlib.suppress(ConnectionError):
            await self.writer.wait_closed()


def _is_step1(frame: bytes) -> bool:
    """Whether the relay will answer this frame with a step 2 (if it accepts it)."""
    if frame[:2] != b"\x00\x00":
        return False
    try:
        decode_message(frame)
    except ProtocolError:
        return False
    return True


async def fuzz_connection(
    url: str,
    token: str,
    frames: Iterator[bytes],
    budget: list[int],
    stats: FuzzStats,
) -> None:
    """Send hostile frames until the shared budget is spent, reconnecting after each close.

    After each frame comes a probe (sync step 1): the relay answers a step 1 only after it has
    processed everything before it, so a frame counts as read once the probe is answered, or
    when the relay closes the connection (then it was this very frame that broke a rule)."""
    failing_since: float | None = None
    while budget[0] > 0:
        try:
            ws = await RawWebSocket.connect(url, token)
        except (Refused, OSError, asyncio.IncompleteReadError) as exc:
            stats.refused_connects += 1
            now = time.monotonic()
            failing_since = failing_since or now
            if now - failing_since > RELAY_GONE_S:
                budget[0] = 0  # the other fuzz connections stop too
                raise RelayGone(
                    f"the relay refused every connection for {RELAY_GONE_S:g} s "
                    f"(last: {exc!r}); is it still running?"
                ) from exc
            await asyncio.sleep(0.05)
            continue
        failing_since = None
        stats.connections += 1
        try:
            await _fuzz_session(ws, frames, budget, stats)
        finally:
            await ws.close()
            if ws.close_code is not None:
                stats.closes[str(ws.close_code)] += 1


async def _fuzz_session(
    ws: RawWebSocket, frames: Iterator[bytes], budget: list[int], stats: FuzzStats
) -> None:
    # The relay greets with its sync step 1 (its state vector). Sent back as the probe, it is
    # answered with only what changed since: cheap even when the document has grown large.
    opcode, greeting = await ws.recv()
    if opcode == 0x8:
        return
    probe = greeting if greeting[:2] == b"\x00\x00" else PROBE
    while budget[0] > 0:
        budget[0] -= 1
        frame = next(frames)
        answers = 1 + _is_step1(frame)  # the probe's step 2, and the frame's own if a step 1
        try:
            ws.send(frame)
            ws.send(probe)
            await ws.writer.drain()
        except ConnectionError:
            stats.sent += 1
            stats.confirmed += 1  # closed on this frame (the previous ones were confirmed)
            return
        stats.sent += 1
        while answers:
            opcode, data = await ws.recv()
            if opcode == 0x8:
                stats.confirmed += 1  # closed: this frame broke a rule
                return
            if data[:2] == b"\x02\x00":
                stats.permission_denied += 1
            elif data[:2] == b"\x00\x01":
                answers -= 1
        stats.confirmed += 1


@dataclass
class WellBehaved:
    client: SyncClient
    index: int
    edits: int = 0


async def well_behaved(
    url: str, token: str, index: int, min_edits: int, pause: float, stop: asyncio.Event
) -> WellBehaved:
    """A client that sets its own keys in ``wb`` and inserts into ``wb_text`` until ``stop``
    is set (and at least ``min_edits`` times)."""
    client = SyncClient(url, token=token)
    await client.start()
    await client.synced(30)
    me = WellBehaved(client, index)
    wb = client.doc.get("wb", type=Map)
    text = client.doc.get("wb_text", type=Text)
    client.awareness.set_local_state({"user": {"name": f"wb{index}"}})
    while me.edits < min_edits or not stop.is_set():
        with client.doc.transaction():
            wb[f"c{index}-{me.edits}"] = me.edits
            text.insert(0, f"<{index}.{me.edits}>")
        me.edits += 1
        await asyncio.sleep(pause)
    await client.flush(60)
    return me


def state_vector(doc: Doc) -> frozenset[tuple[int, int]]:
    """The document's state vector as a set of (client, clock): its encoding is not canonical
    (entries come in hash-map order), so two equal states may encode differently."""
    dec = Decoder(doc.get_state())
    return frozenset((dec.var_uint(), dec.var_uint()) for _ in range(dec.var_uint()))


def wb_content(doc: Doc) -> tuple[dict[str, object], str]:
    return doc.get("wb", type=Map).to_py() or {}, str(doc.get("wb_text", type=Text))


@dataclass
class FuzzResult:
    stats: FuzzStats
    seconds: float
    rooms: int
    well_behaved: int
    edits: int
    health: dict[str, object]
    problems: list[str]

    def summary(self) -> str:
        s = self.stats
        closes = ", ".join(f"{code}: {n}" for code, n in sorted(s.closes.items()))
        return (
            f"{s.sent} hostile frames sent ({s.confirmed} confirmed read) over "
            f"{s.connections} connections in {self.seconds:.1f} s; closes {{{closes}}}; "
            f"{s.permission_denied} permission-denied; {self.well_behaved} well-behaved clients "
            f"made {self.edits} edits meanwhile in {self.rooms} rooms; relay counters "
            f"{self.health.get('counters')}; "
            + ("OK" if not self.problems else "PROBLEMS: " + "; ".join(self.problems))
        )


async def run_fuzz(
    server_url: str,
    *,
    writer_token: str,
    reader_token: str,
    project: str = "fuzz",
    rooms: int = 2,
    frames: int = 20_000,
    writer_fuzzers: int = 3,
    reader_fuzzers: int = 1,
    well_behaved_per_room: int = 2,
    min_edits: int = 20,
    edit_pause: float = 0.05,
    seed: int = 1,
) -> FuzzResult:
    """Fuzz ``rooms`` live rooms of ``project`` with ``frames`` hostile frames; check the result.

    Writers' and readers' fuzz connections share the frame budget; well-behaved clients (as the
    writer) edit throughout. Returns the figures and a list of problems (empty when all is well).
    """
    material = capture_material(seed)
    names = [f"{project}/room{i}" for i in range(rooms)]
    urls = [room_url(server_url, n) for n in names]
    stats = FuzzStats()
    budget = [frames]
    start = time.monotonic()
    problems: list[str] = []
    async with aiohttp.ClientSession() as session:
        fuzzers = []
        for i in range(writer_fuzzers + reader_fuzzers):
            token = writer_token if i < writer_fuzzers else reader_token
            rng = random.Random(seed * 1000 + i)
            fuzzers.append(
                fuzz_connection(
                    urls[i % rooms], token, hostile_frames(rng, material), budget, stats
                )
            )
        stop = asyncio.Event()
        editing = [
            asyncio.ensure_future(
                well_behaved(urls[r], writer_token, r * 100 + c, min_edits, edit_pause, stop)
            )
            for r in range(rooms)
            for c in range(well_behaved_per_room)
        ]
        await asyncio.gather(*fuzzers)
        seconds = time.monotonic() - start
        stop.set()
        clients = await asyncio.gather(*editing)
        async with session.get(f"{server_url}/health") as response:
            health = await response.json() if response.status == 200 else {}
            if response.status != 200:
                problems.append(f"/health answered {response.status}")
        # every well-behaved client keeps syncing: one more edit each, then all must agree
        for wbc in clients:
            wbc.client.doc.get("wb", type=Map)[f"final-{wbc.index}"] = True
        for wbc in clients:
            await wbc.client.flush(60)
        for r, name in enumerate(names):
            members = clients[r * well_behaved_per_room : (r + 1) * well_behaved_per_room]
            fresh = SyncClient(urls[r], token=writer_token)
            async with fresh:
                await fresh.synced(30)
                await _converged([*(m.client for m in members), fresh], 60)
                wb, text = wb_content(fresh.doc)
            expected: dict[str, object] = {
                f"c{m.index}-{k}": k for m in members for k in range(m.edits)
            }
            expected.update({f"final-{m.index}": True for m in members})
            if wb != expected:
                problems.append(f"{name}: wb differs from what the well-behaved clients wrote")
            pieces = re.findall(r"<(\d+)\.(\d+)>", text)
            want = {(str(m.index), str(k)) for m in members for k in range(m.edits)}
            if set(pieces) != want or len(pieces) != len(want) or re.sub(r"<\d+\.\d+>", "", text):
                problems.append(f"{name}: wb_text differs from what the well-behaved clients wrote")
        for wbc in clients:
            await wbc.client.stop()
    edits = sum(c.edits for c in clients)
    return FuzzResult(stats, seconds, rooms, len(clients), edits, health, problems)


async def _converged(clients: list[SyncClient], timeout: float) -> None:
    async with asyncio.timeout(timeout):
        while True:
            states = {state_vector(c.doc) for c in clients}
            contents = {json.dumps(wb_content(c.doc), sort_keys=True) for c in clients}
            if len(states) == 1 and len(contents) == 1:
                return
            await asyncio.sleep(0.05)


# -- command line --------------------------------------------------------------------------------


def _start_server(
    data_dir: Path, env: dict[str, str], tail: collections.deque[str]
) -> tuple[subprocess.Popen[str], str]:
    forge = [
        sys.executable,
        "-m",
        "forge_tui",
        "serve",
        "--port",
        "0",
        "--data-dir",
        str(data_dir),
    ]
    proc = subprocess.Popen(
        # Fuzz every frame: no early 429 for a client that keeps sending malformed frames.
        [*forge, "--log-level", "ERROR", "--relay-setting", "malformed_strikes_before_refusal=1e9"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    assert proc.stdout is not None
    stdout = proc.stdout
    for line in stdout:
        match = re.search(r"listening on (http://\S+)", line)
        if match:
            # keep draining its output so the relay never blocks on a full pipe; the last
            # lines are kept to say why, should the relay die
            threading.Thread(target=lambda: tail.extend(stdout), daemon=True).start()
            return proc, match.group(1)
    raise SystemExit(f"forge serve did not start (exit {proc.wait()})")


def _tokens(data_dir: Path, project: str) -> tuple[str, str]:
    from forge_server.auth import AuthStore

    with AuthStore.open(data_dir) as store:
        store.add_user("fuzz-writer")
        store.add_user("fuzz-reader")
        store.create_project(project, "fuzz-writer")
        store.grant("fuzz-reader", project, "reader")
        return store.create_token("fuzz-writer")[0], store.create_token("fuzz-reader")[0]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rooms", type=int, default=4)
    parser.add_argument("--writer-fuzzers", type=int, default=6)
    parser.add_argument("--reader-fuzzers", type=int, default=2)
    parser.add_argument("--well-behaved", type=int, default=2, help="clients per room")
    parser.add_argument(
        "--edit-pause",
        type=float,
        default=0.5,
        help="seconds between a well-behaved client's edits (their documents grow all run long)",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="forge-fuzz-") as tmp:
        data_dir = Path(tmp)
        writer, reader = _tokens(data_dir, "fuzz")
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        tail: collections.deque[str] = collections.deque(maxlen=40)
        proc, url = _start_server(data_dir, env, tail)
        try:
            coro = run_fuzz(
                url,
                writer_token=writer,
                reader_token=reader,
                rooms=args.rooms,
                frames=args.frames,
                writer_fuzzers=args.writer_fuzzers,
                reader_fuzzers=args.reader_fuzzers,
                well_behaved_per_room=args.well_behaved,
                edit_pause=args.edit_pause,
                seed=args.seed,
            )
            try:
                result: FuzzResult | None = asyncio.run(coro)
            except RelayGone as exc:
                result = None
                print(f"PROBLEM: {exc}")
            alive = proc.poll() is None
        finally:
            proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(30)
    if result is not None:
        print(f"fuzz_relay seed={args.seed}: {result.summary()}")
    if not alive:
        print(f"PROBLEM: the relay process died (exit {proc.returncode}); its last output:")
        print("".join(tail), end="")
    return 0 if alive and result is not None and not result.problems else 1


if __name__ == "__main__":
    raise SystemExit(main())
