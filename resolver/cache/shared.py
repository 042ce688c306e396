"""The shared (second-level) cache's keys and values: derived, written and checked without I/O.

A key is `prefix` + hex(HMAC-SHA256(secret, lower-cased wire name | type | class)): a reader of
the Redis keys learns nothing about the names without the secret, and nobody without it can
compute where to plant an answer (Unbound's cachedb hashes the question too, with a secret).

A value is a small versioned header and then a DNS message, the assembled answer as the engine
completed it (rcode, the CNAME chain, the SOA of a negative answer), with its TTLs as they were
at `stored_at`:

    b"RSC" | version (1 byte) | stored_at (float64, Unix time) | expires (float64) | message
        | MAC (HMAC-SHA256 of the key and all that precedes it, 32 bytes; `seal`)

The key hash alone protects nothing once someone can read Redis: the value is a plain DNS
message naming its question, so a reader learns the question and could write a value of their
own under that key. The MAC (under a key derived from the secret, `mac_key`) makes a value
good only from a holder of the secret and only under the key it was written for; `unseal`
checks it before a byte of the message is read. Values are not encrypted: a reader of Redis
can read the names and answers held there, not change them.

The message is the DO=1 answer (version 2): each RRset of the chain followed by its RRSIGs, and
for a negative answer the SOA followed by the denial's proof (NSEC or NSEC3 RRsets, their RRSIGs
and the SOA's RRSIG, RFC 4035 3.1.3), so that a member that takes the answer from here can
validate it as if it had asked the authorities. It carries no validation status (its AD bit is
never set, and never read): what a member concluded is not believed by another.

A value is untrusted input (a member fed a spoofed answer, or a holder of the secret, may have
written it): `decode` parses it as carefully as a packet from the network and accepts it only if
it answers exactly the question asked (name, type, class), its answer section is one CNAME chain
from that name, and a negative answer carries the SOA of a zone above the name it denies.
Signatures are kept only where they cover an RRset of that chain with the same owner, and proof
records only if they are NSEC, NSEC3 or their RRSIGs (or the SOA's) inside the SOA's zone: any
other record is left out and counted (`SharedAnswer.dropped`), the rest of the value still used.
What it returns is aged: every TTL less the time since `stored_at`, none beyond `expires`,
signatures and proofs alike.
It is parsed by the engine's one-pass reader, after its header's record count (at most
`MAX_RECORDS`) and its size (at most `MAX_MESSAGE`) are checked. What it returns answers the
question it was stored under and nothing else (`core/shared.py`: it never enters the record
cache), and is INDETERMINATE: the validator checks it again locally before it answers a client,
so whoever can write to Redis cannot make an answer secure.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import math
import struct
from dataclasses import dataclass

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from resolver.cache.proofs import in_proof, signs
from resolver.cache.records import with_ttl

MAGIC = b"RSC"
#: 2: the message carries the chain's RRSIGs and the denial proof (DNSSEC).
#: 3: each value ends with its MAC (`seal`); the message is read by the one-pass reader and
#: capped (`MAX_MESSAGE`, `MAX_RECORDS`).
VERSION = 3
_HEADER = struct.Struct("!3sBdd")
#: HMAC-SHA256 of the key and the value, appended to the value (`seal`).
MAC_SIZE = 32
#: The largest message a value holds, and the most records: far above any answer worth sharing
#: (a DO=1 answer with a long CNAME chain is a few KB), far below what makes reading a value
#: cost a client anything (a 64 KB message of 4,000 records took dnspython ~400 ms to build).
#: A larger answer is not stored; a larger value is dropped (`Rejected.TOO_BIG`).
MAX_MESSAGE = 16_384
MAX_RECORDS = 256
#: A value larger than the largest message plus header and MAC is not one of ours.
MAX_VALUE = _HEADER.size + MAX_MESSAGE + MAC_SIZE
#: How far in the future `stored_at` may be (clocks of a fleet differ a little). A value from
#: a writer whose clock is ahead by less is read as if stored now, its expiry moved back by
#: the difference; one further ahead is refused (`Rejected.SKEW`: a member's clock is wrong).
MAX_CLOCK_SKEW = 300.0


class Rejected(enum.Enum):
    """Why a value from the shared cache was not used (each is counted as dropped)."""

    MALFORMED = "malformed"  # not our header, or not a DNS message
    VERSION = "version"  # another format version (a newer or older resolver wrote it)
    MISMATCH = "mismatch"  # a message that does not answer the question asked
    FORGED = "forged"  # its MAC is wrong: not written by a member with the secret
    TOO_BIG = "too big"  # more bytes or records than any value the resolver writes
    SKEW = "clock skew"  # stored more than MAX_CLOCK_SKEW in the future: a clock is wrong
    EXPIRED = "expired"  # its time is up (a miss, not an attack: not counted as dropped)


@dataclass(frozen=True, slots=True)
class SharedAnswer:
    """A checked value: rcode, the CNAME chain (TTLs aged) and, if negative, the SOA (aged)."""

    rcode: dns.rcode.Rcode
    chain: tuple[dns.rrset.RRset, ...]
    soa: dns.rrset.RRset | None
    #: The name the chain ends at: the one an NXDOMAIN or NODATA is about.
    last: dns.name.Name
    #: Absolute expiry times (the cache's clock) of each chain RRset and of the SOA: a cache
    #: stores these as they are, so a TTL never grows on a round trip between members.
    expiries: tuple[float, ...] = ()
    soa_expires: float = 0.0
    #: Past its expiry but within the serve-stale window the reader allowed: stale data, for
    #: RFC 8767's rules only (`decode`'s `stale_window`).
    stale: bool = False
    #: The RRSIGs of each chain RRset (same order; None: unsigned), TTLs aged as the RRset's.
    signatures: tuple[dns.rrset.RRset | None, ...] = ()
    #: The denial's NSEC/NSEC3 records and RRSIGs (aged), for `CachedNegative.proof`.
    proof: tuple[dns.rrset.RRset, ...] = ()
    #: Records left out: signatures and proof records that did not belong (module docstring).
    dropped: int = 0


def shared_key(
    secret: bytes, prefix: bytes, qname: dns.name.Name, qtype: int, qclass: int
) -> bytes:
    """The Redis key of a question; the name's letter case does not change it."""
    wire = qname.to_wire()
    assert wire is not None  # to_wire without a file returns the bytes
    question = wire.lower() + struct.pack("!HH", qtype, qclass)
    return prefix + hmac.new(secret, question, hashlib.sha256).hexdigest().encode()


