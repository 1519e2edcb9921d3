"""Detects updates that split a UTF-16 surrogate pair, where Yjs and yrs part ways.

Yjs counts text positions in UTF-16 code units, so a JavaScript client can insert or delete
*inside* an emoji (or any character outside the Basic Multilingual Plane): Yjs then replaces
both halves with U+FFFD on its side, while yrs (the relay's pycrdt) integrates the same update
differently — it keeps the character whole and moves the insertion, or deletes a neighbouring
character instead of the half. The documents diverge and the relay cannot repair it. Editors
never split pairs, so this is rare; the relay must at least not let it pass silently.

:class:`SurrogateGuard` keeps, per room, the ids (client, clock) of every astral character's
high half, learnt from the room's state and every update it accepts, and checks each update's
insertion anchors (origin / right origin) and deleted ranges against them. It parses the Yjs v1
update encoding itself, cheaply: an update is skipped unread while the room holds no astral text
and the update carries none (no 4-byte UTF-8 sequence). Memory: one int per astral character.

Use::

    guard = SurrogateGuard(doc.get_update())   # when the room is loaded
    guard.watch(room_name, update)             # after each accepted update: logs findings
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from enum import StrEnum

from forge_server.relay.lib0 import Lib0Decoder

__all__ = [
    "MAX_CLOCK",
    "SplitKind",
    "SplitSurrogate",
    "SurrogateGuard",
    "UpdateFormatError",
    "check_update",
]

_log = logging.getLogger(__name__)

# A 4-byte UTF-8 sequence: a character that UTF-16 stores as a surrogate pair. (Matching the
# whole sequence, not just its lead byte, keeps var-int client ids from triggering a parse.)
_ASTRAL_UTF8 = re.compile(rb"[\xf0-\xf4][\x80-\xbf]{3}")
MAX_CLOCK = 0xFFFFFFFF  # yrs (the relay's pycrdt) keeps clocks as 32-bit numbers


class UpdateFormatError(ValueError):
    """The bytes are not a Yjs v1 update this module understands."""


class SplitKind(StrEnum):
    INSERT_INSIDE_PAIR = "insert inside a surrogate pair"
    DELETE_HALF_PAIR = "deletion of half a surrogate pair"


@dataclass(frozen=True, slots=True)
class SplitSurrogate:
    """One place where an update cuts a character in two (a Yjs id: client and clock)."""

    kind: SplitKind
    client: int
    clock: int

    def __str__(self) -> str:
        return (
            f"{self.kind} at client {self.client} clock {self.clock}: Yjs clients show U+FFFD "
            "there while this relay (yrs) keeps or removes a different character, so copies "
            "of this text have diverged"
        )


def _reader(data: bytes) -> Lib0Decoder:
    return Lib0Decoder(data, error=UpdateFormatError)


def _utf16_length(text: str) -> int:
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


@dataclass(frozen=True, slots=True)
class _Item:
    client: int
    clock: int
    origin: tuple[int, int] | None
    right_origin: tuple[int, int] | None
    text: str | None  # the string content, when the item holds text


@dataclass(frozen=True, slots=True)
class _Update:
    items: list[_Item]
    deletes: list[tuple[int, int, int]]  # client, clock, length


_XML_TYPES_WITH_NAME = (3, 5)  # YXmlElement, YXmlHook carry a name


def _skip_content(reader: Lib0Decoder, ref: int) -> tuple[str | None, int]:
    """Read an item's content; returns (text if it is a string, length in clock units)."""
    if ref == 1:  # ContentDeleted
        return None, reader.var_uint()
    if ref == 2:  # ContentJSON
        count = reader.var_uint()
        for _ in range(count):
            reader.var_bytes()
        return None, count
    if ref == 3:  # ContentBinary
        reader.var_bytes()
        return None, 1
    if ref == 4:  # ContentString
        text = reader.var_string()
        return text, _utf16_length(text)
    if ref == 5:  # ContentEmbed
        reader.var_bytes()
        return None, 1
    if ref == 6:  # ContentFormat
        reader.var_bytes()
        reader.var_bytes()
        return None, 1
    if ref == 7:  # ContentType
        if reader.var_uint() in _XML_TYPES_WITH_NAME:
            reader.var_bytes()
        return None, 1
    if ref == 8:  # ContentAny
        count = reader.var_uint()
        for _ in range(count):
            reader.any()
        return None, count
    if ref == 9:  # ContentDoc
        reader.var_bytes()
        reader.any()
        return None, 1
    raise UpdateFormatError(f"unknown content type {ref}")


def _parse_update(data: bytes) -> _Update:
    """Parse a Yjs v1 update into its items (with anchors and text) and its deleted ranges."""
    reader = _reader(data)
    items: list[_Item] = []
    for _ in range(reader.var_uint()):
        structs = reader.var_uint()
        client = reader.var_uint()
        clock = reader.var_uint()
        for _ in range(structs):
            info = reader.byte()
            ref = info & 0x1F
            if ref in (0, 10):  # GC, Skip: just a length
                clock += reader.var_uint()
                continue
            origin = (reader.var_uint(), reader.var_uint()) if info & 0x80 else None
            right = (reader.var_uint(), reader.var_uint()) if info & 0x40 else None
            if origin is None and right is None:
                if reader.var_uint() == 1:  # parent is a root type, by name
                    reader.var_bytes()
                else:  # parent is an item, by id
                    reader.var_uint()
                    reader.var_uint()
                if info & 0x20:  # parentSub (map key)
                    reader.var_bytes()
            text, length = _skip_content(reader, ref)
            items.append(_Item(client, clock, origin, right, text))
            clock += length
    deletes: list[tuple[int, int, int]] = []
    for _ in range(reader.var_uint()):
        client = reader.var_uint()
        for _ in range(reader.var_uint()):
            deletes.append((client, reader.var_uint(), reader.var_uint()))
    if reader.remaining:
        raise UpdateFormatError(f"{reader.remaining} trailing bytes after the update")
    return _Update(items, deletes)


