"""The engine's reader of DNS messages builds exactly what `dns.message.from_wire` builds.

`resolver.engine.wireparse` reads the common reply itself and hands anything unusual to
dnspython; these tests hold the two to the same result: the same message down to the letter
case of every label, the Python type of every value, the order of records, the merging of
RRsets, the TTLs, the OPT record and the `index`; or both refusing the bytes. The corpus is
every genuine reply of the test internet to a spread of questions, and thousands of hostile
versions of them made by the mutation fuzzer (`resolver.testing.mutations`: header counts that
lie, truncation, compression pointers that loop or point forward, flipped bytes, trailing junk,
duplicated and renamed records, odd TTLs, OPT and RRSIG where they do not belong...), plus
hand-built edge cases of the name rules.
"""

from __future__ import annotations

import copy
import functools
import io
import pickle
import random
import struct
from typing import Any, cast

import dns.edns
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import dns.wire
import pytest

from resolver.core.exchange import make_query
from resolver.engine import wireparse
from resolver.engine.messages import parse
from resolver.testing import TestInternet
from resolver.testing.authority import zone_origin
from resolver.testing.mutations import QUESTIONS, RandomChooser, Target, mutate

#: Mutated replies compared in each run of the suite (about ten seconds).
MUTATED_CASES = 4000

_TYPES = ("A", "AAAA", "NS", "SOA", "MX", "TXT", "CNAME", "DNAME", "SRV", "PTR", "DS", "ANY")


def _dnspython(wire: bytes) -> dns.message.Message | None:
    """What `parse` returned before the fast reader: dnspython's verdict, None for a refusal."""
    try:
        return dns.message.from_wire(wire)
    except (dns.exception.DNSException, ValueError, UnicodeError, IndexError, KeyError):
        return None


def _value(value: Any) -> Any:
    """A value with everything that could differ spelled out (type, letter case, bytes)."""
    if isinstance(value, dns.name.Name):
        return ("name", value.labels)
    if isinstance(value, tuple | list):
        return (type(value).__name__, tuple(_value(item) for item in value))
    if isinstance(value, dns.edns.Option):
        return ("option", type(value).__name__, int(value.otype), value.to_wire())
    if isinstance(value, dns.rdata.Rdata):
        # The fast reader's rdata may be a subclass that only knows its hash beforehand: the
        # class dnspython would make, every field, and the hash itself must be the same.
        cls = next(c for c in type(value).__mro__ if c.__module__.startswith("dns."))
        slots = sorted(set(value._get_all_slots()) - {"_known_hash"})
        fields = tuple((slot, _value(getattr(value, slot))) for slot in slots)
        return (cls, fields, hash(value))
    return (type(value), value)


def _rrset(rrset: dns.rrset.RRset | None) -> Any:
    if rrset is None:
        return None
    return (
        type(rrset),
        _value(rrset.name),
        _value(rrset.rdclass),
        _value(rrset.rdtype),
        _value(rrset.covers),
        _value(rrset.deleting),
        _value(rrset.ttl),
        type(rrset.items),
        tuple(_value(rd) for rd in rrset),
    )


def describe(message: dns.message.Message | None) -> Any:
    """Everything a reader of the message could look at, in comparable form."""
    if message is None:
        return None
    where = {
        id(rrset): (number, position)
        for number, section in enumerate(message.sections)
        for position, rrset in enumerate(section)
    }
    index = tuple(
        (tuple(_value(part) for part in key), where.get(id(rrset), "elsewhere"))
        for key, rrset in message.index.items()
    )
    attributes = tuple(
        (key, _value(value))
        for key, value in sorted(vars(message).items())
        if key not in ("sections", "index", "opt")
    )
    return (
        type(message),
        attributes,
        tuple(tuple(_rrset(rrset) for rrset in section) for section in message.sections),
        _rrset(message.opt),
        index,
        message.edns,
        message.ednsflags,
        message.payload,
        _value(message.options),
        message.rcode(),
        message.opcode(),
        message.to_text(),
        message.to_wire(want_shuffle=False),
    )


def assert_same(wire: bytes) -> bool:
    """`parse` and dnspython agree on `wire`; True if dnspython accepted it."""
    expected = _dnspython(wire)
    got = parse(wire)
    assert describe(got) == describe(expected), wire.hex()
    return expected is not None