def mac_key(secret: bytes) -> bytes:
    """The key of values' MACs, derived from the secret so that it is not the key of the key
    hashes (`shared_key`): the two uses of one secret never meet."""
    return hmac.new(secret, b"resolver shared-cache value MAC", hashlib.sha256).digest()


def _mac(key_of_macs: bytes, key: bytes, value: bytes) -> bytes:
    # The key's length first: no (key, value) pair can be split differently to the same MAC.
    framed = struct.pack("!H", len(key)) + key + value
    return hmac.new(key_of_macs, framed, hashlib.sha256).digest()


def seal(key_of_macs: bytes, key: bytes, value: bytes) -> bytes:
    """`value` with its MAC appended: HMAC-SHA256 over the Redis key and the value, so that a
    value is good only under the key it was written for, and only from a holder of the secret
    (whoever can merely read or write Redis can neither forge nor move one)."""
    return value + _mac(key_of_macs, key, value)


def unseal(key_of_macs: bytes, key: bytes, sealed: bytes) -> bytes | None:
    """The value `sealed` holds under `key`, or None if its MAC is not the one `seal` makes."""
    if len(sealed) <= MAC_SIZE:
        return None
    value, tag = sealed[:-MAC_SIZE], sealed[-MAC_SIZE:]
    if not hmac.compare_digest(tag, _mac(key_of_macs, key, value)):
        return None
    return value


def answer_ttl(rrsets: tuple[dns.rrset.RRset, ...]) -> int:
    """The TTL of an answer as a whole: its shortest record's."""
    return min((rrset.ttl for rrset in rrsets), default=0)


