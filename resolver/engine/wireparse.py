"""A DNS message from wire bytes, as `dns.message.from_wire` builds it, in a fraction of its time.

Every reply from an authority is parsed once, and dnspython's reader spends most of a cold name's
parsing in its generality: a `Parser` object with a context manager per record and per name, an
enum made for each type and class, names built through the immutable-object machinery (a
context variable set and reset per object), `find_rrset` per record and each rdata hashed twice
as it is added. This module reads the bytes of the common reply (QUERY opcode; A, AAAA, NS,
CNAME, DNAME, PTR, SOA, MX, TXT and SRV records of class IN; one OPT) in one loop over the
buffer and builds the very objects dnspython would: a `QueryMessage` with the same sections,
RRsets, rdata, `index`, flags and OPT RRset (which carries EDNS version, extended rcode, payload
and options), so nothing downstream can tell the difference.

The rule is to vouch only for what it knows: at anything else (another opcode, a TSIG, an OPT
where it may not be, any record that does not parse exactly as dnspython would parse it, counts
larger than the data, trailing bytes) it gives up and returns what `dns.message.from_wire` makes
of the whole message, or the exception it raises. Records of other types and classes (DS, RRSIG,
NSEC, CH TXT...) are read by dnspython's own rdata parser, positioned on the same bytes, so the
fast path does not have to know them. `tests/test_wireparse.py` holds the two readers to the
same result over thousands of mutated replies of the test internet.

Names follow dnspython's rules exactly (RFC 1035 section 4.1.4 compression, pointers strictly
backwards, each followed segment wholly before the one that pointed to it, at most 16 hops, at
most 255 octets) and are made as dnspython's immutable wrapper allows its own code to make them:
`Name.__new__` and the `labels` slot set directly. They are `HashedName`s, dnspython names that
keep their hash once worked out, since the names of a reply (the question above all, which is
the client's) are looked up in dicts again and again on their way through the resolver.

Names and records are immutable, and the same ones come in reply after reply (a zone's name,
its SOA, its name servers and their addresses): those made lately are given again when the same
uncompressed bytes, letter case included, come back, as is the OPT record without options.
"""

from __future__ import annotations

import struct
import sys
from collections.abc import Callable, Iterable
from typing import Any, TypeVar, cast

import dns.edns
import dns.flags
import dns.ipv4
import dns.ipv6
import dns.message
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import dns.wire

__all__ = ["HashedName", "from_wire", "name_from_wire"]


class _Unsure(Exception):
    """The fast path does not vouch for this message: dnspython's reader decides."""


_HEADER = struct.Struct("!HHHHHH")
_RR_HEADER = struct.Struct("!HHIH")
_QUESTION = struct.Struct("!HH")
_SOA_TAIL = struct.Struct("!IIIII")
_SRV_HEAD = struct.Struct("!HHH")

#: dnspython's limit on compression pointers followed within one name.
_MAX_HOPS = dns.name.MAX_COMPRESSION_POINTER_CHAIN
_TTL_LIMIT = 0x7FFFFFFF  # larger TTLs are read as 0 (RFC 2181 section 8), as dnspython does

_Key = TypeVar("_Key")
_Value = TypeVar("_Value")


class _Made(dict[_Key, _Value]):
    """Values made from keys and remembered: `made[key]`, for a key seen lately or one of the
    `fixed` ones, is one dict lookup in C (no Python call); another key's value is made by
    `make`, and at most `size` of those are remembered (hostile replies may try every value)."""

    def __init__(
        self, make: Callable[[_Key], _Value], size: int, fixed: dict[_Key, _Value] | None = None
    ) -> None:
        self._fixed = dict(fixed or {})
        super().__init__(self._fixed)
        self._make = make
        self._limit = len(self._fixed) + size

    def __missing__(self, key: _Key) -> _Value:
        if len(self) >= self._limit:
            self.clear()
            self.update(self._fixed)
        made = self[key] = self._make(key)
        return made