# -- the corpus -------------------------------------------------------------------------------


@functools.cache
def internet() -> TestInternet:
    return TestInternet.default()


def _names(
    server_zones: list[dns.name.Name], all_names: list[dns.name.Name]
) -> list[dns.name.Name]:
    """The names worth asking a server: its zones' own, those below them (referrals) and some
    that do not exist."""
    chosen = [name for name in all_names if any(name.is_subdomain(zone) for zone in server_zones)]
    chosen += [dns.name.Name((b"nothing-here",)).concatenate(zone) for zone in server_zones]
    return chosen


@functools.cache
def corpus() -> tuple[tuple[bytes, Any, Target], ...]:
    """(wire, the reply as the server made it, the target) for genuine exchanges: every server
    asked for the names of its zones and below, in several types, with and without EDNS."""
    net = internet()
    addresses = tuple(server.address for server in net.servers.values())
    all_names = sorted(
        {dns.name.from_text(text) for text, _ in QUESTIONS}
        | {
            name.derelativize(zone_origin(zone))
            for server in net.servers.values()
            for zone in server.zones
            for name in zone.nodes
        }
    )
    found = []
    rng = random.Random(9)
    for server in net.servers.values():
        zones = [zone_origin(zone) for zone in server.zones]
        for name in _names(zones, all_names):
            for qtype in rng.sample(_TYPES, 4):
                payload = rng.choice((1232, 4096, None))
                query = make_query(name, dns.rdatatype.from_text(qtype), payload=payload)
                reply = server.respond(query, False)
                if reply is None:
                    continue
                wire = reply if isinstance(reply, bytes) else reply.to_wire(max_size=65535)
                found.append((wire, reply, Target(query, tuple(zones), addresses=addresses)))
    return tuple(found)


def test_genuine_replies_take_the_fast_path_and_agree() -> None:
    """Every genuine reply is read without dnspython's help, and to the same message."""
    replies = corpus()
    assert len(replies) > 300
    kinds: set[str] = set()
    for wire, _, _ in replies:
        fast = wireparse._read(wire)  # raises if it would hand the message to dnspython
        assert describe(fast) == describe(_dnspython(wire)), wire.hex()
        for rrset in (rrset for section in fast.sections[1:] for rrset in section):
            kinds.add(dns.rdatatype.to_text(rrset.rdtype))
        if fast.opt is not None:
            kinds.add("OPT")
    assert {"A", "AAAA", "NS", "SOA", "CNAME", "MX", "TXT", "OPT"} <= kinds


def test_mutated_replies_agree_with_dnspython() -> None:
    """Thousands of hostile replies: both readers refuse them, or build the same message."""
    replies = corpus()
    rng = random.Random(2024)
    accepted = refused = 0
    for case in range(MUTATED_CASES):
        _, reply, target = replies[case % len(replies)]
        wire = mutate(reply, target, RandomChooser(rng))
        if wire is None:
            continue
        if assert_same(wire):
            accepted += 1
        else:
            refused += 1
    # Both kinds must be well represented, or the comparison proves little.
    assert accepted > MUTATED_CASES // 4
    assert refused > MUTATED_CASES // 20


# -- hand-built edge cases --------------------------------------------------------------------

_HEADER = struct.Struct("!HHHHHH")


def _message(
    records: list[bytes], question: bytes | None = None, counts: tuple[int, ...] | None = None
) -> bytes:
    """A reply with question `question` (www.example.test. A by default) and `records` all in
    the answer section, unless `counts` (an, ns, ar) says otherwise."""
    if question is None:
        question = b"\x03www\x07example\x04test\x00\x00\x01\x00\x01"
    an, ns, ar = counts if counts is not None else (len(records), 0, 0)
    return _HEADER.pack(0x1234, 0x8400, 1, an, ns, ar) + question + b"".join(records)


def _rr(owner: bytes, rdtype: int, rdata: bytes, ttl: int = 300, rdclass: int = 1) -> bytes:
    return owner + struct.pack("!HHIH", rdtype, rdclass, ttl, len(rdata)) + rdata


