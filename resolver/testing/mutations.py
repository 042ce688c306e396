"""Hostile authoritative responses, made by mutating what the test internet would really say.

The resolver must survive anything an authority can send (no exception from one query's
handling reaches a listener). This module makes that testable: it starts from the genuine reply
of a `TestInternet` server to the very query the resolver sent and breaks it on purpose, at two
levels:

- **message** mutations edit the parsed dnspython message: header flags, opcode, rcode (extended
  ones included), whole RRsets dropped, duplicated or moved between sections, records added for
  names in and out of the server's bailiwick, CNAME and DNAME to random or looping targets, NS
  records pointing anywhere with odd glue, SOA, RRSIG and OPT where they do not belong, TTLs of 0
  and of 2**31 .. 2**32-1, and owner names in odd case, very long, the root or wildcards;
- **wire** mutations edit the rendered bytes: header counts that disagree with the body,
  truncation, compression pointers that loop or point forward, flipped bytes, trailing junk, and
  random bytes behind the right ID.

Every mutation draws its decisions from a `Chooser`, so one set of functions serves two drivers:
`RandomChooser` (a seeded `random.Random`, for `benchmarks/fuzz_upstream.py`: a seed replays a
case) and `DrawChooser` (hypothesis's `draw`, for tests: hypothesis shrinks a failure to its
smallest form). `HostileNetwork` puts the mutator where the network sits: the engine matches what
comes back as it matches anything from the network (wrong ID or question ignored, so a timeout;
unparseable bytes behind the right ID with TC=1 or an error rcode: a `BareHeader`).
`transport_outcome` applies the same rules for tests that drive one `Resolution` by hand.

**The poison invariant.** `POISON_ADDRESS` is only ever planted under `POISON_NAME`
(`poison.test.`), and only by servers that are not authoritative for it (every server except the
root and `test.` servers). With `guard_poison`, the servers that *are* authoritative above it get
no mutation that could hand authority to someone else (no added or renamed records, no byte
flips or forward compression pointers): so if `POISON_ADDRESS` ever reaches a client, the
resolver believed data from a server outside its bailiwick.
"""

from __future__ import annotations

import collections
import copy
import logging
import random
import struct
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TypedDict, TypeVar

import dns.edns
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.OPT
import dns.rrset
import trio

from resolver.config import Config, ForwardZone, StubZone
from resolver.core import actions
from resolver.core.actions import NetworkError, Outcome, SendQuery, Timeout
from resolver.core.hints import parse_root_hints
from resolver.core.reasons import ServfailReason
from resolver.engine import Send
from resolver.engine.messages import parse
from resolver.engine.outbound import match_reply
from resolver.server.service import ResolverService
from resolver.server.upstream import Network
from resolver.testing.authority import zone_origin
from resolver.testing.faults import POISON_ADDRESS, POISON_NAME, Reply
from resolver.testing.internet import TestInternet
from resolver.testing.scripted import FakeClock

if TYPE_CHECKING:
    from hypothesis.strategies import SearchStrategy

T = TypeVar("T")

#: The largest DNS message (RFC 1035 over TCP); what the transport reads at most.
MAX_MESSAGE = 65_535

#: TTLs a broken or hostile server sends: zero, one, the RFC 2181 section 8 boundary (values with
#: the top bit set "should be treated as zero") and the largest 32-bit values.
ODD_TTLS = (0, 1, 2**31 - 1, 2**31, 2**31 + 1, 2**32 - 2, 2**32 - 1)

#: Rcodes worth trying by name (the extended ones need an OPT record to carry their high bits).
ODD_RCODES = (0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 15, 16, 17, 22, 23, 4095)

#: Header flag bits a mutation may toggle: QR, AA, TC, RD, RA, Z, AD, CD.
FLAG_BITS = (
    dns.flags.QR,
    dns.flags.AA,
    dns.flags.TC,
    dns.flags.RD,
    dns.flags.RA,
    0x0040,
    dns.flags.AD,
    dns.flags.CD,
)

#: Addresses for added address records and glue: loopback, unspecified, broadcast, documentation.
ODD_ADDRESSES_V4 = ("127.0.0.1", "0.0.0.0", "255.255.255.255", "192.0.2.66", "10.0.0.1")
ODD_ADDRESSES_V6 = ("::1", "::", "::ffff:127.0.0.1", "2001:db8::66", "fe80::1")

#: Names outside any one zone of the test internet, for out-of-bailiwick additions and targets.
STRANGERS = tuple(
    dns.name.from_text(text)
    for text in (
        ".",
        "test.",
        "www.example.test.",
        "www.other.test.",
        "ns1.example.test.",
        "ns1.nic.test.",
        "a.root-servers.test.",
        "example.test.",
        "evil.invalid.",
        "*.example.test.",
        "x.poison.test.",
    )
)

_SECTIONS = ("answer", "authority", "additional")


class Chooser(Protocol):
    """Where a mutation gets its decisions: a seeded generator or hypothesis's `draw`."""

    def integer(self, low: int, high: int) -> int:
        """An integer in [low, high]; both drivers shrink or skew towards `low`."""
        ...

    def choice(self, options: Sequence[T]) -> T:
        """One of `options` (not empty); the first is the one hypothesis shrinks towards."""
        ...

    def blob(self, low: int, high: int) -> bytes:
        """Between `low` and `high` random bytes."""
        ...


@dataclass
class RandomChooser:
    """Decisions from a seeded `random.Random`: the same seed replays the same mutations."""

    rng: random.Random

    def integer(self, low: int, high: int) -> int:
        return self.rng.randint(low, high)

    def choice(self, options: Sequence[T]) -> T:
        return options[self.rng.randrange(len(options))]

    def blob(self, low: int, high: int) -> bytes:
        return self.rng.randbytes(self.rng.randint(low, high))