def encode(
    qname: dns.name.Name,
    qtype: int,
    rcode: dns.rcode.Rcode,
    answer: tuple[dns.rrset.RRset, ...],
    authority: tuple[dns.rrset.RRset, ...],
    now: float,
    signatures: tuple[dns.rrset.RRset, ...] = (),
    proof: tuple[dns.rrset.RRset, ...] = (),
) -> tuple[bytes, int] | None:
    """The value to store and its TTL, or None for what must never be stored (SERVFAIL and
    other failures, TTL 0, a positive answer without records, a negative one without SOA).

    `signatures` (the RRSIGs of `answer`'s RRsets) go right after the RRset each covers; `proof`
    after the SOA of a negative answer (a positive one keeps no proof, as the record cache does
    not). Their TTLs do not shorten the value's: they are aged with their data on reading."""
    if rcode not in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN):
        return None
    negative = any(r.rdtype == dns.rdatatype.SOA for r in authority)
    if not answer and not negative:
        return None
    ttl = answer_ttl(answer + authority)
    if ttl <= 0:
        return None
    message = dns.message.Message()
    message.flags = dns.flags.QR | dns.flags.RA
    message.set_rcode(rcode)
    message.question = [
        dns.rrset.RRset(qname, dns.rdataclass.IN, dns.rdatatype.RdataType.make(qtype))
    ]
    by_covered = {(sig.name, sig.covers): sig for sig in signatures}
    for rrset in answer:
        message.answer.append(rrset)
        sig = by_covered.get((rrset.name, rrset.rdtype))
        if sig is not None:
            message.answer.append(sig)
    message.authority = [*authority, *(proof if negative else ())]
    try:
        wire = message.to_wire(max_size=MAX_MESSAGE)
    except dns.exception.TooBig:
        return None  # an answer this large is not worth a value every reader would drop
    if _record_count(wire) > MAX_RECORDS:
        return None
    return _HEADER.pack(MAGIC, VERSION, now, now + ttl) + wire, ttl


def decode(
    value: bytes,
    qname: dns.name.Name,
    qtype: int,
    now: float,
    max_chain: int,
    stale_window: float = 0.0,
) -> SharedAnswer | Rejected:
    """The aged answer `value` holds for (qname, qtype, IN), or why it cannot be used.

    A value expired less than `stale_window` seconds ago (serve-stale on) is returned marked
    `stale`, with its records' TTLs 0: what a local cache holds of an expired record."""
    if len(value) < _HEADER.size + 12:
        return Rejected.MALFORMED
    if len(value) > _HEADER.size + MAX_MESSAGE:
        return Rejected.TOO_BIG
    magic, version, stored_at, expires = _HEADER.unpack_from(value)
    if magic != MAGIC:
        return Rejected.MALFORMED
    if version != VERSION:
        return Rejected.VERSION
    if not (math.isfinite(stored_at) and math.isfinite(expires)) or expires <= stored_at:
        return Rejected.MALFORMED
    if stored_at > now + MAX_CLOCK_SKEW:
        return Rejected.SKEW
    if stored_at > now:
        # The writer's clock is ahead: the value's age cannot be known, so it is read as if
        # stored now with the TTLs it had then, never as if it had lived less than nothing
        # (which would lengthen every TTL by the difference, at every hop round the fleet).
        ahead = stored_at - now
        stored_at, expires = now, expires - ahead
    wire = value[_HEADER.size :]
    if _record_count(wire) > MAX_RECORDS:
        return Rejected.TOO_BIG  # counted from the header, before a record is built
    message = _parse(wire)
    if message is None:
        return Rejected.MALFORMED
    if not message.flags & dns.flags.QR or message.opcode() != dns.opcode.QUERY:
        return Rejected.MALFORMED
    rcode = message.rcode()
    if rcode not in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN):
        return Rejected.MISMATCH
    if len(message.question) != 1:
        return Rejected.MISMATCH
    question = message.question[0]
    if question.name != qname or question.rdtype != qtype or question.rdclass != dns.rdataclass.IN:
        return Rejected.MISMATCH
    remaining = expires - now
    elapsed = max(0.0, now - stored_at)
    if remaining < 1 and (stale_window <= 0 or now - expires > stale_window):
        return Rejected.EXPIRED
    checked = _chain(message.answer, qname, qtype, max_chain)
    if checked is None:
        return Rejected.MISMATCH
    chain, last, complete, sigs, dropped = checked
    soa = None
    proof: list[dns.rrset.RRset] = []
    if rcode == dns.rcode.NXDOMAIN or not complete:
        soas = [r for r in message.authority if r.rdtype == dns.rdatatype.SOA]
        if len(soas) != 1 or len(soas[0]) != 1 or not last.is_subdomain(soas[0].name):
            return Rejected.MISMATCH
        soa = soas[0]
        for rrset in message.authority:
            if rrset is soa:
                continue
            if in_proof(rrset, soa):
                proof.append(rrset)
            else:
                dropped += len(rrset)
    elif message.authority:
        return Rejected.MISMATCH  # a positive answer carries no authority records
    if rcode == dns.rcode.NXDOMAIN and complete:
        return Rejected.MISMATCH  # records for a name said not to exist
    aged: list[dns.rrset.RRset] = []
    expiries: list[float] = []
    stale = False
    for rrset in (*chain, *([soa] if soa is not None else [])):
        ends = min(stored_at + rrset.ttl, expires)
        ttl = min(int(rrset.ttl - elapsed), int(remaining))
        if ttl <= 0:
            if stale_window <= 0 or now - ends > stale_window:
                return Rejected.EXPIRED
            stale, ttl = True, 0
        aged.append(with_ttl(rrset, ttl))
        expiries.append(min(ends, now + ttl) if ttl > 0 else ends)
    aged_soa = aged.pop() if soa is not None else None
    soa_expires = expiries.pop() if soa is not None else 0.0
    # Signatures age with the RRset they cover; proof records with the denial (never longer
    # than its SOA, never 0 while it is fresh).
    aged_sigs = tuple(
        None if sig is None else with_ttl(sig, rrset.ttl)
        for rrset, sig in zip(aged, sigs, strict=True)
    )
    soa_ttl = 0 if aged_soa is None else aged_soa.ttl
    aged_proof = tuple(
        with_ttl(rrset, min(soa_ttl, max(1, int(rrset.ttl - elapsed)))) for rrset in proof
    )
    return SharedAnswer(
        dns.rcode.Rcode(rcode),
        tuple(aged),
        aged_soa,
        last,
        tuple(expiries),
        soa_expires,
        stale,
        aged_sigs,
        aged_proof,
        dropped,
    )