_QNAME = b"\xc0\x0c"  # a pointer to the question's name
_A, _NS, _CNAME, _SOA, _MX, _TXT, _AAAA, _SRV, _DNAME, _OPT, _DS, _RRSIG = (
    1,
    2,
    5,
    6,
    15,
    16,
    28,
    33,
    39,
    41,
    43,
    46,
)


def _rrsig(covered: int) -> bytes:
    return struct.pack("!HBBIIIH", covered, 8, 3, 300, 2000000000, 1000000000, 12345) + (
        b"\x07example\x04test\x00" + b"\x01" * 32
    )


EDGE_CASES: dict[str, bytes] = {
    "a": _message([_rr(_QNAME, _A, b"\xc0\x00\x02\x01")]),
    "a short": _message([_rr(_QNAME, _A, b"\xc0\x00\x02")]),
    "a long": _message([_rr(_QNAME, _A, b"\xc0\x00\x02\x01\x00")]),
    "aaaa": _message([_rr(_QNAME, _AAAA, bytes(range(16)))]),
    "aaaa v4-mapped": _message([_rr(_QNAME, _AAAA, bytes(10) + b"\xff\xff\x7f\x00\x00\x01")]),
    "aaaa short": _message([_rr(_QNAME, _AAAA, bytes(15))]),
    "duplicates, smallest ttl": _message(
        [_rr(_QNAME, _A, b"\x01\x02\x03\x04", 600), _rr(_QNAME, _A, b"\x01\x02\x03\x04", 60)]
    ),
    "case merges rrsets": _message(
        [
            _rr(_QNAME, _A, b"\x01\x02\x03\x04"),
            _rr(b"\x03WWW\x07EXAMPLE\x04TeSt\x00", _A, b"\x01\x02\x03\x05", 30),
        ]
    ),
    "case merges compressed rrsets": _message(
        [
            _rr(b"\x03WWW\xc0\x10", _A, b"\x01\x02\x03\x04"),
            _rr(b"\x03wWw\x07EXAMPLE\xc0\x18", _A, b"\x01\x02\x03\x05", 30),
            _rr(_QNAME, _A, b"\x01\x02\x03\x06", 20),
        ]
    ),
    "ttl top bit": _message(
        [
            _rr(_QNAME, _A, b"\x01\x02\x03\x04", 2**31),
            _rr(_QNAME, _A, b"\x01\x02\x03\x05", 2**32 - 1),
        ]
    ),
    "two cnames: singleton keeps the last": _message(
        [_rr(_QNAME, _CNAME, b"\x01a\xc0\x10", 50), _rr(_QNAME, _CNAME, b"\x01b\xc0\x10", 40)]
    ),
    "ns case duplicates": _message(
        [_rr(_QNAME, _NS, b"\x03ns1\xc0\x10"), _rr(_QNAME, _NS, b"\x03NS1\xc0\x10")]
    ),
    "soa": _message(
        [
            _rr(
                _QNAME,
                _SOA,
                b"\x02ns\xc0\x10\x0ahostmaster\xc0\x10" + struct.pack("!IIIII", 1, 2, 3, 4, 5),
            )
        ]
    ),
    "soa short": _message([_rr(_QNAME, _SOA, b"\x02ns\xc0\x10\x00" + bytes(19))]),
    "soa long": _message([_rr(_QNAME, _SOA, b"\x00\x00" + bytes(21))]),
    "mx": _message([_rr(_QNAME, _MX, b"\x00\x0a\x04mail\xc0\x10")]),
    "mx short": _message([_rr(_QNAME, _MX, b"\x00")]),
    "srv": _message([_rr(_QNAME, _SRV, b"\x00\x01\x00\x02\x00\x35\x03srv\xc0\x10")]),
    "txt": _message([_rr(_QNAME, _TXT, b"\x03abc\x00\x05hello")]),
    "txt empty": _message([_rr(_QNAME, _TXT, b"")]),
    "txt overrun": _message([_rr(_QNAME, _TXT, b"\x05abc")]),
    "dname": _message([_rr(_QNAME, _DNAME, b"\x05other\x04test\x00")]),
    "dname compressed target": _message([_rr(_QNAME, _DNAME, b"\x05other\xc0\x18")]),
    "ns with trailing byte in rdata": _message([_rr(_QNAME, _NS, b"\x03ns1\xc0\x10\x00")]),
    "ds (dnspython's reader)": _message([_rr(_QNAME, _DS, b"\x30\x39\x08\x02" + bytes(32))]),
    "rrsig covers split rrsets": _message(
        [_rr(_QNAME, _RRSIG, _rrsig(_A)), _rr(_QNAME, _RRSIG, _rrsig(_NS))]
    ),
    "unknown type": _message([_rr(_QNAME, 65280, b"\x01\x02")]),
    "class ch": _message([_rr(_QNAME, _TXT, b"\x02hi", rdclass=3)]),
    "class any a": _message([_rr(_QNAME, _A, b"\x01\x02\x03\x04", rdclass=255)]),
    "class none empty": _message([_rr(_QNAME, _A, b"", rdclass=254)]),
    "opt": _message([_rr(b"\x00", _OPT, b"", ttl=0x00008000, rdclass=1232)], counts=(0, 0, 1)),
    "opt extended rcode": _message(
        [_rr(b"\x00", _OPT, b"", ttl=0x01000000, rdclass=512)], counts=(0, 0, 1)
    ),
    "opt with options": _message(
        [
            _rr(
                b"\x00",
                _OPT,
                struct.pack("!HH", 10, 8) + b"\x01" * 8 + struct.pack("!HH", 15, 2) + b"\x00\x06",
                rdclass=4096,
            )
        ],
        counts=(0, 0, 1),
    ),
    "opt padding and keepalive": _message(
        [
            _rr(
                b"\x00",
                _OPT,
                struct.pack("!HH", 11, 2) + b"\x00\x64" + struct.pack("!HH", 12, 300) + bytes(300),
                rdclass=1232,
            )
        ],
        counts=(0, 0, 1),
    ),
    "opt empty keepalive and an unknown option": _message(
        [_rr(b"\x00", _OPT, struct.pack("!HHHH", 11, 0, 65001, 1) + b"x", rdclass=1232)],
        counts=(0, 0, 1),
    ),
    "opt padding then a cookie": _message(
        [
            _rr(
                b"\x00",
                _OPT,
                struct.pack("!HH", 12, 4) + bytes(4) + struct.pack("!HH", 10, 8) + b"\x02" * 8,
                rdclass=1232,
            )
        ],
        counts=(0, 0, 1),
    ),
    "opt padding longer than the record": _message(
        [_rr(b"\x00", _OPT, struct.pack("!HH", 12, 9) + bytes(4), rdclass=1232)], counts=(0, 0, 1)
    ),
    "opt option header cut short": _message(
        [_rr(b"\x00", _OPT, struct.pack("!HH", 12, 0) + b"\x00\x0c", rdclass=1232)],
        counts=(0, 0, 1),
    ),
    "opt bad option": _message(
        [_rr(b"\x00", _OPT, struct.pack("!HH", 8, 1) + b"\x00", rdclass=4096)], counts=(0, 0, 1)
    ),
    "opt payload 1 (class IN)": _message([_rr(b"\x00", _OPT, b"", rdclass=1)], counts=(0, 0, 1)),
    "opt in answer": _message([_rr(b"\x00", _OPT, b"", rdclass=1232)]),
    "opt not at root": _message([_rr(_QNAME, _OPT, b"", rdclass=1232)], counts=(0, 0, 1)),
    "two opts": _message([_rr(b"\x00", _OPT, b"", rdclass=1232)] * 2, counts=(0, 0, 2)),
    "tsig": _message(
        [_rr(b"\x03key\x00", 250, b"\x0bhmac-sha256\x00" + bytes(16), ttl=0, rdclass=255)],
        counts=(0, 0, 1),
    ),
    "records in every section": _message(
        [
            _rr(_QNAME, _A, b"\x01\x02\x03\x04"),
            _rr(b"\xc0\x10", _NS, b"\x03ns1\xc0\x10"),
            _rr(b"\x03ns1\xc0\x10", _A, b"\x01\x02\x03\x06"),
            _rr(_QNAME, _A, b"\x01\x02\x03\x04"),
        ],
        counts=(1, 1, 2),
    ),
    "same rrset in two sections": _message(
        [_rr(_QNAME, _A, b"\x01\x02\x03\x04"), _rr(_QNAME, _A, b"\x01\x02\x03\x05")],
        counts=(1, 0, 1),
    ),
    "trailing junk": _message([_rr(_QNAME, _A, b"\x01\x02\x03\x04")]) + b"\x00",
    "counts too large": _message([_rr(_QNAME, _A, b"\x01\x02\x03\x04")], counts=(2, 0, 0)),
    "rdata past the end": _message([_rr(_QNAME, _A, b"\x01\x02\x03\x04")])[:-1],
    "pointer to itself": _message([_rr(b"\xc0\x22", _A, b"\x01\x02\x03\x04")]),
    "pointer to the byte before": _message([_rr(b"\xc0\x21", _A, b"\x01\x02\x03\x04")]),
    "pointer forward": _message([_rr(b"\xc0\x30", _A, b"\x01\x02\x03\x04")]),
    "pointer into the header": _message([_rr(b"\xc0\x02", _A, b"\x01\x02\x03\x04")]),
    "pointer to a pointer": _message(
        [_rr(_QNAME, _CNAME, b"\x01a\xc0\x10"), _rr(b"\xc0\x30", _A, b"\x01\x02\x03\x04")]
    ),
    "label type 0x40": _message([_rr(b"\x40", _A, b"\x01\x02\x03\x04")]),
    "label type 0x80": _message([_rr(b"\x80", _A, b"\x01\x02\x03\x04")]),
    "no question": _HEADER.pack(1, 0x8000, 0, 0, 0, 0),
    "two questions": _HEADER.pack(1, 0x8000, 2, 0, 0, 0)
    + (b"\x03www\x07example\x04test\x00\x00\x01\x00\x01" + b"\xc0\x0c\x00\x01\x00\x01"),
    "question of an unknown type and class": _message(
        [], question=b"\x03www\x07example\x04test\x00\xff\x00\x04\xd2"
    ),
    "opcode notify": _HEADER.pack(1, 0xA000, 0, 0, 0, 0),
    "opcode update": _HEADER.pack(1, 0xA800, 0, 0, 0, 0),
    "short header": b"\x12\x34\x84\x00\x00\x01",
    "flags with z bit": _HEADER.pack(1, 0x8440, 0, 0, 0, 0),
}


