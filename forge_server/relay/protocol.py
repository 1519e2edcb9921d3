"""Strict codec for the y-websocket wire protocol and the awareness payload.

One WebSocket frame carries one message::

    sync            0  subtype (0 step1 | 1 step2 | 2 update)  var-bytes payload
    awareness       1  var-bytes awareness-update
    auth            2  0 (permission denied)  var-string reason
    queryAwareness  3

Integers are lib0 variable-length unsigned integers (7 bits per byte, little end first); a
var-string is a var-uint count of **UTF-8 bytes** followed by those bytes (pycrdt's
``write_var_string`` writes a character count instead, which breaks on non-ASCII text, so this
module has its own). Decoding (:mod:`forge_server.relay.lib0`) is strict: bounded integers,
canonical encodings, lengths checked against what is left, no trailing bytes. Every failure
raises :class:`ProtocolError` and nothing else, so the relay can close a misbehaving connection
without guessing.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from enum import IntEnum

from forge_server.relay.lib0 import MAX_VAR_UINT, StrictLib0Decoder

__all__ = [
    "EMPTY_UPDATE",
    "MAX_VAR_UINT",
    "AuthMessage",
    "AuthType",
    "AwarenessEntry",
    "AwarenessMessage",
    "Decoder",
    "Encoder",
    "Message",
    "MessageType",
    "ProtocolError",
    "QueryAwarenessMessage",
    "SyncMessage",
    "SyncType",
    "decode_awareness",
    "decode_message",
    "decode_state_vector",
    "encode_awareness",
    "encode_message",
    "is_crdt_panic",
    "parse_awareness_state",
    "websocket_frame",
]



# An update with no structs and an empty delete set: what a peer with nothing new sends as step2.
EMPTY_UPDATE = b"\x00\x00"


class ProtocolError(ValueError):
    """A frame that does not follow the y-websocket protocol; the message says what is wrong."""


def is_crdt_panic(exc: BaseException) -> bool:
    """Whether ``exc`` is a Rust panic inside pycrdt (yrs), e.g. on a garbage update that decodes.

    pyo3 raises it as ``pyo3_runtime.PanicException``, a ``BaseException`` (not an
    ``Exception``) that is not importable by name: ``except ValueError`` lets it through.
    """
    return type(exc).__name__ == "PanicException" and type(exc).__module__ == "pyo3_runtime"


class MessageType(IntEnum):
    SYNC = 0
    AWARENESS = 1
    AUTH = 2
    QUERY_AWARENESS = 3


class SyncType(IntEnum):
    STEP1 = 0  # payload: the sender's state vector
    STEP2 = 1  # payload: an update with what the receiver is missing
    UPDATE = 2  # payload: an incremental update


class AuthType(IntEnum):
    PERMISSION_DENIED = 0


@dataclass(frozen=True, slots=True)
class SyncMessage:
    kind: SyncType
    payload: bytes


@dataclass(frozen=True, slots=True)
class AwarenessMessage:
    payload: bytes  # an awareness update; see decode_awareness


@dataclass(frozen=True, slots=True)
class AuthMessage:
    reason: str
    kind: AuthType = AuthType.PERMISSION_DENIED


@dataclass(frozen=True, slots=True)
class QueryAwarenessMessage:
    pass


Message = SyncMessage | AwarenessMessage | AuthMessage | QueryAwarenessMessage


@dataclass(frozen=True, slots=True)
class AwarenessEntry:
    """One client's awareness: ``state`` is the raw JSON text ("null" means it went away)."""

    client_id: int
    clock: int
    state: str

    @property
    def removed(self) -> bool:
        return self.state == "null"

    def parsed(self) -> object:
        return json.loads(self.state)


class Encoder:
    """Appends lib0-encoded values to a growing buffer."""

    __slots__ = ("_buf",)

    def __init__(self) -> None:
        self._buf = bytearray()

    def var_uint(self, value: int) -> Encoder:
        if not 0 <= value <= MAX_VAR_UINT:
            raise ProtocolError(f"var-uint {value} out of range 0..2**53-1")
        while value > 0x7F:
            self._buf.append(0x80 | (value & 0x7F))
            value >>= 7
        self._buf.append(value)
        return self

    def var_bytes(self, data: bytes) -> Encoder:
        self.var_uint(len(data))
        self._buf += data
        return self

    def var_string(self, text: str) -> Encoder:
        try:
            data = text.encode("utf-8")
        except UnicodeEncodeError as exc:  # lone surrogates cannot travel as UTF-8
            raise ProtocolError(f"string is not valid Unicode: {exc.reason}") from exc
        return self.var_bytes(data)

    def to_bytes(self) -> bytes:
        return bytes(self._buf)