_IN = dns.rdataclass.IN
_NONE = dns.rdatatype.NONE
_OPT = int(dns.rdatatype.OPT)
_TSIG = int(dns.rdatatype.TSIG)
_SECTIONS = tuple(dns.message.MessageSection)
_MEMBERS_MEMO = 1024  # members of unknown value remembered (an OPT's payload sizes as classes)
#: The enum members by value: the known ones, and others made by dnspython as it would.
_TYPES: _Made[int, dns.rdatatype.RdataType] = _Made(
    dns.rdatatype.RdataType.make, _MEMBERS_MEMO, {int(t): t for t in dns.rdatatype.RdataType}
)
_CLASSES: _Made[int, dns.rdataclass.RdataClass] = _Made(
    dns.rdataclass.RdataClass.make, _MEMBERS_MEMO, {int(c): c for c in dns.rdataclass.RdataClass}
)
_SINGLETONS = frozenset(int(t) for t in dns.rdatatype.RdataType if dns.rdatatype.is_singleton(t))

_A = int(dns.rdatatype.A)
_AAAA = int(dns.rdatatype.AAAA)
_NS = int(dns.rdatatype.NS)
_CNAME = int(dns.rdatatype.CNAME)
_PTR = int(dns.rdatatype.PTR)
_DNAME = int(dns.rdatatype.DNAME)
_SOA = int(dns.rdatatype.SOA)
_MX = int(dns.rdatatype.MX)
_TXT = int(dns.rdatatype.TXT)
_SRV = int(dns.rdatatype.SRV)
_FAST = frozenset((_A, _AAAA, _NS, _CNAME, _PTR, _DNAME, _SOA, _MX, _TXT, _SRV))


def _with_known_hash(base: type[dns.rdata.Rdata]) -> type[dns.rdata.Rdata]:
    """`base`, with the hash dnspython would compute given at birth.

    An rdata is hashed as it joins its RRset's dict, and dnspython's hash renders the record in
    canonical form first (for an SOA: two names, each lower-cased through a new `Name`), the
    costliest step of reading a negative answer. The reader has that form in hand already: the
    record's bytes with its names' lower-cased uncompressed keys. Equality stays dnspython's;
    an instance made any other way (`replace`, the constructor) hashes as dnspython does.
    """

    def __hash__(self: Any) -> int:
        try:
            known: int = self._known_hash
        except AttributeError:
            return base.__hash__(self)
        return known

    namespace = {"__slots__": ("_known_hash",), "__hash__": __hash__, "__module__": __name__}
    return type(base.__name__, (base,), namespace)


#: The rdata class made for each fast type in class IN: a subclass of dnspython's with a known
#: hash (`_with_known_hash`; the record cache keeps addresses as bare text whatever their class).
_RDATA_CLASS: dict[int, type[dns.rdata.Rdata]] = {
    rdtype: _with_known_hash(dns.rdata.get_rdata_class(_IN, _TYPES[rdtype])) for rdtype in _FAST
}

_OPT_CLASS = dns.rdata.get_rdata_class(_IN, dns.rdatatype.OPT)
_OPT_KNOWN_HASH = _with_known_hash(_OPT_CLASS)
#: The items of an OPT RRset without options made lately, by payload size: its one rdata
#: (immutable) with its hash, which a copy of the dict keeps (no Python `__hash__` call).
_empty_opts: dict[int, dict[Any, None]] = {}
_EMPTY_OPT_HASH = hash(b"")  # dnspython's: of the options as rendered, none
_GenericOption = dns.edns.GenericOption
_OPTION = struct.Struct("!HH")  # an EDNS option's code and length

_new = object.__new__
_set = object.__setattr__
_Name = dns.name.Name
_MAX_HASH = sys.maxsize
_hashes: dict[bytes, int] = {}
_HASHES_MEMO = 1024  # names remembered by `_hash_of`
#: `HashedName._hash` before the hash is worked out: no hash is -1 (Python reserves it).
_UNKNOWN = -1


