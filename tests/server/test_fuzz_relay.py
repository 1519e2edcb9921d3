"""Hostile frames into live rooms of a real `forge serve` while well-behaved clients edit.

The engine is ``scripts/fuzz_relay.py`` (which also runs the ≥1,000,000-frame version); here it
sends 20,000 seeded frames — mutations of real captured messages and random bytes — from writer
and reader connections into two rooms. The relay must stay up, the well-behaved clients must keep
syncing, and the documents must hold exactly what the well-behaved clients wrote.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


def load_fuzzer() -> ModuleType:
    spec = importlib.util.spec_from_file_location("fuzz_relay", ROOT / "scripts" / "fuzz_relay.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["fuzz_relay"] = module
    spec.loader.exec_module(module)
    return module


fuzz = load_fuzzer()


class TestMutations:
    def test_material_is_real_and_decodes(self) -> None:
        from forge_server.relay.protocol import SyncMessage, decode_message

        frames = fuzz.capture_material(1)
        decoded = [decode_message(f) for f in frames]
        updates = [m for m in decoded if isinstance(m, SyncMessage)]
        assert len(updates) > 100

    def test_seeded_frames_are_reproducible_and_varied(self) -> None:
        import itertools
        import random

        material = fuzz.capture_material(1)
        a = list(itertools.islice(fuzz.hostile_frames(random.Random(7), material), 500))
        b = list(itertools.islice(fuzz.hostile_frames(random.Random(7), material), 500))
        assert a == b
        assert len(set(a)) > 400
        assert sum(f not in material for f in a) > 400


@pytest.mark.slow
async def test_fuzz_20000_frames_into_live_rooms(tmp_path: Path, serve_process: Any) -> None:
    writer, reader = fuzz._tokens(tmp_path, "fuzz")
    # Every hostile frame must reach the relay, so no early 429 for the fuzzers' many closes.
    no_penalty = "malformed_strikes_before_refusal=1e9"
    server = serve_process(tmp_path, "--log-level", "ERROR", "--relay-setting", no_penalty)
    result = await fuzz.run_fuzz(
        server.url,
        writer_token=writer,
        reader_token=reader,
        rooms=2,
        frames=20_000,
        writer_fuzzers=6,
        reader_fuzzers=2,
        well_behaved_per_room=2,
        min_edits=20,
        seed=20260101,
    )
    print(result.summary())
    assert server.proc.poll() is None, "the relay died"
    assert result.problems == []
    assert result.stats.confirmed >= 20_000  # each one read by the relay, not just sent
    counters = result.health["counters"]
    # every refusal was counted once, and the relay closed nobody for anything else
    assert counters["malformed_frames"] == result.stats.closes["4400"] > 5000
    assert set(result.stats.closes) <= {"4400", "1000"}
    assert counters["refused_updates"] > 0  # the reader's replays