@dataclass
class DrawChooser:
    """Decisions drawn from hypothesis (`data.draw` or a composite's `draw`), so they shrink."""

    draw: Callable[[SearchStrategy[Any]], Any]

    def integer(self, low: int, high: int) -> int:
        from hypothesis import strategies as st

        return int(self.draw(st.integers(low, high)))

    def choice(self, options: Sequence[T]) -> T:
        from hypothesis import strategies as st

        return options[int(self.draw(st.integers(0, len(options) - 1)))]

    def blob(self, low: int, high: int) -> bytes:
        from hypothesis import strategies as st

        return bytes(self.draw(st.binary(min_size=low, max_size=high)))


@dataclass(frozen=True)
class Target:
    """What a mutation knows about the exchange it breaks.

    `zones` are the origins the answering server really serves; `guarded` says it is
    authoritative above `POISON_NAME` and must not be made to hand authority away (see the module
    docstring); `addresses` are the test internet's server addresses, for glue that points at a
    real server of another zone.
    """

    query: dns.message.Message
    zones: tuple[dns.name.Name, ...]
    guarded: bool = False
    addresses: tuple[str, ...] = ()

    @property
    def qname(self) -> dns.name.Name:
        return self.query.question[0].name if self.query.question else dns.name.root

    @property
    def may_poison(self) -> bool:
        """Poison may only come from servers that cannot be authoritative for it."""
        return not any(POISON_NAME.is_subdomain(zone) for zone in self.zones)


# -- names and records ------------------------------------------------------------------------


def _label(choose: Chooser) -> bytes:
    kind = choose.integer(0, 5)
    if kind == 0:
        return b"*"
    if kind == 1:
        return b"x" * 63
    if kind == 2:
        return choose.choice((b"www", b"ns1", b"mail", b"WwW", b"poison", b"_tcp"))
    length = choose.integer(1, 12)
    return bytes(choose.integer(0x61, 0x7A) for _ in range(length))


def _long_name(base: dns.name.Name, choose: Chooser) -> dns.name.Name:
    """`base` with 63-byte labels prepended until the name is 240..255 bytes long."""
    name = base
    while True:
        room = 255 - len(name.to_wire() or b"") - 1
        if room <= 0:
            return name
        label = b"y" * min(63, room)
        name = dns.name.Name((label, *name.labels))
        if choose.integer(0, 3) == 0:
            return name


def flip_case(name: dns.name.Name, choose: Chooser) -> dns.name.Name:
    """The name with random letters in the other case (what a 0x20-unaware server may do)."""
    labels = []
    for label in name.labels:
        mask = choose.integer(0, 2**16 - 1)
        labels.append(
            bytes(
                byte ^ 0x20 if 0x61 <= byte | 0x20 <= 0x7A and mask >> (i % 16) & 1 else byte
                for i, byte in enumerate(label)
            )
        )
    return dns.name.Name(labels)


def some_name(target: Target, choose: Chooser, message: dns.message.Message) -> dns.name.Name:
    """A name for a record or a target: in the bailiwick, out of it, odd, or from the message."""
    zone = choose.choice(target.zones) if target.zones else dns.name.root
    kind = choose.integer(0, 8)
    try:
        if kind == 0:
            return target.qname
        if kind == 1:
            return zone
        if kind == 2:
            return dns.name.Name((_label(choose), *zone.labels))
        if kind == 3:
            return dns.name.Name((_label(choose), *target.qname.labels))
        if kind == 4:
            return choose.choice(STRANGERS)
        if kind == 5:
            names = [rrset.name for section in _sections(message) for rrset in section]
            return choose.choice(names) if names else target.qname
        if kind == 6:
            return _long_name(choose.choice((zone, target.qname)), choose)
        if kind == 7:
            return flip_case(target.qname, choose)
        return target.qname.parent() if target.qname != dns.name.root else dns.name.root
    except dns.name.NameTooLong:
        return target.qname


def _rdata(rdtype: int, text: str, rdclass: int = dns.rdataclass.IN) -> dns.rdata.Rdata:
    return dns.rdata.from_text(
        dns.rdataclass.RdataClass.make(rdclass), dns.rdatatype.RdataType.make(rdtype), text
    )


def _rrset(
    name: dns.name.Name, rdtype: int, texts: Sequence[str], ttl: int, covers: int = 0
) -> dns.rrset.RRset:
    rrset = dns.rrset.RRset(
        name,
        dns.rdataclass.IN,
        dns.rdatatype.RdataType.make(rdtype),
        dns.rdatatype.RdataType.make(covers),
    )
    for text in texts:
        rrset.add(_rdata(rdtype, text), ttl)
    return rrset


def _ttl(choose: Chooser) -> int:
    return choose.choice((3600, *ODD_TTLS, choose.integer(0, 2**32 - 1)))


def _address(target: Target, choose: Chooser, v6: bool) -> str:
    if not v6 and target.addresses and choose.integer(0, 1):
        return choose.choice(target.addresses)
    return choose.choice(ODD_ADDRESSES_V6 if v6 else ODD_ADDRESSES_V4)


def _sections(message: dns.message.Message) -> list[list[dns.rrset.RRset]]:
    return [message.answer, message.authority, message.additional]


def _section(message: dns.message.Message, choose: Chooser) -> list[dns.rrset.RRset]:
    return getattr(message, choose.choice(_SECTIONS))