def _hops(depth: int) -> bytes:
    """Questions of the root and of `depth` names, each a label and a pointer to the one
    before, then an A record owned by the last: its name takes `depth + 1` pointers."""
    wire = bytearray(b"\x00\x00\x01\x00\x01")
    previous = 12
    for _ in range(depth):
        start = 12 + len(wire)
        wire += b"\x01x" + struct.pack("!H", 0xC000 | previous) + b"\x00\x01\x00\x01"
        previous = start
    wire += _rr(struct.pack("!H", 0xC000 | previous), _A, b"\x01\x02\x03\x04")
    return _HEADER.pack(1, 0x8400, depth + 1, 1, 0, 0) + bytes(wire)


@pytest.mark.parametrize("wire", EDGE_CASES.values(), ids=EDGE_CASES.keys())
def test_edge_cases_agree_with_dnspython(wire: bytes) -> None:
    assert_same(wire)


@pytest.mark.parametrize("depth", [14, 15, 16, 17])
def test_pointer_chains_as_long_as_dnspython_allows(depth: int) -> None:
    """dnspython follows at most 16 pointers in one name: one fewer, exactly, and one more."""
    accepted = assert_same(_hops(depth))
    assert accepted == (depth + 1 <= dns.name.MAX_COMPRESSION_POINTER_CHAIN)


