"""The surrogate-pair guard: it flags Yjs updates that cut a character in two, and nothing else.

The Yjs updates below were captured from yjs 13.6.33 (tests/interop/peer.mjs), client 2086310723:
the text "a😀😀b", then "é" inserted at 1, the second emoji deleted whole, "X" inserted at
UTF-16 index 3 (inside the first emoji), and "é" deleted. Yjs ends with "a\ufffdX\ufffdb";
yrs keeps the emoji, so the copies differ (tests/interop checks the same live against Node).
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from pycrdt import Doc, Map, Text

from forge_server.relay.text_integrity import SplitKind, SplitSurrogate, SurrogateGuard

CLIENT = 2086310723
SEED = b"\x01\x01\xc3\xa6\xea\xe2\x07\x00\x04\x01\x01t\na\xf0\x9f\x98\x80\xf0\x9f\x98\x80b\x00"
INSERT_E = (
    b"\x01\x01\xc3\xa6\xea\xe2\x07\x06\xc4\xc3\xa6\xea\xe2\x07\x00\xc3\xa6\xea\xe2\x07\x01"
    b"\x02\xc3\xa9\x00"
)
DELETE_WHOLE_EMOJI = b"\x00\x01\xc3\xa6\xea\xe2\x07\x01\x03\x02"
INSERT_INSIDE_EMOJI = (
    b"\x01\x01\xc3\xa6\xea\xe2\x07\x07\xc4\xc3\xa6\xea\xe2\x07\x01\xc3\xa6\xea\xe2\x07\x02\x01X\x00"
)
DELETE_E = b"\x00\x01\xc3\xa6\xea\xe2\x07\x01\x06\x01"


class TestCapturedYjsUpdates:
    def test_only_the_insert_inside_the_emoji_is_flagged(self) -> None:
        guard = SurrogateGuard()
        findings = [
            guard.check(u)
            for u in (SEED, INSERT_E, DELETE_WHOLE_EMOJI, INSERT_INSIDE_EMOJI, DELETE_E)
        ]
        assert findings == [
            [],
            [],
            [],
            [SplitSurrogate(SplitKind.INSERT_INSIDE_PAIR, CLIENT, 1)],
            [],
        ]
        assert guard.findings == 1
        assert "U+FFFD" in str(findings[3][0])

    def test_the_relay_copy_really_diverges_from_yjs(self) -> None:
        # What the check protects against: yrs keeps the emoji, Yjs shows two U+FFFD.
        doc = Doc()
        for update in (SEED, INSERT_E, DELETE_WHOLE_EMOJI, INSERT_INSIDE_EMOJI, DELETE_E):
            doc.apply_update(update)
        relay_text = str(doc.get("t", type=Text))
        assert relay_text != "a\ufffdX\ufffdb"  # the Yjs client's copy
        assert "\ufffd" not in relay_text

    def test_guard_seeded_from_a_loaded_room_state(self) -> None:
        doc = Doc()
        doc.apply_update(SEED)
        doc.apply_update(INSERT_E)
        guard = SurrogateGuard(doc.get_update())  # as the relay does on load
        assert guard.astral_characters == 2  # the two emoji of SEED
        assert guard.check(INSERT_INSIDE_EMOJI) == [
            SplitSurrogate(SplitKind.INSERT_INSIDE_PAIR, CLIENT, 1)
        ]

    def test_deleting_half_a_pair_is_flagged(self) -> None:
        guard = SurrogateGuard()
        guard.check(SEED)
        # delete set: client CLIENT, one range, clock 2 (the low half of the first emoji), len 1
        half = b"\x00\x01\xc3\xa6\xea\xe2\x07\x01\x02\x01"
        assert guard.check(half) == [SplitSurrogate(SplitKind.DELETE_HALF_PAIR, CLIENT, 2)]
        # and a range ending on a high half (clocks 0..1)
        ends_high = b"\x00\x01\xc3\xa6\xea\xe2\x07\x01\x00\x02"
        assert guard.check(ends_high) == [SplitSurrogate(SplitKind.DELETE_HALF_PAIR, CLIENT, 1)]
        # the delete set travels again in every sync step 2: each place is reported once
        assert guard.check(half) == []
        assert guard.findings == 2

    def test_text_without_astral_characters_indexes_nothing(self) -> None:
        guard = SurrogateGuard()
        doc = Doc()
        text = doc.get("t", type=Text)
        updates: list[bytes] = []
        doc.observe(lambda event: updates.append(event.update))
        text += "plain ascii and é 中文"
        assert guard.check(updates[-1]) == []
        assert guard.astral_characters == 0

    def test_garbage_is_skipped_never_raised(self) -> None:
        guard = SurrogateGuard()
        guard.check(SEED)
        for junk in (b"", b"\xff" * 12, SEED[:-3], SEED + b"\x00", b"\x01\x01\x01\x00\x1f"):
            assert guard.check(junk) == []


edits = st.lists(
    st.tuples(
        st.booleans(),
        st.integers(min_value=0, max_value=40),
        st.text(alphabet="ab é中😀🎉𝄞", min_size=1, max_size=4),
    ),
    min_size=1,
    max_size=25,
)


@settings(max_examples=60, deadline=None)
@given(edits=edits)
def test_python_edits_never_split_pairs(edits: list[tuple[bool, int, str]]) -> None:
    # pycrdt edits whole characters (UTF-8 offsets), so it cannot split a pair: no false alarms.
    doc = Doc()
    doc["m"] = Map({"code": Text("x😀y")})
    text = doc["m"]["code"]
    updates: list[bytes] = []
    doc.observe(lambda event: updates.append(event.update))
    guard = SurrogateGuard(doc.get_update())
    for is_insert, position, chunk in edits:
        current = str(text)

        # pycrdt's Text indices are UTF-8 byte offsets: convert from code points.
        def offset(index: int, current: str = current) -> int:
            return len(current[:index].encode())

        if is_insert or not current:
            text.insert(offset(min(position, len(current))), chunk)
        else:
            start = min(position, len(current) - 1)
            stop = min(len(current), start + len(chunk))
            del text[offset(start) : offset(stop)]
    for update in updates:
        assert guard.check(update) == []