def random_rrset(target: Target, choose: Chooser, message: dns.message.Message) -> dns.rrset.RRset:
    """One RRset of a type resolvers care about, for some name, with plausible or odd data."""
    name = some_name(target, choose, message)
    other = some_name(target, choose, message).to_text()
    ttl = _ttl(choose)
    kind = choose.integer(0, 9)
    if kind == 0:
        return _rrset(name, dns.rdatatype.A, [_address(target, choose, False)], ttl)
    if kind == 1:
        return _rrset(name, dns.rdatatype.AAAA, [_address(target, choose, True)], ttl)
    if kind == 2:
        return _rrset(name, dns.rdatatype.NS, [other], ttl)
    if kind == 3:
        return _rrset(name, dns.rdatatype.CNAME, [other], ttl)
    if kind == 4:
        return _rrset(name, dns.rdatatype.DNAME, [other], ttl)
    if kind == 5:
        return _rrset(name, dns.rdatatype.SOA, [_soa_text(other, choose)], ttl)
    if kind == 6:
        return _rrset(name, dns.rdatatype.MX, [f"10 {other}"], ttl)
    if kind == 7:
        return _rrset(name, dns.rdatatype.TXT, ['"fuzz"'], ttl)
    if kind == 8:
        return _rrset(name, dns.rdatatype.PTR, [other], ttl)
    covered = choose.choice(("A", "NS", "SOA", "CNAME", "TXT"))
    return _rrsig(name, covered, ttl)


def _soa_text(mname: str, choose: Chooser) -> str:
    minimum = choose.choice((0, 300, 2**31, 2**32 - 1))
    return f"{mname} hostmaster.test. 1 7200 3600 1209600 {minimum}"


def _rrsig(name: dns.name.Name, covered: str, ttl: int) -> dns.rrset.RRset:
    text = f"{covered} 8 2 3600 20300101000000 20200101000000 12345 {name} AAAA"
    return _rrset(name, dns.rdatatype.RRSIG, [text], ttl, covers=dns.rdatatype.from_text(covered))


# -- message mutations ------------------------------------------------------------------------

MessageMutation = Callable[[dns.message.Message, Target, Chooser], None]


def toggle_flags(message: dns.message.Message, target: Target, choose: Chooser) -> None:
    """Flip some of QR, AA, TC, RD, RA, Z, AD, CD."""
    for _ in range(choose.integer(1, 3)):
        message.flags ^= choose.choice(FLAG_BITS)


def set_opcode(message: dns.message.Message, target: Target, choose: Chooser) -> None:
    """Any of the 16 opcodes, assigned or not."""
    message.set_opcode(dns.opcode.Opcode.make(choose.integer(0, 15)))


def set_rcode(message: dns.message.Message, target: Target, choose: Chooser) -> None:
    """Any rcode, up to 4095; the extended ones bring an OPT record to carry their high bits."""
    rcode = choose.choice((*ODD_RCODES, choose.integer(0, 4095)))
    if rcode > 15 and message.edns < 0:
        message.use_edns(0)
    message.set_rcode(dns.rcode.Rcode.make(rcode))


def drop_rrset(message: dns.message.Message, target: Target, choose: Chooser) -> None:
    """Remove one RRset (the answer, the SOA of a negative answer, a delegation, its glue)."""
    section = _section(message, choose)
    if section:
        del section[choose.integer(0, len(section) - 1)]


def duplicate_rrset(message: dns.message.Message, target: Target, choose: Chooser) -> None:
    """Repeat one RRset in the same section or another (the same records twice in a message)."""
    section = _section(message, choose)
    if section:
        rrset = section[choose.integer(0, len(section) - 1)]
        _section(message, choose).append(rrset.copy())


def move_rrset(message: dns.message.Message, target: Target, choose: Chooser) -> None:
    """Move one RRset to another section: glue as an answer, the answer as authority, ..."""
    section = _section(message, choose)
    if section:
        rrset = section.pop(choose.integer(0, len(section) - 1))
        _section(message, choose).append(rrset)


def clear_sections(message: dns.message.Message, target: Target, choose: Chooser) -> None:
    """An empty reply with the header as it was (flags, rcode): says nothing at all."""
    message.answer, message.authority, message.additional = [], [], []


def add_rrset(message: dns.message.Message, target: Target, choose: Chooser) -> None:
    """Add a record for some name, in or out of bailiwick, to some section."""
    _section(message, choose).append(random_rrset(target, choose, message))


def add_cname(message: dns.message.Message, target: Target, choose: Chooser) -> None:
    """A CNAME at the question (or another name) to a random, self or looping target."""
    owner = choose.choice((target.qname, some_name(target, choose, message)))
    kind = choose.integer(0, 2)
    alias = owner if kind == 0 else some_name(target, choose, message)  # 0: to itself
    section = message.answer if choose.integer(0, 3) else _section(message, choose)
    section.append(_rrset(owner, dns.rdatatype.CNAME, [alias.to_text()], _ttl(choose)))
    if kind == 2 and alias != owner:  # and back again: a two-name loop
        section.append(_rrset(alias, dns.rdatatype.CNAME, [owner.to_text()], _ttl(choose)))


def add_dname(message: dns.message.Message, target: Target, choose: Chooser) -> None:
    """A DNAME at an ancestor of the question to a random target, or below itself (a loop)."""
    qname = target.qname
    depth = choose.integer(0, len(qname.labels) - 1) if len(qname.labels) > 1 else 0
    owner = dns.name.Name(qname.labels[depth:])
    kind = choose.integer(0, 2)
    try:
        if kind == 0:
            alias = dns.name.Name((b"loop", *owner.labels))  # expands into itself
        elif kind == 1:
            alias = owner
        else:
            alias = some_name(target, choose, message)
    except dns.name.NameTooLong:
        alias = owner
    message.answer.insert(
        choose.integer(0, len(message.answer)),
        _rrset(owner, dns.rdatatype.DNAME, [alias.to_text()], _ttl(choose)),
    )
    if choose.integer(0, 1):  # and the synthesised CNAME, right or wrong
        try:
            synthesised = qname.relativize(owner).concatenate(alias)
        except (dns.name.NameTooLong, dns.name.AbsoluteConcatenation):
            synthesised = alias
        message.answer.append(
            _rrset(qname, dns.rdatatype.CNAME, [synthesised.to_text()], _ttl(choose))
        )


