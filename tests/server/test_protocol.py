"""Property tests of the y-websocket codec: roundtrips, and only ProtocolError on bad input."""

from __future__ import annotations

import json

import pycrdt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forge_server.relay.lib0 import Lib0Decoder
from forge_server.relay.protocol import (
    MAX_VAR_UINT,
    AuthMessage,
    AwarenessEntry,
    AwarenessMessage,
    Decoder,
    Encoder,
    ProtocolError,
    QueryAwarenessMessage,
    SyncMessage,
    SyncType,
    decode_awareness,
    decode_message,
    encode_awareness,
    encode_message,
)
from forge_server.relay.text_integrity import UpdateFormatError, check_update

var_uints = st.integers(min_value=0, max_value=MAX_VAR_UINT)
# Text that can travel as UTF-8 (no lone surrogates), including non-ASCII and emoji.
texts = st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=40)
messages = st.one_of(
    st.builds(SyncMessage, st.sampled_from(SyncType), st.binary(max_size=300)),
    st.builds(AwarenessMessage, st.binary(max_size=300)),
    st.builds(AuthMessage, texts),
    st.just(QueryAwarenessMessage()),
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | texts,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(texts, children, max_size=3),
    max_leaves=10,
)
entries = st.builds(
    AwarenessEntry,
    var_uints,
    var_uints,
    json_values.map(lambda v: json.dumps(v, ensure_ascii=False)),
)


class TestVarInts:
    @given(var_uints)
    def test_roundtrip(self, value: int) -> None:
        dec = Decoder(Encoder().var_uint(value).to_bytes())
        assert dec.var_uint() == value
        dec.end()

    @given(var_uints)
    def test_same_bytes_as_pycrdt(self, value: int) -> None:
        assert Encoder().var_uint(value).to_bytes() == pycrdt.write_var_uint(value)

    def test_out_of_range_refused_both_ways(self) -> None:
        with pytest.raises(ProtocolError, match="out of range"):
            Encoder().var_uint(MAX_VAR_UINT + 1)
        with pytest.raises(ProtocolError, match="2\\*\\*53"):
            Decoder(b"\xff" * 7 + b"\x7f").var_uint()
        with pytest.raises(ProtocolError, match="longer than"):
            Decoder(b"\xff" * 9).var_uint()

    def test_non_canonical_refused(self) -> None:
        with pytest.raises(ProtocolError, match="non-canonical"):
            Decoder(b"\x81\x00").var_uint()

    @given(texts)
    def test_string_length_counts_utf8_bytes(self, text: str) -> None:
        data = Encoder().var_string(text).to_bytes()
        dec = Decoder(data)
        assert dec.var_uint() == len(text.encode("utf-8"))
        assert Decoder(data).var_string() == text

    def test_lone_surrogate_refused(self) -> None:
        with pytest.raises(ProtocolError, match="Unicode"):
            Encoder().var_string("\ud800")

    def test_invalid_utf8_refused(self) -> None:
        with pytest.raises(ProtocolError, match="UTF-8"):
            Decoder(b"\x02\xc3\x28").var_string()


class TestMessages:
    @given(messages)
    def test_roundtrip(self, message: object) -> None:
        assert decode_message(encode_message(message)) == message  # type: ignore[arg-type]

    def test_known_wire_bytes(self) -> None:
        # Bytes as the JavaScript y-websocket client writes them.
        assert encode_message(SyncMessage(SyncType.STEP1, b"\x00")) == b"\x00\x00\x01\x00"
        assert encode_message(QueryAwarenessMessage()) == b"\x03"
        assert encode_message(AuthMessage("é")) == b"\x02\x00\x02\xc3\xa9"

    @given(messages, st.data())
    def test_truncated_raises_protocol_error(self, message: object, data: st.DataObject) -> None:
        raw = encode_message(message)  # type: ignore[arg-type]
        cut = data.draw(st.integers(min_value=0, max_value=len(raw) - 1))
        with pytest.raises(ProtocolError):
            decode_message(raw[:cut])

    @given(messages, st.binary(min_size=1, max_size=8))
    def test_trailing_bytes_raise(self, message: object, extra: bytes) -> None:
        with pytest.raises(ProtocolError, match="trailing"):
            decode_message(encode_message(message) + extra)  # type: ignore[arg-type]

    @settings(max_examples=500)
    @given(st.binary(max_size=64))
    def test_garbage_raises_only_protocol_error(self, raw: bytes) -> None:
        try:
            message = decode_message(raw)
        except ProtocolError:
            return
        assert encode_message(message) == raw  # accepted input is canonical

    def test_oversized_length_refused(self) -> None:
        with pytest.raises(ProtocolError, match="exceeds"):
            decode_message(b"\x00\x02" + Encoder().var_uint(2**40).to_bytes() + b"abc")

    def test_unknown_types_refused(self) -> None:
        with pytest.raises(ProtocolError, match="unknown message type 9"):
            decode_message(b"\x09")
        with pytest.raises(ProtocolError, match="unknown sync message type 5"):
            decode_message(b"\x00\x05\x00")
        with pytest.raises(ProtocolError, match="unknown auth message type 1"):
            decode_message(b"\x02\x01\x00")


