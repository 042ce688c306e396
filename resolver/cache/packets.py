"""The packet cache: rendered responses, served to the next asker without building DNS objects.

A cache hit is the common case of a resolver, and dnspython costs tens of microseconds to parse
and render a message. Here a hit is a dictionary lookup on the question's bytes plus a handful
of byte patches: the client's ID, RD and CD bits and letter case, the TTLs aged by the time the
response has spent here, and an OPT record if the client sent one. Everything unusual (a
malformed or exotic query, an answer too large for the client's UDP size) is left to the slow
path, which treats it exactly as before; only well-formed, plain questions are served from here.

An entry is the response's bytes, where its TTL fields are, and two times; the TTLs as stored
are read back from the bytes, not kept twice. Entries live in an `ExpiringLru` (see there for
why not cachetools' `TLRUCache`, which cost more per entry than the bytes themselves).

Most hits repeat a query seen a moment ago byte for byte but for its ID (a client asks the same
names again, in the same letter case and with the same EDNS). Parsing the question and patching
the copy cost more than everything else a hit does, so the reply made for such a query is kept
(`answer_again`): its bytes after the ID, good until the TTLs age by one more second or the entry
enters its prefetch window. A repeat then costs one dictionary lookup on the query's bytes, the
entry's own lookup (which keeps the LRU order and sees expiry and replacement), and prepending
the ID. These ready replies are few and bounded (`_READY_MEMORY`), forgotten all at once when
full, and only made for hits over UDP with RD=1 (see `answer`'s `repeatable`).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import NamedTuple

from resolver.cache.lru import ExpiringLru

_HEADER = struct.Struct("!HHHHHH")
_TTL = struct.Struct("!I")
_OPT_TYPE = 41
# An OPT record without its options: name "." (a zero octet), TYPE 41, CLASS the UDP payload
# size, extended RCODE and version (two octets, both 0 for us), the flags' first octet (DO) and
# second, RDLENGTH (the options' length).
_OPT = struct.Struct("!BHHHBxH")
_MIN_UDP = 512
# The header bits a response copies from its query: RD in byte 2, CD in byte 3 (RFC 4035
# 3.2.2). Of the query bits that change a reply's bytes (`query_bits`), DO is part of the key
# (RRSIGs and NSEC records in, DO echoed); AD is patched (a secure entry is stored with AD,
# which stays only for a query with DO or AD, RFC 6840 5.8); CD needs neither, because a
# bogus answer (what only a CD=1 client may see) is never stored (`ClientProtocol._store`):
# every entry may go to every client, CD or not, with CD copied.
_RD = 0x01
_CD = 0x10
_AD = 0x20
#: The DO bit as `query_bits` reports it (the high bit of the OPT record's flags).
DO_BIT = 0x80
# Ready replies kept for repeated queries (see the module's docstring): enough for the names a
# busy resolver is asked most, small next to the cache (a few hundred bytes each).
_READY_MEMORY = 4096
#: Only queries this small are kept as keys of ready replies (a plain question with an OPT
#: record is under 300 bytes): a client padding its queries with large EDNS options must not
#: make the resolver keep megabytes of them.
_READY_QUERY_SIZE = 512
# A ready reply stops being used this long (seconds) before its TTLs would age by one more second
# or its entry would enter the prefetch window, so float rounding can never make it differ from
# a fresh copy: in that last millisecond the full patch runs instead.
_READY_SLACK = 0.001


class ParsedQuestion(NamedTuple):
    """Where the question sits in a client's query, and what the client can receive (a named
    tuple: made for every hit that is not a repeat, and cheaper to make than a dataclass)."""

    key: bytes
    name_end: int
    edns_payload: int | None
    #: `query_bits`: the query's DO, CD and AD bits (0 for nearly every query).
    bits: int = 0


def query_bits(header_flags: int, opt_flags_high: int) -> int:
    """The query bits that change the reply's bytes, in one byte: DO (0x80), AD (0x20), CD
    (0x10). `header_flags` is the header's fourth byte, `opt_flags_high` the first byte of the
    OPT record's flags (0 without EDNS)."""
    return (opt_flags_high & DO_BIT) | (header_flags & (_AD | _CD))


class _Packet(NamedTuple):
    """An entry (a named tuple: one is made per miss, at half the cost of a frozen dataclass)."""

    wire: bytes  # holds the TTLs as stored, at `ttl_offsets`
    ttl_offsets: tuple[int, ...]
    stored_at: float
    expires: float


class _Ready(NamedTuple):
    """The reply to one exact query (all but its ID), while its TTLs and prefetch state hold."""

    tail: bytes  # the reply without its ID
    key: bytes
    packet: _Packet  # the entry it was copied from: replaced or gone means stale
    since: float
    until: float