def add_delegation(message: dns.message.Message, target: Target, choose: Chooser) -> None:
    """NS records for a cut at, above, beside or below the zone, pointing anywhere, odd glue."""
    owner = choose.choice(
        (
            target.qname,
            some_name(target, choose, message),
            target.qname.parent() if target.qname != dns.name.root else target.qname,
            choose.choice(target.zones) if target.zones else dns.name.root,
        )
    )
    hosts = [some_name(target, choose, message) for _ in range(choose.integer(1, 3))]
    ttl = _ttl(choose)
    message.authority.append(_rrset(owner, dns.rdatatype.NS, [h.to_text() for h in hosts], ttl))
    for host in hosts:
        if choose.integer(0, 2):
            v6 = choose.integer(0, 3) == 0
            rdtype = dns.rdatatype.AAAA if v6 else dns.rdatatype.A
            glue = _rrset(host, rdtype, [_address(target, choose, v6)], _ttl(choose))
            _section(message, choose).append(glue)
    if choose.integer(0, 1):
        message.flags &= ~dns.flags.AA  # as a referral, or keep AA: a broken one


def add_soa(message: dns.message.Message, target: Target, choose: Chooser) -> None:
    """An SOA for some name in some section (the answer, additional, or a foreign zone's)."""
    owner = some_name(target, choose, message)
    text = _soa_text(some_name(target, choose, message).to_text(), choose)
    _section(message, choose).append(_rrset(owner, dns.rdatatype.SOA, [text], _ttl(choose)))


def add_rrsig(message: dns.message.Message, target: Target, choose: Chooser) -> None:
    """An RRSIG, alone (no resolver here validates) in any section."""
    covered = choose.choice(("A", "NS", "SOA", "CNAME", "DS"))
    owner = some_name(target, choose, message)
    _section(message, choose).append(_rrsig(owner, covered, _ttl(choose)))


def add_opt(message: dns.message.Message, target: Target, choose: Chooser) -> None:
    """An OPT pseudo-record in the answer or authority section, or a second one."""
    payload = choose.choice((0, 512, 1232, 65535))
    opt = dns.rrset.RRset(dns.name.root, dns.rdataclass.RdataClass.make(payload), dns.rdatatype.OPT)
    opt.add(dns.rdtypes.ANY.OPT.OPT(payload, dns.rdatatype.OPT, []), choose.integer(0, 2**32 - 1))
    _section(message, choose).append(opt)


def set_ttl(message: dns.message.Message, target: Target, choose: Chooser) -> None:
    """One RRset's TTL to 0, 2**31 or above, or anything else."""
    section = _section(message, choose)
    if section:
        section[choose.integer(0, len(section) - 1)].ttl = _ttl(choose)


def rename_rrset(message: dns.message.Message, target: Target, choose: Chooser) -> None:
    """One RRset under another owner: odd case, very long, the root, a wildcard, or anything."""
    section = _section(message, choose)
    if not section:
        return
    index = choose.integer(0, len(section) - 1)
    old = section[index]
    kind = choose.integer(0, 4)
    try:
        if kind == 0:
            name = flip_case(old.name, choose)
        elif kind == 1:
            name = _long_name(old.name, choose)
        elif kind == 2:
            name = dns.name.root
        elif kind == 3:
            name = dns.name.Name((b"*", *old.name.labels))
        else:
            name = some_name(target, choose, message)
    except dns.name.NameTooLong:
        name = dns.name.root
    renamed = dns.rrset.RRset(name, old.rdclass, old.rdtype, old.covers)
    renamed.update(old)
    section[index] = renamed


def flip_name_case(message: dns.message.Message, target: Target, choose: Chooser) -> None:
    """The same owner, letters in another case (harmless to a case-insensitive reader)."""
    section = _section(message, choose)
    if section:
        index = choose.integer(0, len(section) - 1)
        old = section[index]
        renamed = dns.rrset.RRset(flip_case(old.name, choose), old.rdclass, old.rdtype, old.covers)
        renamed.update(old)
        section[index] = renamed


def plant_poison(message: dns.message.Message, target: Target, choose: Chooser) -> None:
    """`POISON_NAME` A `POISON_ADDRESS` (and maybe a CNAME to it), from a server with no say."""
    if not target.may_poison:
        return
    owner = choose.choice((POISON_NAME, dns.name.Name((b"www", *POISON_NAME.labels))))
    poison = _rrset(owner, dns.rdatatype.A, [POISON_ADDRESS], choose.choice((86400, 2**31 - 1)))
    _section(message, choose).append(poison)
    if choose.integer(0, 1):
        link = _rrset(target.qname, dns.rdatatype.CNAME, [owner.to_text()], 86400)
        message.answer.insert(0, link)


def mangle_question(message: dns.message.Message, target: Target, choose: Chooser) -> None:
    """No question, two questions, another type, or the name in another case."""
    kind = choose.integer(0, 3)
    if kind == 0:
        message.question = []
    elif kind == 1 and message.question:
        message.question = [message.question[0], message.question[0]]
    elif kind == 2 and message.question:
        old = message.question[0]
        other = choose.choice((dns.rdatatype.A, dns.rdatatype.NS, dns.rdatatype.ANY))
        message.question = [dns.rrset.RRset(old.name, old.rdclass, other)]
    elif message.question:
        old = message.question[0]
        message.question = [dns.rrset.RRset(flip_case(old.name, choose), old.rdclass, old.rdtype)]


@dataclass(frozen=True)
class Mutation:
    """One way to break a response; `hands_authority` mutations are withheld from guarded
    servers, because what they add could rightly be believed (see the module docstring)."""

    name: str
    apply: MessageMutation
    hands_authority: bool = False