class TestAwareness:
    @given(st.lists(entries, max_size=5))
    def test_roundtrip(self, items: list[AwarenessEntry]) -> None:
        assert decode_awareness(encode_awareness(items)) == items

    def test_matches_pycrdt_awareness(self) -> None:
        doc = pycrdt.Doc()
        awareness = pycrdt.Awareness(doc)
        awareness.set_local_state({"user": {"name": "Zoë 中文 🎉"}, "cursor": 3})
        payload = awareness.encode_awareness_update([doc.client_id])
        (entry,) = decode_awareness(payload)
        assert entry.client_id == doc.client_id
        assert entry.parsed() == {"user": {"name": "Zoë 中文 🎉"}, "cursor": 3}
        assert encode_awareness([entry]) == payload

    @settings(max_examples=500)
    @given(st.binary(max_size=64))
    def test_garbage_raises_only_protocol_error(self, raw: bytes) -> None:
        try:
            decode_awareness(raw)
        except ProtocolError:
            pass

    @pytest.mark.parametrize("state", ["{", "NaN", "[" * 100_000, '"\\ud800', "{'a': 1}"])
    def test_invalid_json_refused(self, state: str) -> None:
        payload = encode_awareness([AwarenessEntry(1, 1, state)])
        with pytest.raises(ProtocolError, match="JSON"):
            decode_awareness(payload)

    def test_lying_count_refused(self) -> None:
        with pytest.raises(ProtocolError, match="claims"):
            decode_awareness(Encoder().var_uint(10**9).to_bytes() + b"\x01\x01\x00")


class TestOneLib0Reader:
    def test_updates_are_read_as_yrs_reads_them_frames_as_lib0_does(self) -> None:
        non_canonical = b"\x81\x00"  # 1 with a trailing zero byte
        assert Lib0Decoder(non_canonical).var_uint() == 1
        with pytest.raises(ProtocolError, match="non-canonical"):
            Decoder(non_canonical).var_uint()
        big = bytes([0xFF] * 7 + [0x7F])  # 56 bits
        assert Lib0Decoder(big).var_uint() == 2**56 - 1
        with pytest.raises(ProtocolError, match="larger than"):
            Decoder(big).var_uint()
        assert Decoder(Encoder().var_uint(1).to_bytes()).var_uint() == 1
        with pytest.raises(ValueError, match="truncated"):
            Lib0Decoder(b"\x80").var_uint()

    def test_update_walker_errors_name_the_update(self) -> None:
        # These reasons reach clients in close reasons: they say what was malformed.
        with pytest.raises(UpdateFormatError, match=r"^truncated update$"):
            check_update(b"")
        with pytest.raises(UpdateFormatError, match=r"^length beyond the end of the update$"):
            Lib0Decoder(b"\x05ab", error=UpdateFormatError).var_bytes()
        with pytest.raises(UpdateFormatError, match=r"^string is not UTF-8"):
            Lib0Decoder(b"\x01\xff", error=UpdateFormatError).var_string()
        with pytest.raises(ProtocolError, match=r"^var-bytes length 5 exceeds the 2 left$"):
            Decoder(b"\x05ab").var_bytes()