class HashedName(dns.name.Name):
    """A `dns.name.Name` that works out its hash once, on first use, and keeps it.

    dnspython hashes a name with a Python loop over its letters, growing a big integer (about
    2 us for a typical name), and does it again at every dict or set lookup: a client's
    question is looked up about a dozen times on its way through the engine (the table of
    questions in flight, the queries on the wire, the cache...). The names this module reads
    are of this class, so each of those lookups after the first costs an attribute read.

    The value is dnspython's (`_hash_of`). Equality, ordering and every method are
    dnspython's, and those that make a name (`parent`, `relativize`...) make plain `Name`s; a
    copy or a pickle is a plain `Name` too, so nothing outside the process sees this class.
    """

    __slots__ = ("_hash",)
    _hash: int

    def __init__(self, labels: Iterable[bytes | str]) -> None:
        super().__init__(labels)
        _set(self, "_hash", _UNKNOWN)

    def __hash__(self) -> int:
        known: int = self._hash
        if known == _UNKNOWN:
            if _SAME_HASH_AS_DNSPYTHON:
                known = _hash_of(b"".join(self.labels).lower())
            else:  # (see `_same_hash_as_dnspython`)
                known = hash(_Name(self.labels))
            _set(self, "_hash", known)
        return known

    def __reduce__(self) -> tuple[type[dns.name.Name], tuple[tuple[bytes, ...]]]:
        return (_Name, (self.labels,))


