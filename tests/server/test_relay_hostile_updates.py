"""Updates that crash, panic or strand yrs never reach (or stay in) a room's live document.

Found by ``scripts/fuzz_relay.py``: pycrdt (yrs) corrupted its heap and killed the relay on a
malformed update, raised a Rust panic (a ``BaseException``) on others, and kept updates with a
gap "pending", outside every sync step 2, so clients joining later never got them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from pycrdt import Doc, Text

from forge_server.relay.config import RelayConfig
from forge_server.relay.protocol import Encoder, ProtocolError, is_crdt_panic
from forge_server.relay.rooms import Room, RoomManager
from forge_server.relay.store import Store
from forge_server.relay.text_integrity import UpdateFormatError, check_update

ROOM = "p/main"
# Mutations of real updates: the relay accepts the first; the second (an empty string item
# and a delete set) then makes yrs panic ("called `Option::unwrap()` on a `None` value").
PANIC_BASE = bytes.fromhex("010301000101017402840101036c6c6fc4010101020258590101010002")
PANIC_NEXT = bytes.fromhex("0101010004010174000101010002")


@pytest_asyncio.fixture(loop_scope="session")
async def room(tmp_path: Path) -> AsyncIterator[Room]:
    config = RelayConfig(data_dir=tmp_path / "data")
    store = Store(config.db_path)
    rooms = RoomManager(store, config)
    async with rooms.hold(ROOM) as held:
        yield held
    await rooms.close()
    store.close()


def text_updates(*inserts: str) -> list[bytes]:
    """One update per insert at the end of text ``t`` of one client."""
    doc = Doc(client_id=7)
    updates: list[bytes] = []
    doc.observe(lambda event: updates.append(event.update))
    text = doc.get("t", type=Text)
    for piece in inserts:
        text += piece
    return updates


def deleted_run(length: int) -> bytes:
    """An update with one deleted run of ``length`` clock units, parented to root ``t``."""
    enc = Encoder().var_uint(1).var_uint(1).var_uint(7).var_uint(0)
    enc.var_uint(1)  # info: ContentDeleted, no origins, parent by name
    enc.var_uint(1).var_bytes(b"t").var_uint(length)
    return enc.var_uint(0).to_bytes()


class TestCheckUpdate:
    def test_accepts_real_updates(self) -> None:
        doc = Doc()
        doc.get("t", type=Text).insert(0, "héllo 🙂")
        for update in [doc.get_update(), *text_updates("a", "b")]:
            check_update(update)

    def test_refuses_clocks_beyond_32_bits_and_garbage(self) -> None:
        check_update(deleted_run(5))
        with pytest.raises(UpdateFormatError, match="beyond 2"):
            check_update(deleted_run(2**40))
        with pytest.raises(UpdateFormatError, match="truncated"):
            check_update(b"\xff\xff\xff\x7f")  # claims 268 million clients
        with pytest.raises(UpdateFormatError, match="trailing"):
            check_update(deleted_run(5) + b"\x00")


class TestRoomRefuses:
    async def test_update_yrs_cannot_take_safely(self, room: Room) -> None:
        before = room.doc.get_update()
        with pytest.raises(ProtocolError, match="beyond 2"):
            await room.apply_update(deleted_run(2**40))
        with pytest.raises(ProtocolError, match="invalid document update"):
            await room.apply_update(b"\xff\xff\xff\x7f")
        assert room.doc.get_update() == before

    async def test_update_with_a_gap_is_not_kept_pending(self, room: Room) -> None:
        first, second, third = text_updates("a", "b", "c")
        await room.apply_update(first)
        with pytest.raises(ProtocolError, match="builds on changes the relay does not have"):
            await room.apply_update(third)  # needs `second`
        await room.apply_update(second)
        # Before the fix the pending `third` integrated here, on the relay only: members that
        # joined in between got "ab" in their sync step 2 and never the "c".
        assert str(room.doc.get("t", type=Text)) == "ab"
        late = Doc()
        late.apply_update(room.doc.get_update())
        assert late.get_state() == room.doc.get_state()

    async def test_panic_is_a_protocol_error_and_the_document_is_rebuilt(self, room: Room) -> None:
        await room.apply_update(PANIC_BASE)
        stored = room.doc.get_update()
        with pytest.raises(ProtocolError, match="panicked") as caught:
            await room.apply_update(PANIC_NEXT)
        assert is_crdt_panic(caught.value.__cause__)  # type: ignore[arg-type]
        assert room.manager.stats.documents_reloaded == 1
        assert room.doc.get_update() == stored
        text = str(room.doc.get("t", type=Text))
        first, _ = text_updates("a", "b")
        await room.apply_update(first)  # the rebuilt document keeps working and syncing
        assert sorted(str(room.doc.get("t", type=Text))) == sorted(text + "a")