def _record_count(wire: bytes) -> int:
    """The records a DNS message's header announces (answer, authority and additional)."""
    an, ns, ar = struct.unpack_from("!HHH", wire, 6)
    return int(an + ns + ar)


def _parse(wire: bytes) -> dns.message.Message | None:
    """The message in a value, read as a reply from the network is: by the engine's one-pass
    reader (`engine/messages.py`), which never raises on hostile bytes. Imported here, not at
    the top: the engine imports this module."""
    from resolver.engine.messages import parse

    return parse(wire)


#: What `_chain` makes of an answer section.
_Chain = tuple[list[dns.rrset.RRset], dns.name.Name, bool, tuple[dns.rrset.RRset | None, ...], int]


def _chain(
    rrsets: list[dns.rrset.RRset], qname: dns.name.Name, qtype: int, max_chain: int
) -> _Chain | None:
    """The answer section as a CNAME chain from `qname`: (RRsets to keep, the name it ends at,
    whether it ends in `qtype` data, the RRSIGs of each kept RRset or None, how many records
    were left out), or None if any data record does not belong to that chain.

    DNAME records are left out: the CNAME synthesised from a DNAME is in the chain, and a DNAME
    from an untrusted source would answer for a whole subtree; so are their RRSIGs. Other
    RRSIGs are kept only for an RRset of the chain with their owner and covered type; any
    other signature is left out and counted, not a reason to refuse the value.
    """
    name, kept, complete = qname, [], False
    signatures: list[dns.rrset.RRset] = []
    dnames: set[dns.name.Name] = set()
    for rrset in rrsets:
        if rrset.rdclass != dns.rdataclass.IN or not rrset:
            return None
        if rrset.rdtype == dns.rdatatype.RRSIG:
            signatures.append(rrset)
            continue
        if rrset.rdtype == dns.rdatatype.DNAME:
            if not name.is_subdomain(rrset.name):
                return None
            dnames.add(rrset.name)
            continue
        if complete or rrset.name != name:
            return None
        if rrset.rdtype == qtype:
            kept.append(rrset)
            complete = True
        elif rrset.rdtype == dns.rdatatype.CNAME and len(rrset) == 1:
            if len(kept) >= max_chain:
                return None
            kept.append(rrset)
            name = next(iter(rrset)).target
            if any(link.name == name for link in kept):
                return None  # a loop: no answer a member can have stored
        else:
            return None
    covered: dict[tuple[dns.name.Name, int], dns.rrset.RRset] = {}
    dropped = 0
    for sig in signatures:
        key = (sig.name, sig.covers)
        if key in covered or not any(signs(sig, rrset) for rrset in kept):
            if not (sig.covers == dns.rdatatype.DNAME and sig.name in dnames):
                dropped += len(sig)
            continue
        covered[key] = sig
    sigs = tuple(covered.get((rrset.name, rrset.rdtype)) for rrset in kept)
    return kept, name, complete, sigs, dropped