def parse_plain_query(wire: bytes) -> ParsedQuestion | None:
    """The question of a plain standard query, or None for anything the slow path should see.

    Plain means: QR=0, opcode QUERY, exactly one question with an uncompressed name, no answer
    or authority records, and at most one additional record which is a version-0 OPT (its
    options, such as a cookie, are ignored as the slow path ignores them). The key is the
    lowercased name plus type and class, and one more byte if the query set DO: those get
    replies of their own (see `_CD` above for CD and AD).
    """
    size = len(wire)
    if size < 17:
        return None
    _id, flags, qdcount, ancount, nscount, arcount = _HEADER.unpack_from(wire)
    if flags & 0xF800 or qdcount != 1 or ancount or nscount or arcount > 1:
        return None
    position = 12
    while True:
        if position >= size:
            return None
        length = wire[position]
        if length == 0:
            break
        if length > 63:
            return None  # a compression pointer or an invalid label: not plain
        position += length + 1
    name_end = position + 1
    question_end = name_end + 4
    if question_end > size or name_end - 12 > 255:
        return None
    payload = None
    opt_flags = 0
    if arcount:
        if size - question_end < _OPT.size:
            return None
        owner, rdtype, payload, rcode_version, opt_flags, rdlength = _OPT.unpack_from(
            wire, question_end
        )
        if (
            owner
            or rdtype != _OPT_TYPE
            or rcode_version
            or rdlength != size - _OPT.size - question_end
        ):
            return None
        payload = max(_MIN_UDP, payload)
    elif question_end != size:
        return None
    key = wire[12:name_end].lower() + wire[name_end:question_end]
    bits = query_bits(flags & 0xFF, opt_flags)
    if bits & DO_BIT:
        key += b"\x80"  # after the fixed-size type and class: no other key can end so
    return ParsedQuestion(key, name_end, payload, bits)


def skip_name(wire: bytes, position: int) -> int:
    """Where the (possibly compressed) name at `position` ends; IndexError for bytes that
    end first or a label type that does not exist (RFC 6891 section 5)."""
    while True:
        length = wire[position]
        if length == 0:
            return position + 1
        if length >= 0xC0:
            return position + 2
        if length > 63:
            raise IndexError("not a label")
        position += length + 1


def ttl_offsets(wire: bytes) -> tuple[int, ...]:
    """Where the TTL of each answer and authority record is, in a response we rendered."""
    _id, _flags, qdcount, ancount, nscount, _arcount = _HEADER.unpack_from(wire)
    position = 12
    for _ in range(qdcount):
        position = skip_name(wire, position) + 4
    offsets = []
    for _ in range(ancount + nscount):
        position = skip_name(wire, position)
        offsets.append(position + 4)
        (rdlength,) = struct.unpack_from("!H", wire, position + 8)
        position += 10 + rdlength
    return tuple(offsets)


