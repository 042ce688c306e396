"""What one DNS message says for a hit-rate replay: its question, and how long it may be cached.

Read by hand from the bytes (a capture holds millions of messages, and any of them may be
garbage): the header, the question, and only the TTL fields of the answer and authority
sections. Anything that does not parse raises `Malformed`, which the readers count and skip.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

_HEADER = struct.Struct("!HHHHHH")
_RR = struct.Struct("!HHIH")
_SOA_TYPE = 6
_OPT_TYPE = 41

NOERROR = 0
SERVFAIL = 2
NXDOMAIN = 3


class Malformed(ValueError):
    """Bytes that are not a DNS message with one question."""


class Summary(NamedTuple):
    """A message reduced to what the replay needs.

    `ttl`: for a response, how long its answer may be cached as the resolver sent it: the
    smallest TTL in the answer section (a CNAME chain lives as long as its shortest link); for a
    negative answer (NXDOMAIN, or NOERROR without answers), min(SOA TTL, SOA MINIMUM) of the
    authority section's SOA (RFC 2308 section 5), and for a CNAME chain ending in one, the
    smaller of the two; None if nothing says (no answer and no SOA, or a query).
    """

    id: int
    response: bool
    rcode: int
    name: str  # lower case, absolute, dotted ("www.example.com.")
    qtype: int
    qclass: int
    ttl: int | None
    truncated: bool = False  # TC=1: the client will ask again over TCP


#: Question names already decoded, by their wire form: a trace asks the same names again and
#: again, and decoding is most of what reading a message costs. Emptied when full.
_NAMES: dict[bytes, str] = {}
_NAMES_MAX = 100_000


def _name(wire: bytes, position: int) -> tuple[str, int]:
    """The (uncompressed) question name at `position`, in lower case, and where it ends."""
    start = position
    end = len(wire)
    while True:
        if position >= end:
            raise Malformed("name runs past the end")
        length = wire[position]
        if length == 0:
            break
        if length >= 0x40:
            raise Malformed("compressed or extended label in the question")
        position += 1 + length
    position += 1
    if position - start > 255:
        raise Malformed("name longer than 255 octets")
    raw = wire[start:position]
    name = _NAMES.get(raw)
    if name is None:
        labels = []
        at = 0
        while raw[at]:
            label = raw[at + 1 : at + 1 + raw[at]].decode("latin-1").lower()
            labels.append(label.replace(".", "\\."))
            at += 1 + raw[at]
        name = ".".join(labels) + "." if labels else "."
        if len(_NAMES) >= _NAMES_MAX:
            _NAMES.clear()
        _NAMES[raw] = name
    return name, position


def _skip_name(wire: bytes, position: int) -> int:
    for _ in range(128):
        if position >= len(wire):
            raise Malformed("name runs past the end")
        length = wire[position]
        if length == 0:
            return position + 1
        if length >= 0xC0:
            return position + 2
        if length >= 0x40:
            raise Malformed("unknown label type")
        position += length + 1
    raise Malformed("too many labels")


def summarise(wire: bytes) -> Summary:
    """The question and caching lifetime of a DNS message; `Malformed` if it has none."""
    if len(wire) < 12:
        raise Malformed("shorter than a header")
    ident, flags, qdcount, ancount, nscount, _arcount = _HEADER.unpack_from(wire)
    if qdcount != 1:
        raise Malformed(f"{qdcount} questions")
    name, position = _name(wire, 12)
    if position + 4 > len(wire):
        raise Malformed("question runs past the end")
    qtype, qclass = struct.unpack_from("!HH", wire, position)
    position += 4
    response = bool(flags & 0x8000)
    rcode = flags & 0x000F
    if not response:
        return Summary(ident, False, rcode, name, qtype, qclass, None)
    answer_ttl: int | None = None
    negative_ttl: int | None = None
    for index in range(ancount + nscount):
        position = _skip_name(wire, position)
        if position + 10 > len(wire):
            raise Malformed("record runs past the end")
        rdtype, _rdclass, ttl, rdlength = _RR.unpack_from(wire, position)
        rdata = position + 10
        position = rdata + rdlength
        if position > len(wire):
            raise Malformed("rdata runs past the end")
        if ttl & 0x80000000:
            ttl = 0  # RFC 2181 section 8: a TTL with the top bit set is read as zero
        if index < ancount:
            if rdtype != _OPT_TYPE:
                answer_ttl = ttl if answer_ttl is None else min(answer_ttl, ttl)
        elif rdtype == _SOA_TYPE and negative_ttl is None:
            negative_ttl = min(ttl, _soa_minimum(wire, rdata, position))
    truncated = bool(flags & 0x0200)
    if rcode in (NOERROR, NXDOMAIN) and answer_ttl is not None and negative_ttl is not None:
        # A CNAME chain ending in NXDOMAIN or NODATA: the chain lives as long as its shortest
        # part, the negative answer's lifetime included.
        return Summary(
            ident, True, rcode, name, qtype, qclass, min(answer_ttl, negative_ttl), truncated
        )
    if ancount and rcode == NOERROR:
        return Summary(ident, True, rcode, name, qtype, qclass, answer_ttl, truncated)
    if rcode in (NOERROR, NXDOMAIN):
        return Summary(ident, True, rcode, name, qtype, qclass, negative_ttl, truncated)
    return Summary(ident, True, rcode, name, qtype, qclass, None, truncated)


def _soa_minimum(wire: bytes, rdata: int, end: int) -> int:
    """The MINIMUM field: the last 4 bytes of the SOA's rdata (after two names, 5 numbers)."""
    position = _skip_name(wire, _skip_name(wire, rdata))
    if position + 20 != end:
        raise Malformed("SOA rdata of the wrong length")
    (minimum,) = struct.unpack_from("!I", wire, end - 4)
    return int(minimum)