def check_update(data: bytes) -> dict[int, int]:
    """Raise :class:`UpdateFormatError` unless ``data`` is a well-formed Yjs v1 update; return
    the clock after its last struct of each client (what a document holding it must reach).

    yrs can corrupt its heap and crash the whole process on some malformed updates (seen: a
    deleted run longer than 2**32 followed by garbage), and allocates up front for the counts
    an update claims; so the relay walks every update first. The walk is linear in the size
    (each counted element consumes bytes), knows every content type, and keeps every clock
    and length within yrs' 32-bit clocks.
    """

    def clock_in_range(value: int) -> None:
        if value > MAX_CLOCK:
            raise UpdateFormatError(f"clock {value} is beyond 2**32 - 1")

    ends: dict[int, int] = {}
    reader = _reader(data)
    for _ in range(reader.var_uint()):
        structs = reader.var_uint()
        client = reader.var_uint()
        clock = reader.var_uint()
        for _ in range(structs):
            clock_in_range(clock)
            info = reader.byte()
            ref = info & 0x1F
            if ref in (0, 10):  # GC, Skip: just a length
                clock += reader.var_uint()
                if ref == 0:
                    ends[client] = max(ends.get(client, 0), clock)
                continue
            if info & 0x80:  # origin id
                reader.var_uint()
                clock_in_range(reader.var_uint())
            if info & 0x40:  # right origin id
                reader.var_uint()
                clock_in_range(reader.var_uint())
            if not info & 0xC0:
                if reader.var_uint() == 1:  # parent is a root type, by name
                    reader.var_string()
                else:  # parent is an item, by id
                    reader.var_uint()
                    clock_in_range(reader.var_uint())
                if info & 0x20:  # parentSub (map key)
                    reader.var_string()
            clock += _skip_content(reader, ref)[1]
            ends[client] = max(ends.get(client, 0), clock)
        clock_in_range(clock)
    for _ in range(reader.var_uint()):
        reader.var_uint()  # client
        for _ in range(reader.var_uint()):
            start = reader.var_uint()
            clock_in_range(start + reader.var_uint())
    if reader.remaining:
        raise UpdateFormatError(f"{reader.remaining} trailing bytes after the update")
    return ends


class SurrogateGuard:
    """Per-room detector of updates that split surrogate pairs (see the module docstring)."""

    def __init__(self, state: bytes = b"", logger: logging.Logger | None = None) -> None:
        self._log = logger or _log
        # client -> clocks of the high halves of its astral characters (the low half is +1)
        self._high: dict[int, set[int]] = {}
        # Every sync step 2 carries the whole delete set again: report each place once.
        self._reported: set[SplitSurrogate] = set()
        self.findings = 0
        if state:
            self.check(state)

    @property
    def astral_characters(self) -> int:
        """How many astral characters (surrogate pairs) the guard knows the ids of."""
        return sum(len(clocks) for clocks in self._high.values())

    def check(self, update: bytes) -> list[SplitSurrogate]:
        """New findings for an update the room accepted (each place is reported once); the
        update's astral text is learnt too.

        Never raises: an update this module cannot parse is logged at debug level and skipped
        (the relay has already validated it by applying it).
        """
        if not self._high and _ASTRAL_UTF8.search(update) is None:
            return []  # no astral text anywhere: nothing can be split
        try:
            parsed = _parse_update(update)
        except UpdateFormatError as exc:
            self._log.debug("surrogate check skipped an update it cannot parse: %s", exc)
            return []
        findings: list[SplitSurrogate] = []
        for item in parsed.items:
            split = self._inserts_inside_pair(item)
            if split is not None:
                findings.append(SplitSurrogate(SplitKind.INSERT_INSIDE_PAIR, *split))
            if item.text is not None:
                self._learn(item.client, item.clock, item.text)
        for client, clock, length in parsed.deletes:
            if self._unit_is(client, clock, low=True):
                findings.append(SplitSurrogate(SplitKind.DELETE_HALF_PAIR, client, clock))
            elif self._unit_is(client, clock + length - 1, low=False):
                findings.append(
                    SplitSurrogate(SplitKind.DELETE_HALF_PAIR, client, clock + length - 1)
                )
        new = [f for f in dict.fromkeys(findings) if f not in self._reported]
        self._reported.update(new)
        self.findings += len(new)
        return new

    def watch(self, room: str, update: bytes) -> list[SplitSurrogate]:
        """:meth:`check`, logging each finding as a warning that names the room."""
        findings = self.check(update)
        for finding in findings:
            self._log.warning("room %s: %s", room, finding)
        return findings

    def _inserts_inside_pair(self, item: _Item) -> tuple[int, int] | None:
        if item.origin is not None and self._unit_is(*item.origin, low=False):
            return item.origin
        if item.right_origin is not None and self._unit_is(*item.right_origin, low=True):
            return item.right_origin
        return None

    def _learn(self, client: int, clock: int, text: str) -> None:
        if not _ASTRAL_UTF8.search(text.encode("utf-8")):
            return
        high = self._high.setdefault(client, set())
        offset = 0
        for char in text:
            if ord(char) > 0xFFFF:
                high.add(clock + offset)
                offset += 2
            else:
                offset += 1

    def _unit_is(self, client: int, clock: int, *, low: bool) -> bool:
        """Whether the UTF-16 unit with this id is a low (or high) surrogate."""
        high = self._high.get(client)
        if not high:
            return False
        return (clock - 1 in high) if low else (clock in high)
