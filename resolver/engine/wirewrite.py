"""Reply sections rendered byte for byte as dnspython renders them, in a fraction of its time.

dnspython compresses a name by building a `dns.name.Name` for every suffix of it (each one
validated as immutable) to look it up in the compression table: for a cache miss that costs
more than everything else in rendering its reply. Here the table is keyed by the bytes of each
suffix in lowercase wire form instead (bytes hash once, in C), the suffixes of a name are
worked out once per distinct name (`_suffixes`, a bounded memo: the same SOA and NS names recur
in reply after reply; the question's name, the owner of most answers, is not even worked out:
`start_message` fills the table from the question's bytes and maps its labels to a pointer to
it), and the rdata of the common types is written directly, with the compression each type
gets in dnspython (its `_to_wire`): NS, CNAME, PTR, MX and SOA compress their names; DNAME, SRV
and the others never do. The rules are dnspython's
(`dns.name.Name.to_wire`): a suffix of two labels or more is remembered at its offset if that
is below 0x4000, the longest known suffix becomes a pointer, matching ignores ASCII case and
written labels keep theirs. `tests/test_wirewrite.py` holds the bytes to `Message.to_wire`'s.
"""

from __future__ import annotations

import random
import struct
from collections.abc import Collection, Iterable
from typing import Any

import dns.ipv6
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset

#: Suffix (in lowercase wire form, root included) -> offset of its first label in the message;
#: and the question's name, by its labels as given to `start_message`, -> 12, where that suffix
#: of it starts: the owner of most answers is found so, its suffixes not worked out at all.
Compress = dict[bytes | tuple[bytes, ...], int]

_RECORD = struct.Struct("!HHIH")
_SOA_INTS = struct.Struct("!IIIII")
_LENGTH = struct.Struct("!H")
_POINTER = 0xC000
_MAX_POINTER = 0x3FFF
_IN = dns.rdataclass.IN
_A = dns.rdatatype.A
_AAAA = dns.rdatatype.AAAA
_MX = dns.rdatatype.MX
_SOA = dns.rdatatype.SOA
# Rdata that is one name, compressed (dnspython's NSBase); DNAME (UncompressedNS) is not.
_ONE_NAME = frozenset({dns.rdatatype.NS, dns.rdatatype.CNAME, dns.rdatatype.PTR})
_TEXT = frozenset({dns.rdatatype.TXT, dns.rdatatype.SPF})
# Rdata whose dnspython rendering never touches the compression table (checked in each
# type's `_to_wire`: no names, or names written with `compress=None`): rendered by dnspython.
_UNCOMPRESSED = frozenset(
    {
        dns.rdatatype.DNAME,
        dns.rdatatype.SRV,
        dns.rdatatype.NAPTR,
        dns.rdatatype.HTTPS,
        dns.rdatatype.SVCB,
        dns.rdatatype.CAA,
        dns.rdatatype.HINFO,
        dns.rdatatype.DS,
        dns.rdatatype.DNSKEY,
        dns.rdatatype.RRSIG,
        dns.rdatatype.NSEC,
        dns.rdatatype.NSEC3,
        dns.rdatatype.NSEC3PARAM,
        dns.rdatatype.SSHFP,
        dns.rdatatype.TLSA,
    }
)
_HANDLED = frozenset({_A, _AAAA, _MX, _SOA}) | _ONE_NAME | _TEXT | _UNCOMPRESSED


class Unhandled(Exception):
    """Something this writer does not render as dnspython would (a relative name, a type or
    class it does not know): the caller renders the whole message with dnspython instead."""


#: A name's labels -> for each label but the root: the suffix that starts there, in lowercase
#: wire form (its key in a `Compress` table), and the label as written, after its length byte.
_Suffix = tuple[bytes, bytes]  # a suffix lower-cased, in wire form; its first label
_Suffixes = tuple[_Suffix, ...]
_suffixes_made: dict[tuple[bytes, ...], _Suffixes] = {}
#: Names remembered; forgotten all at once when full (a flood of unique names only refills it).
_SUFFIXES_MEMO = 1024


def _suffixes(labels: tuple[bytes, ...]) -> _Suffixes:
    suffixes = _suffixes_made.get(labels)
    if suffixes is None:
        if not labels or labels[-1]:
            raise Unhandled("relative name")
        pieces = [bytes((len(label),)) + label for label in labels[:-1]]
        # Length bytes are below 64: lowering the whole wire form lowers the labels alone.
        lowered = b"".join(pieces).lower() + b"\x00"
        made = []
        start = 0
        for piece in pieces:
            made.append((lowered[start:], piece))
            start += len(piece)
        suffixes = tuple(made)
        if len(_suffixes_made) >= _SUFFIXES_MEMO:
            _suffixes_made.clear()
        _suffixes_made[labels] = suffixes
    return suffixes


def write_name(out: bytearray, compress: Compress, name: dns.name.Name) -> None:
    """Append `name`, compressed as `dns.name.Name.to_wire(out, compress)` compresses it."""
    _write_suffixes(out, compress, _suffixes(name.labels))