MESSAGE_MUTATIONS: tuple[Mutation, ...] = (
    Mutation("flags", toggle_flags),
    Mutation("opcode", set_opcode),
    Mutation("rcode", set_rcode),
    Mutation("drop", drop_rrset),
    Mutation("duplicate", duplicate_rrset),
    Mutation("move", move_rrset),
    Mutation("clear", clear_sections),
    Mutation("ttl", set_ttl),
    Mutation("case", flip_name_case),
    Mutation("question", mangle_question),
    Mutation("poison", plant_poison),
    Mutation("add", add_rrset, hands_authority=True),
    Mutation("cname", add_cname, hands_authority=True),
    Mutation("dname", add_dname, hands_authority=True),
    Mutation("delegation", add_delegation, hands_authority=True),
    Mutation("soa", add_soa, hands_authority=True),
    Mutation("rrsig", add_rrsig, hands_authority=True),
    Mutation("opt", add_opt, hands_authority=True),
    Mutation("rename", rename_rrset, hands_authority=True),
)


# -- wire mutations ---------------------------------------------------------------------------

WireMutation = Callable[[bytes, Target, Chooser], bytes]
_HEADER = struct.Struct("!HHHHHH")


def name_offsets(wire: bytes) -> list[int]:
    """Where the question name and every record's owner name start, as far as the wire parses.

    A small walker of its own (not dnspython) so that it never raises on the bytes it is given
    and can find names in messages that dnspython would reject.
    """
    offsets: list[int] = []
    if len(wire) < _HEADER.size:
        return offsets
    _, _, qd, an, ns, ar = _HEADER.unpack_from(wire)
    position = _HEADER.size
    for index in range(qd + an + ns + ar):
        if position >= len(wire):
            break
        offsets.append(position)
        position = _skip_name(wire, position)
        if position < 0:
            break
        if index < qd:
            position += 4
        else:
            if position + 10 > len(wire):
                break
            (rdlength,) = struct.unpack_from("!H", wire, position + 8)
            position += 10 + rdlength
    return offsets


def _skip_name(wire: bytes, position: int) -> int:
    while position < len(wire):
        length = wire[position]
        if length & 0xC0 == 0xC0:
            return position + 2
        if length == 0:
            return position + 1
        position += 1 + length
    return -1


def set_counts(wire: bytes, target: Target, choose: Chooser) -> bytes:
    """Header counts that disagree with the body: off by one, zero, or anything up to 65535."""
    if len(wire) < _HEADER.size:
        return wire
    field_offset = choose.choice((4, 6, 8, 10))
    (count,) = struct.unpack_from("!H", wire, field_offset)
    count = choose.choice((0, count + 1, max(0, count - 1), 65535, choose.integer(0, 65535)))
    count &= 0xFFFF
    return wire[:field_offset] + struct.pack("!H", count) + wire[field_offset + 2 :]


def truncate(wire: bytes, target: Target, choose: Chooser) -> bytes:
    """The datagram cut short anywhere, with TC set or not (counts now promise too much)."""
    cut = choose.integer(0, len(wire))
    data = bytearray(wire[:cut])
    if len(data) >= 4 and choose.integer(0, 1):
        data[2] |= dns.flags.TC >> 8
    return bytes(data)


def pointer_loop(wire: bytes, target: Target, choose: Chooser) -> bytes:
    """A name that is a compression pointer to itself, or two pointers to each other."""
    offsets = name_offsets(wire) or [_HEADER.size]
    first = choose.choice(offsets)
    if first + 2 > len(wire) or first > 0x3FFF:
        return wire
    data = bytearray(wire)
    second = choose.choice(offsets)
    if second == first or second + 2 > len(data) or abs(second - first) < 2 or second > 0x3FFF:
        data[first : first + 2] = struct.pack("!H", 0xC000 | first)
    else:
        data[first : first + 2] = struct.pack("!H", 0xC000 | second)
        data[second : second + 2] = struct.pack("!H", 0xC000 | first)
    return bytes(data)


def pointer_forward(wire: bytes, target: Target, choose: Chooser) -> bytes:
    """A name that points forward: to a later name, the end of the message, or beyond it."""
    offsets = name_offsets(wire) or [_HEADER.size]
    at = choose.choice(offsets)
    if at + 2 > len(wire):
        return wire
    later = [o for o in offsets if o > at]
    to = choose.choice((*later, len(wire) - 1, len(wire), 0x3FFF, at + 2))
    data = bytearray(wire)
    data[at : at + 2] = struct.pack("!H", 0xC000 | (to & 0x3FFF))
    return bytes(data)


def flip_bytes(wire: bytes, target: Target, choose: Chooser) -> bytes:
    """A few bytes after the ID changed at random."""
    if len(wire) <= 2:
        return wire
    data = bytearray(wire)
    for _ in range(choose.integer(1, 4)):
        data[choose.integer(2, len(data) - 1)] = choose.integer(0, 255)
    return bytes(data)


def append_junk(wire: bytes, target: Target, choose: Chooser) -> bytes:
    """Bytes after the last record."""
    return wire + choose.blob(1, 64)


def random_body(wire: bytes, target: Target, choose: Chooser) -> bytes:
    """The right ID, then random bytes: a header of sorts and a body of noise."""
    return wire[:2] + choose.blob(0, 600)


def random_header(wire: bytes, target: Target, choose: Chooser) -> bytes:
    """The right ID and body, any flags word (QR, opcode, TC, rcode ...)."""
    if len(wire) < 4:
        return wire
    return wire[:2] + struct.pack("!H", choose.integer(0, 0xFFFF)) + wire[4:]


@dataclass(frozen=True)
class WireEdit:
    """One way to break the bytes; `hands_authority` as for `Mutation`."""

    name: str
    apply: WireMutation
    hands_authority: bool = False