class PacketCache:
    """Rendered responses keyed by question; each lives as long as its shortest TTL."""

    def __init__(self, max_entries: int, clock: Callable[[], float], our_payload: int) -> None:
        self._clock = clock
        self._opt = b"\x00" + struct.pack("!HHIH", _OPT_TYPE, our_payload, 0, 0)
        # The same OPT record with DO echoed (RFC 3225), for queries that set it.
        self._opt_do = b"\x00" + struct.pack("!HHIH", _OPT_TYPE, our_payload, 0x8000, 0)
        self._entries: ExpiringLru[bytes, _Packet] = ExpiringLru(
            max_entries, lambda _key, packet: packet.expires
        )
        self._ready: dict[bytes, _Ready] = {}  # query without its ID -> ready reply

    def __len__(self) -> int:
        return self._entries.size(self._clock())

    def clear(self) -> None:
        self._entries.clear()
        self._ready.clear()

    def store(self, key: bytes, wire: bytes) -> None:
        """Keep a response rendered without OPT, its question in lowercase, RD and CD clear
        (AD set if it is to be set for the query bits of `key`)."""
        offsets = ttl_offsets(wire)
        if offsets:
            self._keep(key, wire, offsets, min(_TTL.unpack_from(wire, o)[0] for o in offsets))

    def store_rendered(
        self, key: bytes, wire: bytes, offsets: tuple[int, ...], lifetime: int
    ) -> None:
        """`store`, for a response whose renderer knows its TTL fields (`offsets`) and the
        smallest TTL (`lifetime`): nothing is parsed back."""
        if offsets:
            self._keep(key, wire, offsets, lifetime)

    def store_and_answer(
        self,
        key: bytes,
        rendered: bytearray,
        offsets: tuple[int, ...],
        lifetime: int,
        query: bytes,
        question: ParsedQuestion,
        limit: int,
    ) -> bytes | None:
        """`store`, for a response whose renderer knows its TTL fields (`offsets`, the smallest
        TTL `lifetime`), and at once the client's copy that `answer` would return now; None
        if nothing is kept or the copy is larger than `limit` (the caller renders the reply).

        The response is rendered once and not read back: a cache miss costs no lookup or
        parse of the bytes it has just written, and `rendered`, once kept as bytes, becomes
        the client's copy in place (it may be changed, whatever is returned).
        """
        if not offsets:
            return None  # nothing tells how long it may be kept (e.g. NODATA without SOA)
        wire = bytes(rendered)
        packet = self._keep(key, wire, offsets, lifetime)
        if packet is None or len(wire) + (len(self._opt) if question.edns_payload else 0) > limit:
            return None
        self._make_own(rendered, query, question)  # not aged: it was stored just now
        return bytes(rendered)

    def _keep(
        self, key: bytes, wire: bytes, offsets: tuple[int, ...], lifetime: int
    ) -> _Packet | None:
        """The entry for `wire`, now the freshest for `key`; None if it may not be kept."""
        if lifetime <= 0:
            return None
        now = self._clock()
        packet = _Packet(wire, offsets, now, now + lifetime)
        self._entries.put(key, packet, now)
        return packet

    def answer_again(self, query: bytes) -> bytes | None:
        """The reply to an exact repeat (ID aside) of a query `answer` served with `repeatable`,
        if its entry and its TTLs have not changed since; None: ask `answer`.

        Never in the prefetch window (`answer` says when that starts), so never expiring.
        """
        ready = self._ready.get(query[2:])
        if ready is None:
            return None
        now = self._clock()
        if not ready.since <= now < ready.until:
            return None
        if self._entries.get(ready.key, now) is not ready.packet:
            return None  # expired, evicted or replaced (`get` also keeps the LRU order)
        return query[:2] + ready.tail

    def answer(
        self, query: bytes, question: ParsedQuestion, limit: int, repeatable: bool = False
    ) -> tuple[bytes, bool] | None:
        """The stored response made the client's own, and whether it is in the last 10% of its
        life (time to prefetch); None on a miss or if it is larger than `limit` bytes.

        `repeatable`: every repeat of this query (ID aside) would get the same `limit`, and a
        ready copy of the reply may serve them (`answer_again`).
        """
        now = self._clock()
        packet = self._entries.get(question.key, now)
        if packet is None:
            return None
        if len(packet.wire) + (len(self._opt) if question.edns_payload else 0) > limit:
            return None  # the full path truncates it
        stored_at = packet.stored_at
        elapsed = now - stored_at
        age = int(elapsed)
        reply = self._copy(packet, query, question, age)
        lifetime = packet.expires - stored_at
        expiring = elapsed * 10 >= lifetime * 9
        if repeatable and not expiring and len(query) <= _READY_QUERY_SIZE:
            ready = self._ready
            if len(ready) >= _READY_MEMORY:
                ready.clear()
            until = min(stored_at + age + 1, stored_at + lifetime * 0.9) - _READY_SLACK
            made = bytes(reply)
            ready[query[2:]] = _Ready(made[2:], question.key, packet, now, until)
            return made, False
        return bytes(reply), expiring

    def _copy(self, packet: _Packet, query: bytes, question: ParsedQuestion, age: int) -> bytearray:
        """The stored response made the client's own, its TTLs lowered by `age` seconds."""
        reply = bytearray(packet.wire)
        if age:
            for offset in packet.ttl_offsets:
                (ttl,) = _TTL.unpack_from(reply, offset)
                _TTL.pack_into(reply, offset, max(0, ttl - age))
        self._make_own(reply, query, question)
        return reply

    def _make_own(self, reply: bytearray, query: bytes, question: ParsedQuestion) -> None:
        """Make a copy of a stored response the reply to `query`: its ID, RD and CD, AD only
        if the client understands it, the question in the client's letter case, and an OPT
        record if the client sent one."""
        reply[0:2] = query[0:2]
        reply[2] |= query[2] & _RD  # RD and CD, copied from the query
        reply[3] |= query[3] & _CD
        if not (question.bits & (DO_BIT | _AD)):
            reply[3] &= ~_AD & 0xFF  # AD only for a client that said it understands it
        reply[12 : question.name_end] = query[12 : question.name_end]  # the client's case
        if question.edns_payload:
            reply += self._opt_do if question.bits & DO_BIT else self._opt
            reply[10:12] = b"\x00\x01"