class Decoder(StrictLib0Decoder):
    """Reads lib0-encoded values of a frame strictly; failures raise :class:`ProtocolError`."""

    __slots__ = ()

    def __init__(self, data: bytes) -> None:
        super().__init__(data, error=ProtocolError)


def encode_message(message: Message) -> bytes:
    enc = Encoder()
    if isinstance(message, SyncMessage):
        enc.var_uint(MessageType.SYNC).var_uint(message.kind).var_bytes(message.payload)
    elif isinstance(message, AwarenessMessage):
        enc.var_uint(MessageType.AWARENESS).var_bytes(message.payload)
    elif isinstance(message, AuthMessage):
        enc.var_uint(MessageType.AUTH).var_uint(message.kind).var_string(message.reason)
    elif isinstance(message, QueryAwarenessMessage):
        enc.var_uint(MessageType.QUERY_AWARENESS)
    else:  # pragma: no cover - guarded by the type checker
        raise ProtocolError(f"cannot encode {type(message).__name__}")
    return enc.to_bytes()


def websocket_frame(message: bytes) -> bytes:
    """``message`` as one unmasked, uncompressed binary WebSocket frame (server to client).

    The relay builds a broadcast's frame once and writes the same bytes to every peer's socket.
    """
    length = len(message)
    if length < 126:
        header = struct.pack("!BB", 0x82, length)
    elif length < 1 << 16:
        header = struct.pack("!BBH", 0x82, 126, length)
    else:
        header = struct.pack("!BBQ", 0x82, 127, length)
    return header + message


def decode_message(data: bytes) -> Message:
    """Decode one frame; raises :class:`ProtocolError` for anything malformed."""
    dec = Decoder(data)
    raw_type = dec.var_uint()
    message: Message
    if raw_type == MessageType.SYNC:
        raw_kind = dec.var_uint()
        if raw_kind not in SyncType._value2member_map_:
            raise ProtocolError(f"unknown sync message type {raw_kind}")
        message = SyncMessage(SyncType(raw_kind), dec.var_bytes())
    elif raw_type == MessageType.AWARENESS:
        message = AwarenessMessage(dec.var_bytes())
    elif raw_type == MessageType.AUTH:
        raw_auth = dec.var_uint()
        if raw_auth != AuthType.PERMISSION_DENIED:
            raise ProtocolError(f"unknown auth message type {raw_auth}")
        message = AuthMessage(dec.var_string())
    elif raw_type == MessageType.QUERY_AWARENESS:
        message = QueryAwarenessMessage()
    else:
        raise ProtocolError(f"unknown message type {raw_type}")
    dec.end()
    return message


def decode_state_vector(state_vector: bytes) -> dict[int, int]:
    """A Yjs state vector as {client id: next clock}."""
    dec = Decoder(state_vector)
    return {dec.var_uint(): dec.var_uint() for _ in range(dec.var_uint())}


def encode_awareness(entries: Iterable[AwarenessEntry]) -> bytes:
    items = list(entries)
    enc = Encoder().var_uint(len(items))
    for entry in items:
        enc.var_uint(entry.client_id).var_uint(entry.clock).var_string(entry.state)
    return enc.to_bytes()


def decode_awareness(payload: bytes, *, validate_json: bool = True) -> list[AwarenessEntry]:
    """Decode an awareness update: ``count, (clientID, clock, JSON state)*``.

    With ``validate_json`` each state must be valid JSON. The relay decodes without it and
    parses only the states it accepts (:mod:`forge_server.relay.presence`).
    """
    dec = Decoder(payload)
    count = dec.var_uint()
    # Each entry takes at least 3 bytes, so a count larger than that is a lie; checking it
    # first keeps a hostile count from driving a long loop.
    if count * 3 > dec.remaining:
        raise ProtocolError(f"awareness update claims {count} entries in {dec.remaining} bytes")
    entries = []
    for _ in range(count):
        client_id = dec.var_uint()
        clock = dec.var_uint()
        state = dec.var_string()
        if validate_json:
            parse_awareness_state(state)
        entries.append(AwarenessEntry(client_id, clock, state))
    dec.end()
    return entries


def parse_awareness_state(text: str) -> object:
    """An awareness state's JSON text, parsed strictly (as JavaScript's ``JSON.parse`` would);
    raises :class:`ProtocolError` for anything else."""
    try:
        return json.loads(text, parse_constant=_refuse_constant)
    except RecursionError as exc:
        raise ProtocolError("awareness state JSON is nested too deeply") from exc
    except ValueError as exc:
        raise ProtocolError(f"awareness state is not valid JSON: {exc}") from exc


def _refuse_constant(name: str) -> object:
    # Python accepts NaN/Infinity; JSON (and JavaScript's JSON.parse) does not.
    raise ValueError(f"{name} is not JSON")