WIRE_MUTATIONS: tuple[WireEdit, ...] = (
    WireEdit("counts", set_counts),
    WireEdit("truncate", truncate),
    WireEdit("pointer-loop", pointer_loop),
    WireEdit("random-body", random_body),
    WireEdit("random-header", random_header),
    WireEdit("junk", append_junk),
    WireEdit("pointer-forward", pointer_forward, hands_authority=True),
    WireEdit("flip-bytes", flip_bytes, hands_authority=True),
)


# -- putting it together ----------------------------------------------------------------------


@dataclass
class Applied:
    """The names of the mutations applied to one response, for reports and reproductions."""

    names: list[str] = field(default_factory=list)


def mutate(
    reply: Reply,
    target: Target,
    choose: Chooser,
    applied: Applied | None = None,
) -> bytes | None:
    """A hostile version of `reply` (the genuine answer to `target.query`): bytes, or None.

    A first choice of 0 keeps the genuine reply (hypothesis shrinks towards it), so a failure
    shrinks to the fewest mutated responses; otherwise see `hostile`.
    """
    applied = applied if applied is not None else Applied()
    if choose.integer(0, 2) == 0:
        applied.names.append("genuine")
        return _render(reply)
    return hostile(reply, target, choose, applied)


def hostile(reply: Reply, target: Target, choose: Chooser, applied: Applied) -> bytes | None:
    """`reply` after zero to four message mutations and zero to two wire mutations.

    Silence may become a fabricated reply and a reply may become silence. The ID is always the
    query's: a wrong ID would only ever make a timeout.
    """
    query = target.query
    if reply is None:
        if choose.integer(0, 1) == 0:
            applied.names.append("silence")
            return None
        reply = dns.message.make_response(query)
    if isinstance(reply, dns.message.Message):
        message = _copy(reply)
        allowed = [m for m in MESSAGE_MUTATIONS if not (target.guarded and m.hands_authority)]
        for _ in range(choose.integer(0, 4)):
            mutation = choose.choice(allowed)
            applied.names.append(mutation.name)
            mutation.apply(message, target, choose)
        wire = _render(message)
        if wire is None:
            applied.names.append("unrenderable")
            wire = _render(reply)
    else:
        wire = reply
    assert wire is not None
    edits = [w for w in WIRE_MUTATIONS if not (target.guarded and w.hands_authority)]
    for _ in range(choose.choice((0, 0, 1, 2))):
        edit = choose.choice(edits)
        applied.names.append(edit.name)
        wire = edit.apply(wire, target, choose)
    if len(wire) >= 2:
        wire = struct.pack("!H", query.id) + wire[2:]
    return wire


def _copy(message: dns.message.Message) -> dns.message.Message:
    """A copy whose sections and RRsets may be edited: the test internet's replies may share
    RRset objects with its zones, which a TTL mutation must not change."""
    duplicate = copy.copy(message)
    duplicate.sections = [[rrset.copy() for rrset in section] for section in message.sections]
    # The original's index would find the original's RRsets; dnspython searches the sections
    # themselves when there is none.
    duplicate.index = None  # type: ignore[assignment]  # None is dnspython's "no index"
    if message.opt is not None:  # the extended rcode and EDNS flags live in its TTL
        duplicate.opt = message.opt.copy()
    return duplicate


@contextmanager
def fixed_shuffle() -> Iterator[None]:
    """dnspython shuffles each RRset as it renders it, with the global generator: render in a
    fixed order and leave that generator as it was (hypothesis forbids strategies to touch it,
    and a replayed case must render as it did the first time)."""
    state = random.getstate()
    random.seed(0)
    try:
        yield
    finally:
        random.setstate(state)


def _render(reply: Reply) -> bytes | None:
    if reply is None or isinstance(reply, bytes):
        return reply
    try:
        with fixed_shuffle():
            return reply.to_wire(max_size=MAX_MESSAGE)
    except (dns.exception.DNSException, ValueError, struct.error):
        return None


def hostile_reply(reply: Reply, target: Target) -> SearchStrategy[Any]:
    """A hypothesis strategy of hostile versions of `reply`, the genuine answer to
    `target.query` (bytes, or None for silence)."""
    from hypothesis import strategies as st

    @st.composite
    def build(draw: Callable[[SearchStrategy[Any]], Any]) -> bytes | None:
        return mutate(reply, target, DrawChooser(draw))

    return build()


# -- the transport's view ---------------------------------------------------------------------


def transport_outcome(action: SendQuery, wire: bytes | None, rtt: float = 0.01) -> Outcome:
    """What the engine makes of `wire` as the only reply to `action` (None: silence).

    Its rules (`resolver.engine.outbound.match_reply`): bytes that answer the question are a
    `Response`, bytes behind the right ID whose header means something are a `BareHeader`;
    anything else is ignored over UDP, where the wait then ends in a timeout, and ends the
    exchange over TCP, where the connection carries that one reply ("malformed response").
    """
    if wire is None:
        return Timeout()
    outcome = match_reply(action, wire, rtt)
    if outcome is not None:
        return outcome
    return NetworkError("connection closed or malformed response") if action.tcp else Timeout()


#: How many genuine replies a `HostileNetwork` remembers before it starts again.
REPLY_MEMORY = 20_000