def start_message(question: bytes, labels: tuple[bytes, ...]) -> tuple[bytearray, Compress]:
    """A blank header, then `question` (a name in uncompressed wire form and lowercase, then
    type and class: the packet cache's key holds it so), and the compression table dnspython
    has after writing it there. `labels` are that name's (in any letter case).

    No name precedes the question, so dnspython writes it whole and remembers each of its
    suffixes (at offsets far below 0x4000): the table is filled from the label lengths, with no
    lookup and no copy of a label.
    """
    out = bytearray(12)
    out += question
    compress: Compress = {}
    end = len(question) - 4
    start = 0
    while length := question[start]:
        compress[question[start:end]] = 12 + start
        start += length + 1
    if start:  # not the root, which is never compressed
        compress[labels] = 12
    return out, compress


def _write_suffixes(out: bytearray, compress: Compress, suffixes: Iterable[_Suffix]) -> None:
    """Append a name given as its (lower-cased suffix, label) pairs: a pointer to the longest
    suffix written before, else the label, remembering every suffix but the root."""
    for suffix, piece in suffixes:
        offset = compress.get(suffix)
        if offset is not None:
            out += (_POINTER | offset).to_bytes(2, "big")
            return
        here = len(out)
        if here <= _MAX_POINTER:
            compress[suffix] = here  # as dnspython remembers them
        out += piece
    out.append(0)


def handles(rrsets: Iterable[dns.rrset.RRset]) -> bool:
    """Whether `write_rrset` renders every one of these (class IN, a type it knows)."""
    for rrset in rrsets:
        if rrset.rdtype not in _HANDLED or rrset.rdclass != _IN or rrset.deleting is not None:
            return False
    return True


def _write_rdata(out: bytearray, compress: Compress, rdtype: int, rd: Any) -> None:
    # `rd: Any`: which fields it has follows from `rdtype` (`A.address`, `MX.exchange`...), a
    # narrowing no type checker can see; isinstance checks per record would cost the hot path.
    if rdtype == _A:
        # Canonical dotted quad (dnspython makes it so), 4 decimal bytes: no socket here.
        out += bytes(map(int, rd.address.split(".")))
    elif rdtype in _ONE_NAME:
        _write_suffixes(out, compress, _suffixes(rd.target.labels))
    elif rdtype == _AAAA:
        out += dns.ipv6.inet_aton(rd.address)
    elif rdtype == _SOA:
        _write_suffixes(out, compress, _suffixes(rd.mname.labels))
        _write_suffixes(out, compress, _suffixes(rd.rname.labels))
        out += _SOA_INTS.pack(
            rd.serial,
            rd.refresh,
            rd.retry,
            rd.expire,
            rd.minimum,
        )
    elif rdtype == _MX:
        out += rd.preference.to_bytes(2, "big")
        _write_suffixes(out, compress, _suffixes(rd.exchange.labels))
    elif rdtype in _TEXT:
        for string in rd.strings:
            out.append(len(string))
            out += string
    else:  # _UNCOMPRESSED: no name of it is compressed, so the table plays no part
        wire = rd.to_wire()
        assert wire is not None
        out += wire


def write_rrset(
    out: bytearray,
    compress: Compress,
    rrset: dns.rrset.RRset,
    ttl_offsets: list[int] | None = None,
) -> int:
    """Append `rrset` as `rrset.to_wire(out, compress)` does, shuffled alike (the same calls
    to `random.shuffle`); the number of records. Only for RRsets that `handles` accepts.

    `ttl_offsets`, if given, is told where each record's TTL field is: the packet cache ages
    the TTLs there, and need not parse the message it was handed to find them.
    """
    rdtype, rdclass, labels = rrset.rdtype, rrset.rdclass, rrset.name.labels
    # The owner as a pointer if it is the question's name (`Compress`), else as its suffixes,
    # worked out once for all the records.
    known = compress.get(labels)
    pointer = None if known is None else (_POINTER | known).to_bytes(2, "big")
    owner = _suffixes(labels) if pointer is None else ()
    # The records as `len(rrset)` and `iter(rrset)` read them (`items`, a dict in their order),
    # without the Python call each of those costs.
    rdatas: Collection[dns.rdata.Rdata] = rrset.items
    if not rdatas:
        if pointer is None:
            _write_suffixes(out, compress, owner)
        else:
            out += pointer
        if ttl_offsets is not None:
            ttl_offsets.append(len(out) + 4)
        out += _RECORD.pack(rdtype, rdclass, 0, 0)
        return 1
    if len(rdatas) > 1:  # shuffling one record draws no random number: nothing to skip
        rdatas = list(rdatas)
        random.shuffle(rdatas)
    fixed = _RECORD.pack(rdtype, rdclass, rrset.ttl, 0)  # the RDLENGTH is patched below
    for rd in rdatas:
        if pointer is None:
            _write_suffixes(out, compress, owner)
        else:
            out += pointer
        if ttl_offsets is not None:
            ttl_offsets.append(len(out) + 4)
        out += fixed
        start = len(out)
        _write_rdata(out, compress, rdtype, rd)
        length = len(out) - start
        if length > 0xFFFF:
            raise Unhandled("rdata too long")  # dnspython raises; let it
        _LENGTH.pack_into(out, start - 2, length)
    return len(rdatas)