def _base_nine_digit(place: int) -> bytes:
    """A `bytes.translate` table from each octet to its base-9 digit of `place` (81, 9 or 1)
    as an ASCII digit, an upper-case letter read as its lower-case one (as `bytes.lower`)."""
    return bytes(ord("0") + (c + 32 if 65 <= c <= 90 else c) // place % 9 for c in range(256))


_DIGIT_81, _DIGIT_9, _DIGIT_1 = (_base_nine_digit(place) for place in (81, 9, 1))


def _hash_of(letters: bytes) -> int:
    """`hash(name)` for a `dns.name.Name` whose labels, joined and lower-cased, are `letters`.

    dnspython's `__hash__` runs `h += (h << 3) + c` over those letters (nothing between the
    labels, so the value depends on nothing else) and returns the big integer, which Python's
    `slot_tp_hash` folds: kept as it is if it fits a machine word, else `hash()` of it; the
    folded value is what is returned here.

    That loop makes the sum of each letter times 9 to the power of the number of letters after
    it. A letter (below 729) is three digits in base 9, so the sum is the three numbers written
    with the letters' 81s, 9s and units digits, weighted 81, 9 and 1: `int` reads each in C,
    where the loop grew a big integer letter by letter (the root, with no letters, is 0).

    Up to `_HASHES_MEMO` recent names are remembered by their letters (the memo is emptied when
    full): the reply to a query repeats its question, and every negative answer of a zone names
    the zone's SOA, so most names are hashed once, whichever object holds them.
    """
    known = _hashes.get(letters)
    if known is None:
        value = (
            int(letters.translate(_DIGIT_81), 9) * 81
            + int(letters.translate(_DIGIT_9), 9) * 9
            + int(letters.translate(_DIGIT_1), 9)
            if letters
            else 0
        )
        known = value if value <= _MAX_HASH else hash(value)
        if len(_hashes) >= _HASHES_MEMO:
            _hashes.clear()
        _hashes[letters] = known
    return known


def _same_hash_as_dnspython() -> bool:
    """Whether `_hash_of` still computes what dnspython's `Name.__hash__` does, which is no
    documented API: if a version of dnspython hashed otherwise, `HashedName` would ask it."""
    samples: tuple[tuple[bytes, ...], ...] = (
        (b"",),
        (b"A", b""),
        (b"www", b"Example", b"COM", b""),
        (b"x1234567890-Bench-Test" * 2, b"Bench-Test" * 6, b"net", b""),  # a big integer
        (bytes(range(200, 256)), b""),
    )
    for labels in samples:
        if _hash_of(b"".join(labels).lower()) != hash(dns.name.Name(labels)):
            return False
    _hashes.clear()
    return True


_SAME_HASH_AS_DNSPYTHON = _same_hash_as_dnspython()


def _hashed_name(labels: tuple[bytes, ...]) -> HashedName:
    """A `HashedName` of labels known to be valid, made as dnspython's immutable wrapper lets
    its own code make names (`__new__`, then the slots set directly)."""
    name = _new(HashedName)
    _set(name, "labels", labels)
    _set(name, "_hash", _UNKNOWN)
    return name


_ROOT = _hashed_name((b"",))
_RRset = dns.rrset.RRset
_QueryMessage = dns.message.QueryMessage
_Flag = dns.flags.Flag

# The memos below hold the names and records that repeat across replies (the question echoed,
# a zone's SOA and NS names): 1,024 recent ones cover those, and a process with 10,000 names
# cached is 2.6 MiB smaller than with 4,096 (`benchmarks/memory.py`), at no measurable CPU.
#: The header's flags by flag word (hostile replies may try all 65,536).
_FLAGS: _Made[int, dns.flags.Flag] = _Made(_Flag, 1024)
_names: dict[bytes, HashedName] = {}
_NAMES_MEMO = 1024  # names remembered by their uncompressed wire form (see `_name`)
#: The records with names made lately, per type, by their uncompressed wire form.
_rdatas_made: dict[int, dict[bytes, Any]] = {
    rdtype: {} for rdtype in (_NS, _CNAME, _PTR, _DNAME, _SOA, _MX, _SRV)
}
_RDATAS_MEMO = 256  # per type


def name_from_wire(wire: bytes, pos: int) -> dns.name.Name:
    """`dns.name.from_wire(wire, pos)[0]`: the same name, or the same exception."""
    if type(wire) is bytes:
        try:
            return _name(wire, pos, len(wire), True)[0]
        except Exception:  # as `from_wire`: dnspython decides what this reader does not
            pass
    return dns.name.from_wire(wire, pos)[0]


def from_wire(wire: bytes) -> dns.message.Message:
    """`dns.message.from_wire(wire)` with its default arguments: the same message, or the same
    exception."""
    if type(wire) is bytes:  # (a bytearray's slices would be bytearrays, not labels)
        try:
            return _read(wire)
        except Exception:  # any doubt at all, even a bug here: dnspython's reader decides
            pass
    return dns.message.from_wire(wire)


def _name(wire: bytes, pos: int, end: int, decompress: bool) -> tuple[HashedName, bytes, int]:
    """The name at `pos` (read no further than `end`), its uncompressed wire form as read
    (letter case included: lower-cased, it is the key that makes names equal as dnspython
    compares them) and where the record goes on.

    dnspython's rules (`dns.name.from_wire_parser`): a pointer must point before the start of
    the segment it is in, the segment it points to must end before that start (so no loop
    can last), at most 16 pointers are followed and the name has at most 255 octets.

    The same names come back in reply after reply (a zone's own name, its name servers, the
    SOA's names), so the names made lately are remembered by their wire form and given again:
    names are immutable, and one given again keeps the hash it has worked out.
    """
    raw = b""  # the name's uncompressed form: the segments read so far, each up to its pointer
    start = pos  # the start of the segment being read
    after = -1  # where the record goes on: after the first pointer, or after the name
    hops = 0
    while True:
        if pos >= end:  # (a label running past `end` is caught here, at its next step)
            raise _Unsure
        length = wire[pos]
        if length < 64:
            if not length:
                break
            pos += length + 1
        elif length >= 0xC0 and decompress:
            if pos + 2 > end:
                raise _Unsure
            target = ((length & 0x3F) << 8) | wire[pos + 1]
            hops += 1
            if target >= start or hops > _MAX_HOPS:
                raise _Unsure
            raw += wire[start:pos]
            if after < 0:
                after = pos + 2
            end = start
            pos = start = target
        else:
            raise _Unsure
    pos += 1  # the root label
    raw += wire[start:pos]
    if after < 0:
        after = pos
    # Only checked names are remembered: one found is no longer than 255 octets.
    name = _names.get(raw)
    if name is None:
        if len(raw) > 255:
            raise _Unsure
        name = _hashed_name(_labels(raw))
        if len(_names) >= _NAMES_MEMO:
            _names.clear()
        _names[raw] = name
    return name, raw, after


def _labels(raw: bytes) -> tuple[bytes, ...]:
    """The labels of an uncompressed name already checked, the root's empty one last."""
    labels = []
    pos = 0
    while length := raw[pos]:
        pos += 1
        labels.append(raw[pos : pos + length])
        pos += length
    labels.append(b"")
    return tuple(labels)


def _new_rdata(rdtype: int) -> Any:
    """A new rdata of a fast type in class IN, its fields still to set."""
    rd = _new(_RDATA_CLASS[rdtype])
    _set(rd, "rdclass", _IN)
    _set(rd, "rdtype", _TYPES[rdtype])
    _set(rd, "rdcomment", None)
    return rd


def _address_maker(rdtype: int, text: Callable[[bytes], str]) -> Callable[[bytes], Any]:
    """What makes the A or AAAA rdata of an address's octets, as dnspython makes it."""

    def make(octets: bytes) -> Any:
        rd = _new_rdata(rdtype)
        _set(rd, "address", text(octets))
        _set(rd, "_known_hash", hash(octets))  # dnspython's: of the address's octets
        return rd

    return make


#: The address records made lately, by their octets (rdata are immutable): the addresses of
#: name servers come in referral after referral, and an IPv6 address's text is slow to make.
_A_MADE: _Made[bytes, Any] = _Made(_address_maker(_A, dns.ipv4.inet_ntoa), _RDATAS_MEMO)
_AAAA_MADE: _Made[bytes, Any] = _Made(_address_maker(_AAAA, dns.ipv6.inet_ntoa), _RDATAS_MEMO)


def _rdata(rdtype: int, wire: bytes, pos: int, end: int) -> dns.rdata.Rdata:
    """The rdata of a fast type in `wire[pos:end]`, as its class's `from_wire_parser` makes it."""
    rd: Any
    if rdtype == _A:
        if end - pos != 4:
            raise _Unsure
        return cast(dns.rdata.Rdata, _A_MADE[wire[pos:end]])
    if rdtype == _AAAA:
        if end - pos != 16:
            raise _Unsure
        return cast(dns.rdata.Rdata, _AAAA_MADE[wire[pos:end]])
    start = pos
    if rdtype == _TXT:
        strings = []
        while pos < end:
            following = pos + 1 + wire[pos]
            if following > end:
                raise _Unsure
            strings.append(wire[pos + 1 : following])
            pos = following
        if not strings:
            raise _Unsure  # dnspython refuses a TXT without strings
        rd = _new_rdata(rdtype)
        _set(rd, "strings", tuple(strings))
        _set(rd, "_known_hash", hash(wire[start:end]))
        return rd
    # The types with names: the names are read (which checks them), then the record is the
    # one made lately from the same uncompressed form, if any (rdata are immutable).
    if rdtype == _SOA:
        mname, mraw, pos = _name(wire, pos, end, True)
        rname, rraw, pos = _name(wire, pos, end, True)
        if end - pos != _SOA_TAIL.size:
            raise _Unsure
        head, names, pos = b"", mraw + rraw, end
    elif rdtype == _MX:
        if end - pos < 2:
            raise _Unsure
        head = wire[pos : pos + 2]
        exchange, names, pos = _name(wire, pos + 2, end, True)
    elif rdtype == _SRV:
        if end - pos < _SRV_HEAD.size:
            raise _Unsure
        head = wire[pos : pos + _SRV_HEAD.size]
        target, names, pos = _name(wire, pos + _SRV_HEAD.size, end, True)
    else:  # NS, CNAME, PTR; DNAME's target may not be compressed (RFC 6672 section 2.5)
        head = b""
        target, names, pos = _name(wire, pos, end, rdtype != _DNAME)
    if pos != end:
        raise _Unsure  # the rdata must be used up exactly
    tail = wire[end - _SOA_TAIL.size : end] if rdtype == _SOA else b""
    expanded = head + names + tail
    made = _rdatas_made[rdtype]
    rd = made.get(expanded)
    if rd is not None:
        return cast(dns.rdata.Rdata, rd)
    rd = _new_rdata(rdtype)
    # The hash dnspython computes: of the canonical form, names lower-cased, numbers as read.
    _set(rd, "_known_hash", hash(head + names.lower() + tail))
    if rdtype == _SOA:
        serial, refresh, retry, expire, minimum = _SOA_TAIL.unpack_from(tail)
        _set(rd, "mname", mname)
        _set(rd, "rname", rname)
        _set(rd, "serial", serial)
        _set(rd, "refresh", refresh)
        _set(rd, "retry", retry)
        _set(rd, "expire", expire)
        _set(rd, "minimum", minimum)
    elif rdtype == _MX:
        _set(rd, "preference", (head[0] << 8) | head[1])
        _set(rd, "exchange", exchange)
    elif rdtype == _SRV:
        priority, weight, port = _SRV_HEAD.unpack(head)
        _set(rd, "priority", priority)
        _set(rd, "weight", weight)
        _set(rd, "port", port)
        _set(rd, "target", target)
    else:
        _set(rd, "target", target)
    if len(made) >= _RDATAS_MEMO:
        made.clear()
    made[expanded] = rd
    return cast(dns.rdata.Rdata, rd)


def _new_rrset(
    name: dns.name.Name,
    rdclass: dns.rdataclass.RdataClass,
    rdtype: dns.rdatatype.RdataType,
    covers: dns.rdatatype.RdataType,
    ttl: int,
    items: dict[Any, None],
) -> dns.rrset.RRset:
    """`RRset(name, rdclass, rdtype, covers)` holding `items` with `ttl`, without the
    constructors' chain of calls."""
    rrset: dns.rrset.RRset = _new(_RRset)
    rrset.items = items
    rrset.rdclass = rdclass
    rrset.rdtype = rdtype
    rrset.covers = covers
    rrset.ttl = ttl
    rrset.name = name
    rrset.deleting = None
    return rrset


def _opt(
    name: dns.name.Name, ttl: int, wire: bytes, pos: int, payload: int, rdlen: int
) -> dns.rrset.RRset:
    """The message's OPT RRset, as `dns.rrset.from_rdata(name, ttl, rdata)` makes it (the TTL
    field holds the extended rcode, version and flags: never clamped)."""
    options: tuple[dns.edns.Option, ...] = ()
    rd: Any
    if rdlen:
        generic = _generic_options(wire, pos, pos + rdlen)
        if generic is None:  # options of a class of their own: dnspython's reader knows them
            return dns.rrset.from_rdata(name, ttl, _generic_rdata(wire, pos, payload, _OPT, rdlen))
        # Padding and keepalive (every reply of a DoT server to a padded query): what
        # dnspython makes, without its generic reader, and the hash it would compute (of the
        # options as rendered: the bytes read) given at birth.
        options = generic
        rd = _new(_OPT_KNOWN_HASH)
        _set(rd, "_known_hash", hash(wire[pos : pos + rdlen]))
    else:  # no options (nearly every reply): the rdata made lately for this payload size
        items = _empty_opts.get(payload)
        if items is None:
            rd = _new(_OPT_KNOWN_HASH)
            _set(rd, "_known_hash", _EMPTY_OPT_HASH)
            _set(rd, "rdclass", _CLASSES[payload])
            _set(rd, "rdtype", _TYPES[_OPT])
            _set(rd, "rdcomment", None)
            _set(rd, "options", options)
            if len(_empty_opts) >= _MEMBERS_MEMO:
                _empty_opts.clear()
            items = _empty_opts[payload] = {rd: None}
        return _new_rrset(name, _CLASSES[payload], _TYPES[_OPT], _NONE, ttl, items.copy())
    _set(rd, "rdclass", _CLASSES[payload])
    _set(rd, "rdtype", _TYPES[_OPT])
    _set(rd, "rdcomment", None)
    _set(rd, "options", options)
    return _new_rrset(name, rd.rdclass, rd.rdtype, _NONE, ttl, {rd: None})


def _generic_options(wire: bytes, pos: int, end: int) -> tuple[dns.edns.Option, ...] | None:
    """The EDNS options in wire[pos:end] if dnspython reads every one of them as a
    `GenericOption` (padding, keepalive, ...); None for any other, or a malformed list."""
    options = []
    while pos < end:
        if pos + 4 > end:
            return None
        otype, length = _OPTION.unpack_from(wire, pos)
        pos += 4
        if pos + length > end or dns.edns.get_option_class(otype) is not _GenericOption:
            return None
        options.append(_GenericOption(otype, wire[pos : pos + length]))
        pos += length
    return tuple(options)


def _generic_rdata(wire: bytes, pos: int, rdclass: int, rdtype: int, rdlen: int) -> dns.rdata.Rdata:
    """Any other rdata, by dnspython's own reader on the same bytes at the same offset."""
    parser = dns.wire.Parser(wire, pos)
    with parser.restrict_to(rdlen):
        # dnspython's reader is handed the numbers from the wire too; it makes the enums.
        return dns.rdata.from_wire_parser(
            cast(dns.rdataclass.RdataClass, rdclass), cast(dns.rdatatype.RdataType, rdtype), parser
        )


def _read(wire: bytes) -> dns.message.Message:
    """The message, built as `dns.message._WireReader.read` builds it; `_Unsure` (or any other
    exception) where this reader does not vouch for the result."""
    size = len(wire)
    if size < _HEADER.size:
        raise _Unsure
    ident, flags, qdcount, ancount, nscount, arcount = _HEADER.unpack_from(wire)
    if flags & 0x7800:  # not opcode QUERY: another message class, another reader
        raise _Unsure
    message = _QueryMessage(id=ident)
    message.flags = _FLAGS[flags]
    message.wire = wire
    index = message.index
    pos = _HEADER.size

    section_number = _SECTIONS[0]
    question = message.sections[0]
    for _ in range(qdcount):
        name, _, pos = _name(wire, pos, size, True)
        if pos + 4 > size:
            raise _Unsure
        rdtype, rdclass = _QUESTION.unpack_from(wire, pos)
        pos += 4
        rrset = _new_rrset(name, _CLASSES[rdclass], _TYPES[rdtype], _NONE, 0, {})
        question.append(rrset)
        index[(section_number, name, rrset.rdclass, rrset.rdtype, _NONE, None)] = rrset

    # (section, owner's key, class, type, covers) -> the RRset and its rdata dict
    found: dict[tuple[int, bytes, int, int, int], tuple[dns.rrset.RRset, dict[Any, None]]] = {}
    for number, count in ((1, ancount), (2, nscount), (3, arcount)):
        section = message.sections[number]
        for _ in range(count):
            if wire[pos]:
                name, raw, pos = _name(wire, pos, size, True)
            else:  # the root (an OPT's owner, in nearly every reply): nothing to walk
                name, raw, pos = _ROOT, b"\x00", pos + 1
            key = raw.lower()
            if pos + 10 > size:
                raise _Unsure
            rdtype, rdclass, ttl, rdlen = _RR_HEADER.unpack_from(wire, pos)
            pos += 10
            end = pos + rdlen
            if end > size:
                raise _Unsure
            if rdtype == _OPT:
                if number != 3 or message.opt is not None or key != b"\x00":
                    raise _Unsure  # dnspython's BadEDNS
                message.opt = _opt(name, ttl, wire, pos, rdclass, rdlen)
                pos = end
                continue
            if rdtype == _TSIG:
                raise _Unsure
            if rdclass == 1 and rdtype in _FAST:
                rd = _rdata(rdtype, wire, pos, end)
                covers = _NONE
            else:
                rd = _generic_rdata(wire, pos, rdclass, rdtype, rdlen)
                covers = _TYPES[int(rd.covers())]
            pos = end
            if ttl > _TTL_LIMIT:
                ttl = 0
            entry = found.get((number, key, rdclass, rdtype, covers))
            if entry is None:
                items: dict[Any, None] = {}
                rrset = _new_rrset(name, rd.rdclass, rd.rdtype, covers, ttl, items)
                section.append(rrset)
                found[(number, key, rdclass, rdtype, covers)] = (rrset, items)
                index[
                    (_SECTIONS[number], name, rrset.rdclass, rrset.rdtype, rrset.covers, None)
                ] = rrset
            else:
                # `Rdataset.add(rd, ttl)`: the smallest TTL; a singleton type keeps the last
                # record; a record equal to one already there changes nothing else.
                rrset, items = entry
                if ttl < rrset.ttl:
                    rrset.ttl = ttl
                if rdtype in _SINGLETONS:
                    items.clear()
            items.setdefault(rd, None)
    if pos != size:
        raise _Unsure  # trailing junk
    return message