class HostileNetwork(Network):
    """The engine's network: the test internet seen through a mutator.

    Each query gets the genuine reply of the addressed server (none if no server is there),
    then, two times in three, a `hostile` version of it drawn from `choose`. `log` keeps one
    line per query (server, question, mutations, outcome, bytes) for a failure report.
    `replies` may be shared between instances over one internet: genuine replies are
    remembered there, which makes fuzzing several times faster.
    """

    def __init__(
        self,
        internet: TestInternet,
        choose: Chooser,
        rng: random.Random,
        *,
        guard_poison: bool = True,
        replies: dict[tuple[object, ...], tuple[Reply, tuple[dns.name.Name, ...]]] | None = None,
        keep_log: bool = True,
    ) -> None:
        self.replies = replies if replies is not None else {}
        self.keep_log = keep_log
        self.internet = internet
        self.choose = choose
        self.rng = rng
        self.guard_poison = guard_poison
        self.addresses = tuple(server.address for server in internet.servers.values())
        self.log: list[str] = []
        self.sent = 0
        #: How many exchanges ended in each outcome (Response, Timeout, BareHeader).
        self.outcomes: collections.Counter[str] = collections.Counter()

    async def carry(self, send: Send, received: Callable[[bytes], None]) -> NetworkError | None:
        await trio.lowlevel.checkpoint()
        wire = self.reply(send.action)
        if wire is not None:
            received(wire)
        return None  # nothing more will come: the engine times out what did not match

    def exchange(self, action: SendQuery) -> Outcome:
        """One exchange for drivers of a single `Resolution`: a fresh ID, as the engine gives."""
        action.query.id = self.rng.getrandbits(16)
        return transport_outcome(action, self.reply(action))

    def reply(self, action: SendQuery) -> bytes | None:
        """The bytes that come back for `action` (whose query carries its ID), or None."""
        query = action.query
        self.sent += 1
        reply, zones = self._genuine(action)
        if query.flags & dns.flags.RD:
            # A forwarder is trusted for the whole chain from the question (it recurses for
            # us, `classify_recursive`): for the poison invariant it speaks for every name.
            zones = (dns.name.root,)
        applied = Applied()
        wire: bytes | None
        genuine = self.choose.integer(0, 2) == 0  # as `mutate` decides
        if genuine:
            applied.names.append("genuine")
            wire = _render(reply)
        else:
            guarded = self.guard_poison and not Target(query, zones).may_poison
            target = Target(query, zones, guarded=guarded, addresses=self.addresses)
            wire = hostile(reply, target, self.choose, applied)
        if wire is not None and len(wire) >= 2:
            wire = struct.pack("!H", query.id) + wire[2:]
        outcome = transport_outcome(action, wire)
        self.outcomes[type(outcome).__name__] += 1
        if self.keep_log:
            question = query.question[0]
            self.log.append(
                f"{action.server.address} {'TCP' if action.tcp else 'UDP'} {question.name} "
                f"{dns.rdatatype.to_text(question.rdtype)}: {'+'.join(applied.names)} -> "
                f"{type(outcome).__name__}"
                + (f" [{wire.hex()}]" if wire is not None and not genuine else "")
            )
        return wire

    def _genuine(self, action: SendQuery) -> tuple[Reply, tuple[dns.name.Name, ...]]:
        """What the addressed server says (parsed from its wire form, as the transport would
        see it) and the zones it serves; remembered in `replies`, since a healthy test
        internet always says the same to the same query."""
        query = action.query
        question = query.question[0]
        key = (
            action.server.address,
            question.name.labels,
            question.rdtype,
            query.flags,
            query.edns,
            query.payload,
            action.tcp,
        )
        known = self.replies.get(key)
        if known is not None:
            return known
        try:
            server = self.internet.server_at(action.server.address)
        except KeyError:
            known = (None, ())
        else:
            # The server renders its reply to see whether it fits: the same order whichever
            # case asked first.
            with fixed_shuffle():
                reply = server.respond(query, action.tcp)
                if isinstance(reply, dns.message.Message):
                    reply = dns.message.from_wire(reply.to_wire(max_size=MAX_MESSAGE))
            known = (reply, tuple(zone_origin(zone) for zone in server.zones))
        if len(self.replies) >= REPLY_MEMORY:
            self.replies.clear()
        self.replies[key] = known
        return known


# -- what every client must get back ----------------------------------------------------------

#: Client questions that take the resolver through its paths: plain answers, in-zone and
#: cross-zone aliases, a glueless delegation, NXDOMAIN, NODATA, deep delegations, an answer too
#: big for UDP, ANY (the handler's own path), and the poisoned names themselves.
QUESTIONS: tuple[tuple[str, str], ...] = (
    ("www.example.test.", "A"),
    ("alias.example.test.", "A"),
    ("chain.example.test.", "A"),
    ("www.glueless.test.", "A"),
    ("missing.example.test.", "A"),
    ("example.test.", "MX"),
    ("text.example.test.", "AAAA"),
    ("hop0.cnames.test.", "A"),
    ("www.d2.d1.deep.test.", "A"),
    ("big.example.test.", "TXT"),
    ("www.example.test.", "ANY"),
    ("poison.test.", "A"),
    ("www.poison.test.", "A"),
    ("www.other.test.", "A"),
    ("alias.example.test.", "CNAME"),
)


#: Forward and stub zones over the test internet, so that fuzzing reaches `_forward` and
#: `classify_recursive` (the other.test. authority standing in for a forwarder) and the stub
#: path (deep.test. asked of its own server, not found through the root).
class Routes(TypedDict):
    """The `Config` fields of `ROUTED`, typed so that `Config(**ROUTED)` is checked."""

    forward_zones: tuple[ForwardZone, ...]
    stub_zones: tuple[StubZone, ...]


ROUTED = Routes(
    forward_zones=(ForwardZone("other.test.", ("127.53.3.1",)),),
    stub_zones=(StubZone("deep.test.", ("127.53.7.1",)),),
)

#: The rcodes a client may get from a resolver facing broken authorities.
CLIENT_RCODES = (dns.rcode.NOERROR, dns.rcode.NXDOMAIN, dns.rcode.SERVFAIL)