@pytest.mark.parametrize("length", [253, 254, 255, 256])
def test_names_up_to_255_octets(length: int) -> None:
    """A name of `length` octets in wire form (255 is the most dnspython accepts)."""
    labels = []
    left = length - 1
    while left > 0:
        size = min(63, left - 1)
        labels.append(bytes([size]) + b"a" * size)
        left -= size + 1
    owner = b"".join(labels) + b"\x00"
    assert len(owner) == length
    assert assert_same(_message([_rr(owner, _A, b"\x01\x02\x03\x04")])) == (length <= 255)


def test_random_bytes_agree_with_dnspython() -> None:
    """Noise behind a plausible header, and single bytes flipped in a good reply."""
    rng = random.Random(7)
    good = EDGE_CASES["records in every section"]
    for _ in range(2000):
        data = bytearray(good)
        for _ in range(rng.randint(1, 3)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        assert_same(bytes(data))
        assert_same(good[:12] + rng.randbytes(rng.randint(0, 40)))


def _random_name_wire(rng: random.Random) -> tuple[bytes, list[int]]:
    """A run of random labels, pointers (backwards, forwards, to themselves), root labels,
    reserved label types and stray octets: the stuff of names good and bad; and where each
    of these starts."""
    wire = bytearray()
    starts = []
    while len(wire) < rng.randint(2, 300):
        starts.append(len(wire))
        kind = rng.random()
        if kind < 0.45:
            size = rng.choice((1, 3, rng.randint(1, 63)))
            wire += bytes([size]) + bytes(rng.choice(b"aZ-09") for _ in range(size))
        elif kind < 0.7:
            target = rng.randrange(len(wire) + 3)
            wire += bytes([0xC0 | target >> 8 | rng.choice((0, 0, 0, 0x3F)), target & 0xFF])
        elif kind < 0.85:
            wire += b"\x00"
        else:
            wire += bytes([rng.choice((0x40, 0x80, 0xBF, rng.randrange(256)))])
    return bytes(wire), starts


def test_names_read_as_dnspython_reads_them() -> None:
    """At any offset of random name-like bytes, `_name` gives dnspython's name and stops where
    dnspython's parser stops, or refuses what dnspython refuses (loops, forward pointers,
    labels past the end, too many hops, more than 255 octets), compressed or not."""
    rng = random.Random(1035)
    read = refused = 0
    for _ in range(3000):
        wire, starts = _random_name_wire(rng)
        pos = rng.choice(starts) if rng.random() < 0.8 else rng.randrange(len(wire))
        try:
            parser = dns.wire.Parser(wire, pos)
            labels = dns.name.from_wire_parser(parser, decompress=True).labels
            expected: tuple[tuple[bytes, ...], int] | None = (labels, parser.current)
        except dns.exception.FormError:
            expected = None
        if rng.random() < 0.5:
            wireparse._names.clear()  # made, not remembered from an earlier name
        try:
            name, raw, after = wireparse._name(wire, pos, len(wire), True)
        except wireparse._Unsure:
            assert expected is None, (wire.hex(), pos)
            refused += 1
            continue
        assert expected == (name.labels, after), (wire.hex(), pos)
        assert type(name) is wireparse.HashedName and raw == name.to_wire()
        read += 1
    assert read > 500 and refused > 500, (read, refused)


def test_names_behave_as_dnspython_names() -> None:
    """Names made by the fast reader compare, hash and print as dnspython's own."""
    wire = EDGE_CASES["records in every section"]
    fast = wireparse._read(wire)
    slow = dns.message.from_wire(wire)
    for ours, theirs in zip(
        (rrset.name for section in fast.sections for rrset in section),
        (rrset.name for section in slow.sections for rrset in section),
        strict=True,
    ):
        assert type(ours) is wireparse.HashedName and type(theirs) is dns.name.Name
        assert ours == theirs and hash(ours) == hash(theirs)
        assert ours.to_text() == theirs.to_text() and ours.to_wire() == theirs.to_wire()
        assert ours == dns.name.from_text(theirs.to_text().upper())
        with pytest.raises(TypeError):
            ours.labels = ()  # immutable, as dnspython's
    assert (
        fast.find_rrset(fast.answer, slow.answer[0].name, dns.rdataclass.IN, dns.rdatatype.A)
        is fast.answer[0]
    )


# -- the names the reader makes: dnspython's names that keep their hash ----------------------


def _random_labels(rng: random.Random) -> tuple[bytes, ...]:
    """Up to five labels of letters, digits, hyphens and now and then any octet at all."""
    alphabet = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-"
    labels = []
    for _ in range(rng.randint(0, 5)):
        size = rng.randint(1, 30)
        if rng.random() < 0.1:
            labels.append(rng.randbytes(size))
        else:
            labels.append(bytes(rng.choice(alphabet) for _ in range(size)))
    return (*labels, b"")


def _recased(labels: tuple[bytes, ...], rng: random.Random) -> tuple[bytes, ...]:
    """The labels with the case of each ASCII letter flipped at random."""
    return tuple(
        bytes(
            byte ^ 0x20 if 0x61 <= byte | 0x20 <= 0x7A and rng.random() < 0.5 else byte
            for byte in label
        )
        for label in labels
    )


def _assert_hashed_like_dnspython(ours: dns.name.Name, labels: tuple[bytes, ...]) -> None:
    theirs = dns.name.Name(labels)
    assert type(ours) is wireparse.HashedName
    assert ours == theirs and theirs == ours
    assert hash(ours) == hash(theirs)
    assert hash(ours) == hash(theirs)  # the kept value, the second time
    keys: dict[dns.name.Name, int] = {theirs: 1}
    ours_keys: dict[dns.name.Name, int] = {ours: 1}
    assert keys[ours] == 1 and ours_keys[theirs] == 1


def test_hashed_names_equal_and_hash_as_dnspython_names() -> None:
    """Random names in random letter case, read from the wire or built: equal to dnspython's
    name of any other case, and the same hash, whether worked out or remembered."""
    rng = random.Random(20261201)
    for _ in range(2000):
        labels = _random_labels(rng)
        variant = _recased(labels, rng)
        if rng.random() < 0.5:
            wireparse._hashes.clear()  # worked out, not remembered from an earlier name
        owner = dns.name.Name(labels).to_wire()
        assert owner is not None
        wire = b"\x00" * 12 + owner
        _assert_hashed_like_dnspython(wireparse.name_from_wire(wire, 12), variant)
        _assert_hashed_like_dnspython(wireparse.HashedName(variant), labels)


def test_hashed_names_hash_as_dnspython_folds_its_big_integer() -> None:
    """dnspython's hash is a big integer that Python folds only when it does not fit a
    machine word: names whose integer falls below 2**61, between 2**61 and 2**63, and above."""
    ranges = {"small": False, "word": False, "big": False}
    rng = random.Random(5)
    while not all(ranges.values()):
        labels = (bytes(rng.randrange(256) for _ in range(rng.randint(17, 22))), b"")
        value = 0
        for letter in labels[0].lower():
            value += (value << 3) + letter
        kind = "small" if value < 2**61 else "word" if value < 2**63 else "big"
        ranges[kind] = True
        wireparse._hashes.clear()
        _assert_hashed_like_dnspython(wireparse.HashedName(labels), labels)


class _Looped:
    """Letters hashed by dnspython's loop, the big integer folded by Python as dnspython's is."""

    def __init__(self, letters: bytes) -> None:
        self.letters = letters

    def __hash__(self) -> int:
        value = 0
        for letter in self.letters.lower():
            value += (value << 3) + letter
        return value


def test_the_hash_read_in_base_nine_is_dnspythons_loop() -> None:
    """`_hash_of` reads dnspython's sum in base 9 rather than running its loop: the same value
    for any octets, letters of either case, up to a name's 255, and for none (the root)."""
    rng = random.Random(729)
    letters = [b"", bytes(range(256))[:255], b"\xff" * 255, b"AZaz@[`{"]
    letters += [rng.randbytes(rng.randint(1, 255)) for _ in range(3000)]
    for each in letters:
        wireparse._hashes.clear()
        assert wireparse._hash_of(each.lower()) == hash(_Looped(each))
        wireparse._hashes.clear()
        assert wireparse._hash_of(each) == hash(_Looped(each))  # the letter case does not count


def test_hashed_names_of_the_same_letters_split_differently() -> None:
    """dnspython's hash ignores where labels end (a.bc and ab.c hash alike): remembered by
    their letters, such names still hash as dnspython hashes each, and are not equal."""
    one, other = (b"a", b"bc", b""), (b"ab", b"c", b"")
    assert hash(wireparse.HashedName(one)) == hash(dns.name.Name(one))
    assert hash(wireparse.HashedName(other)) == hash(dns.name.Name(other))
    assert wireparse.HashedName(one) != wireparse.HashedName(other)


def test_hashed_names_from_compressed_replies() -> None:
    """Every name of a reply whose names point into each other, and the root."""
    replies = [wire for wire, _, _ in corpus() if b"\xc0" in wire[12:]][:200]
    assert replies
    for wire in replies:
        fast, slow = wireparse._read(wire), dns.message.from_wire(wire)
        for section_fast, section_slow in zip(fast.sections, slow.sections, strict=True):
            for ours, theirs in zip(section_fast, section_slow, strict=True):
                _assert_hashed_like_dnspython(ours.name, theirs.name.labels)
                for rd_ours, rd_theirs in zip(ours, theirs, strict=True):
                    for field in ("target", "mname", "rname", "exchange"):
                        if hasattr(rd_theirs, field):
                            labels = getattr(rd_theirs, field).labels
                            _assert_hashed_like_dnspython(getattr(rd_ours, field), labels)
    root = wireparse.name_from_wire(b"\x00", 0)
    _assert_hashed_like_dnspython(root, dns.name.root.labels)
    assert hash(root) == hash(dns.name.root) == hash(dns.name.empty.concatenate(dns.name.root))


def test_hashed_names_work_with_dnspython() -> None:
    """dnspython's operations take and give back these names as its own; what they make, and a
    copy or a pickle, is a plain `Name`."""
    wire = b"\x00" * 12 + b"\x03WwW\x07Example\x04TEST\x00"
    name = wireparse.name_from_wire(wire, 12)
    zone = dns.name.from_text("example.test.")
    assert name.is_subdomain(zone) and not zone.is_subdomain(name)
    assert name.parent() == zone and type(name.parent()) is dns.name.Name
    assert name.relativize(zone) == dns.name.from_text("www", None)
    assert name.relativize(zone).derelativize(zone) == name
    assert name.to_text() == "WwW.Example.TEST." and str(name) == "WwW.Example.TEST."
    assert name.to_wire() == wire[12:]
    assert name.canonicalize().to_wire() == b"\x03www\x07example\x04test\x00"
    assert name.fullcompare(zone)[0] == dns.name.NAMERELN_SUBDOMAIN
    assert sorted([name, zone]) == [zone, name]
    # A name read here finds the plain names in a compression table, and the other way round.
    compress: dict[dns.name.Name, int] = {}
    out = io.BytesIO()
    zone.to_wire(out, compress)
    name.to_wire(out, compress)
    assert out.getvalue() == b"\x07example\x04test\x00\x03WwW\xc0\x00"
    for made in (copy.copy(name), copy.deepcopy(name), pickle.loads(pickle.dumps(name))):
        assert type(made) is dns.name.Name and made == name and made.labels == name.labels
        assert hash(made) == hash(name)
    with pytest.raises(TypeError):
        cast(Any, name)._hash = 0  # immutable, as dnspython's


def test_names_and_records_made_again_keep_their_letter_case() -> None:
    """The reader gives again the names and records it made lately from the same bytes: never
    one that differs, be it only in letter case."""
    soa = b"\x03ns1\x07example\x04test\x00\x01h\xc0\x10" + struct.pack("!IIIII", 1, 2, 3, 4, 5)
    upper = soa.replace(b"ns1", b"NS1").replace(b"\x01h", b"\x01H")
    owner = b"\x07example\x04test\x00"
    replies = [_message([_rr(owner, _SOA, rdata)], counts=(0, 1, 0)) for rdata in (soa, upper)]
    replies += [_message([_rr(b"\x07EXAMPLE\x04test\x00", _NS, b"\x03NS1\xc0\x10")])]
    replies += [_message([_rr(b"\x07example\x04test\x00", _NS, b"\x03ns1\xc0\x10")])]
    for wire in replies + replies:
        assert describe(wireparse._read(wire)) == describe(_dnspython(wire)), wire.hex()


def test_the_hash_is_worked_out_as_dnspython_does() -> None:
    """`HashedName` computes dnspython's hash itself (falling back on dnspython's own, slower,
    if a version hashed otherwise): with this dnspython it does."""
    assert wireparse._same_hash_as_dnspython()