def chain_problem(qname: dns.name.Name, answer: Sequence[dns.rrset.RRset]) -> str | None:
    """Why the answer is not the chain that starts at `qname`, or None if it is.

    Every record must belong to the question or to a CNAME target reached from it; a DNAME
    must sit above one of those names. Anything else in an answer was believed from a response
    that had no business saying it.
    """
    reached = {qname}
    grew = True
    while grew:
        grew = False
        for rrset in answer:
            if rrset.rdtype == dns.rdatatype.CNAME and rrset.name in reached:
                for rdata in rrset:
                    if rdata.target not in reached:
                        reached.add(rdata.target)
                        grew = True
    for rrset in answer:
        if rrset.rdtype == dns.rdatatype.DNAME:
            if not any(name.is_subdomain(rrset.name) for name in reached):
                return f"DNAME {rrset.name} is above no name of the chain from {qname}"
        elif rrset.name not in reached:
            return f"{rrset.name} {dns.rdatatype.to_text(rrset.rdtype)} is off the chain"
    return None


def poison_problem(rrsets: Sequence[dns.rrset.RRset]) -> str | None:
    """The poisoned record if one reached a client, else None.

    Only names under `POISON_NAME` count: a server may rename a planted record into its own
    zone, where it has every right to say so.
    """
    for rrset in rrsets:
        if (
            rrset.rdtype == dns.rdatatype.A
            and rrset.name.is_subdomain(POISON_NAME)
            and any(rdata.address == POISON_ADDRESS for rdata in rrset)
        ):
            return f"poison reached a client: {rrset.to_text()}"
    return None


def reply_problem(query: dns.message.Message, reply: bytes | None, guarded: bool) -> str | None:
    """What is wrong with the reply a client got (None: nothing).

    It must exist and parse, carry the client's ID and QR=1, be truncated (TC=1) or have
    NOERROR, NXDOMAIN or SERVFAIL (or YXDOMAIN for a DNAME that overflows the name), no TTL
    of 2**31 or more, not be an internal error's SERVFAIL, hold only the chain from the
    question in its answer and, when the poison invariant holds (`guarded`), no
    `POISON_ADDRESS` anywhere.
    """
    if reply is None:
        return "no reply to a well-formed query"
    response = parse(reply)
    if response is None:
        return f"reply does not parse: {reply.hex()}"
    if response.id != query.id or not response.flags & dns.flags.QR:
        return f"reply with ID {response.id} (query {query.id}) or without QR"
    if response.flags & dns.flags.TC:
        return None
    for option in response.options:
        if (
            isinstance(option, dns.edns.EDEOption)
            and option.code == ServfailReason.INTERNAL_ERROR.ede_code
            and option.text == ServfailReason.INTERNAL_ERROR.text
        ):
            return "SERVFAIL for an internal error (an exception the handler caught)"
    if response.rcode() not in CLIENT_RCODES and not _dname_overflow(response):
        return f"reply with rcode {dns.rcode.to_text(response.rcode())}"
    for rrset in [*response.answer, *response.authority]:
        if rrset.ttl >= 2**31:  # RFC 2181 section 8: such a TTL means zero
            return f"TTL {rrset.ttl} handed to a client: {rrset.name}"
    question = query.question[0]
    if question.rdtype != dns.rdatatype.ANY:  # RFC 8482: the handler may synthesise HINFO
        problem = chain_problem(question.name, response.answer)
        if problem is not None:
            return problem
    if guarded:
        return poison_problem([*response.answer, *response.authority, *response.additional])
    return None


def _dname_overflow(answer: dns.message.Message | actions.Answer) -> bool:
    """YXDOMAIN with a DNAME in the answer: the substitution would make a name longer than
    255 octets, and RFC 6672 section 2.2 says YXDOMAIN (the resolver passes that on)."""
    rcode = answer.rcode() if isinstance(answer, dns.message.Message) else answer.rcode
    return rcode == dns.rcode.YXDOMAIN and any(
        rrset.rdtype == dns.rdatatype.DNAME for rrset in answer.answer
    )


def answer_problem(qname: dns.name.Name, answer: actions.Answer, guarded: bool) -> str | None:
    """`reply_problem` for the pure core's `Answer`."""
    if answer.rcode not in CLIENT_RCODES and not _dname_overflow(answer):
        return f"answer with rcode {dns.rcode.to_text(answer.rcode)}"
    if answer.rcode == dns.rcode.SERVFAIL and answer.failure is None and not answer.stale:
        return "SERVFAIL without a reason"
    problem = chain_problem(qname, answer.answer)
    if problem is None and guarded:
        problem = poison_problem([*answer.answer, *answer.authority])
    return problem


class CaughtErrors(logging.Handler):
    """Collects what the resolver's safety nets caught and logged with a traceback.

    The handler and the service end a query in SERVFAIL when something raises, so no
    exception escapes them; but each such log record is still a bug a hostile server found, and
    the fuzzers count it as one. Install with `with CaughtErrors() as caught:`.
    """

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info:
            self.records.append(record)

    def __enter__(self) -> CaughtErrors:
        logging.getLogger("resolver").addHandler(self)
        return self

    def __exit__(self, *exc: object) -> None:
        logging.getLogger("resolver").removeHandler(self)

    def describe(self) -> list[str]:
        """Each record as its message and formatted traceback."""
        formatter = logging.Formatter()
        return [
            f"{r.getMessage()}\n{formatter.formatException(r.exc_info)}"
            for r in self.records
            if r.exc_info
        ]


@asynccontextmanager
async def hostile_resolver(
    internet: TestInternet,
    network: HostileNetwork,
    config: Config,
    seed: int,
) -> AsyncIterator[ResolverService]:
    """The complete client path over `network`, set up as `resolver serve` sets it up.

    A running `ResolverService` (its engine's questions outlive their first asker, as in the
    daemon) whose network is `network`; `respond` is a client's way in. The cache clock is
    fake and the engine's random generator (server choice, 0x20) is seeded, so a case replays
    exactly from its seed.
    """
    service = ResolverService(
        config, parse_root_hints(internet.hints_text()), clock=FakeClock(), network=network
    )
    service.context.rng.seed(seed)
    async with trio.open_nursery() as nursery:
        await nursery.start(service.run)
        yield service
        nursery.cancel_scope.cancel()
