"""The record cache: RRsets and negative answers with absolute expiry times and trust ranks.

Expiry is stored as an absolute wall-clock time (from the injected clock), as Unbound does, so a
cached entry keeps its meaning in a dump or across a restart, and tests run hours of TTL with a
fake clock. An `ExpiringLru` bounds the number of entries (least recently used goes first) and
drops each entry when its own TTL, and its serve-stale window, run out.

Entries are stored compactly, since a resolver's memory is mostly its cache. As dnspython
RRsets (an RRset object, a dict of rdata objects, a `Name` of several small objects) in a
cachetools `TLRUCache`, a realistic mix of records cost 1,229 bytes of heap each; stored as
below, about 550.

- The key is one bytes object: the owner's labels in lower case joined by dots, then the type
  (2 bytes) and the kind of entry (1 byte). It is built in about 0.3 us and hashes once, where a
  dnspython `Name` hashes with a Python loop over its letters (2 us, four times per lookup of a
  `TLRUCache`). A name with a dot inside a label, which the joined text could not tell apart,
  is spelt as length-prefixed labels instead, with a flag in the kind byte.
- The value is a flat tuple. In place of the owner it holds None when the owner is the key's
  name as it is (in lower case: nearly always), and the records as one of two payloads:
  - addresses (IN A and AAAA, three quarters of a cache) as their text, one string each: the
    rdata objects are made again on a read, which costs about 1 us each, as dnspython's own
    unpickling makes them (its constructor validates the text again, 15 us);
  - anything else as the dict that the RRset kept its rdatas in. A read copies it: a new dict
    would hash each rdata again, and dnspython hashes an rdata by rendering it (16 to 36 us for
    an NS, CNAME or SOA record), while a copy keeps the hashes.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, NamedTuple

import dns.name
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.IN.A
import dns.rdtypes.IN.AAAA
import dns.rrset

from resolver.cache.lru import ExpiringLru
from resolver.config import CacheConfig
from resolver.core.reasons import ServfailReason
from resolver.core.security import Security

Clock = Callable[[], float]


class Rank(IntEnum):
    """How far a record can be trusted (RFC 2181 section 5.4.1); higher replaces lower, never back.

    Only answer data (ANSWER, or NONAUTH_ANSWER from a reply without AA or from a forwarder) is
    ever returned to a client: glue and referral NS sets only steer the iterator towards the
    servers that are authoritative for the data. A server that omits AA is believed, but the
    zone's own authoritative answer replaces what it said, never the other way round.
    """

    GLUE = 1
    REFERRAL = 2
    NONAUTH_ANSWER = 3
    AUTHORITY = 4
    ANSWER = 5


@dataclass(frozen=True, slots=True)
class _Entry:
    rrset: dns.rrset.RRset
    expires: float
    rank: Rank
    security: Security = Security.INDETERMINATE
    signatures: dns.rrset.RRset | None = None


#: An RRset entry as `export` hands it out (its records, absolute expiry time and rank).
CachedRRset = _Entry


@dataclass(frozen=True, slots=True)
class CachedNegative:
    """An NXDOMAIN (rdtype None: the whole name) or NODATA (for one rdtype), with its SOA."""

    rcode: dns.rcode.Rcode
    soa: dns.rrset.RRset
    expires: float
    security: Security = Security.INDETERMINATE
    #: The DNSSEC records that prove the denial (RFC 4035 3.1.3): NSEC or NSEC3 RRsets, their
    #: RRSIGs and the SOA's RRSIG, TTLs as stored; empty without DO or from an unsigned zone.
    proof: tuple[dns.rrset.RRset, ...] = ()


class Signed(NamedTuple):
    """A cached RRset with what DNSSEC says about it: its RRSIGs (an RRSIG RRset covering its
    type, TTL aged like the data's, or None) and the validator's verdict."""

    rrset: dns.rrset.RRset
    signatures: dns.rrset.RRset | None
    security: Security


@dataclass(frozen=True, slots=True)
class ZoneCut:
    """The deepest cached zone cut at or above a name, as iteration starts from it: the zone,
    the names of its name servers, and each one's cached addresses (IPv4 then IPv6, glue
    included), which are shared between callers: copy them to change them."""

    zone: dns.name.Name
    ns_names: tuple[dns.name.Name, ...]
    addresses: Mapping[dns.name.Name, tuple[str, ...]]


# The kinds keep positive, negative and failure entries for the same name apart in one cache,
# so a single size bound (and a single LRU order) covers everything the resolver remembers.
# The stored tuples, by kind (`owner` is None when it is the key's own name, in lower case;
# `records` is address strings, or one dict of rdatas: see the module's docstring):
#   _RRSET     (expires, TTL << 5 | security << 3 | rank, owner, RRSIGs, records...)
#   _NODATA    (expires, SOA TTL << 2 | security, rcode, owner, proof, SOA owner, SOA's dict of
#              rdatas); also _NXDOMAIN
#   _FAILURE   (expires, reason)
#   _BOGUS     (expires, reason): why validation of (name, type) failed, for `dnssec.bogus_ttl`
# RRSIGs is None or the dict of rdatas of the RRSIG RRset covering the type (DNSSEC only: the
# common entry pays one None); proof is None or a tuple of RRsets (`CachedNegative.proof`).
_RRSET = 0
_NODATA = 1
_NXDOMAIN = 2
_FAILURE = 3
_BOGUS = 4
_KIND = 0x7F
_ESCAPED = 0x80  # the key spells the name as length-prefixed labels (see `_spelling`)
_SUFFIX = struct.Struct(">HB")  # type, kind
_RANK_BITS = 3
_RANK_MASK = (1 << _RANK_BITS) - 1
# The security status sits between the rank and the TTL of an RRset entry, and under the SOA
# TTL of a negative one: two bits, no extra slot.
_SECURITY_BITS = 2
_SECURITY_MASK = (1 << _SECURITY_BITS) - 1
_TTL_SHIFT = _RANK_BITS + _SECURITY_BITS
_SECURITIES: dict[int, Security] = {security.value: security for security in Security}
_RANKS: dict[int, Rank] = {rank.value: rank for rank in Rank}
_Stored = tuple[Any, ...]  # one of the tuples above
_NS_SUFFIX = _SUFFIX.pack(dns.rdatatype.NS, _RRSET)
#: The rdata classes whose records are stored as address text: IN A and IN AAAA.
_ADDRESS_TYPES: dict[int, tuple[type[dns.rdata.Rdata], dns.rdatatype.RdataType]] = {
    dns.rdatatype.A: (dns.rdtypes.IN.A.A, dns.rdatatype.A),
    dns.rdatatype.AAAA: (dns.rdtypes.IN.AAAA.AAAA, dns.rdatatype.AAAA),
}
_set_slot = object.__setattr__
_new_object = object.__new__
_RRset = dns.rrset.RRset
#: How many zones' SOAs `RecordCache._shared_soa` remembers.
_SOA_ZONES = 256
#: How many zone cuts `RecordCache.closest_cut` remembers.
_CUT_ZONES = 1024
#: A remembered zone cut: the stored NS entry, the keys of its names' addresses and what each
#: held (None: nothing fresh), and the cut made of them.
_CutMemo = tuple[_Stored, tuple[bytes, ...], tuple[_Stored | None, ...], ZoneCut]


def with_ttl(rrset: dns.rrset.RRset, ttl: int) -> dns.rrset.RRset:
    """A copy with another TTL (the original may be shared with the cache or a message)."""
    if rrset.ttl == ttl:
        return rrset
    if type(rrset) is not _RRset:
        copy = rrset.copy()
        copy.ttl = ttl
        return copy
    # What `copy` makes (dnspython's clone protocol: a new dict of the same rdatas, which
    # keeps their hashes, and the attributes), without its chain of `_clone` calls.
    copy = _new_object(_RRset)
    copy.items = rrset.items.copy()
    copy.rdclass = rrset.rdclass
    copy.rdtype = rrset.rdtype
    copy.covers = rrset.covers
    copy.ttl = ttl
    copy.name = rrset.name
    copy.deleting = rrset.deleting
    return copy


def _spelling(name: dns.name.Name) -> tuple[bytes, int]:
    """The name's labels joined by dots, as written, and 0; or, when a label holds a dot itself
    (so that the joined text could stand for two names), its labels each after its length, and
    the flag `_ESCAPED`. A key holds the first element in lower case."""
    labels = name.labels
    text = b".".join(labels)
    if text.count(b".") == len(labels) - 1:
        return text, 0
    return b"".join(bytes((len(label),)) + label for label in labels), _ESCAPED


def _name_of(text: bytes, escaped: int) -> dns.name.Name:
    """The name spelt `text` by `_spelling` (which said `escaped`)."""
    if not escaped:
        return dns.name.Name(text.split(b"."))
    labels = []
    position = 0
    while position < len(text):
        end = position + 1 + text[position]
        labels.append(text[position + 1 : end])
        position = end
    return dns.name.Name(labels)


def _records(rrset: dns.rrset.RRset) -> tuple[Any, ...]:
    """The records of `rrset` as stored: its addresses, or a copy of its dict of rdatas (which
    keeps their hashes; a copy, so that the caller may still change its RRset)."""
    address_type = _ADDRESS_TYPES.get(rrset.rdtype)
    if address_type is not None and rrset.rdclass == dns.rdataclass.IN:
        cls: type[Any] = address_type[0]  # (so that the type checker knows `address`)
        addresses = []
        for rdata in rrset.items:
            # Any A or AAAA class (the engine's reader makes a subclass that knows its hash):
            # read back, each record is dnspython's own class again, equal and hashed alike.
            if not isinstance(rdata, cls) or rdata.rdcomment is not None:
                return (rrset.items.copy(),)
            addresses.append(rdata.address)
        return tuple(addresses)
    return (rrset.items.copy(),)


def _rrset(owner: dns.name.Name, rdtype: int, records: _Stored, ttl: int) -> dns.rrset.RRset:
    """A fresh RRset of stored records (see `_records`), which the caller may change or keep."""
    first = records[0]
    if type(first) is dict:
        rdata = next(iter(first))
        rrset = dns.rrset.RRset(owner, rdata.rdclass, rdata.rdtype, rdata.covers())
        rrset.items = first.copy()
    else:
        cls, rdtype_enum = _ADDRESS_TYPES[rdtype]
        rrset = dns.rrset.RRset(owner, dns.rdataclass.IN, rdtype_enum)
        rdatas = []
        for address in records:
            # What dnspython's unpickling does (Rdata.__setstate__), without its dict of state.
            rdata = cls.__new__(cls)
            _set_slot(rdata, "rdclass", dns.rdataclass.IN)
            _set_slot(rdata, "rdtype", rrset.rdtype)
            _set_slot(rdata, "rdcomment", None)
            _set_slot(rdata, "address", address)
            rdatas.append(rdata)
        # A dns.set.Set keeps its members as the keys of the insertion-ordered dict `items`;
        # these came out of a valid RRset, so the checks that `add` makes are not repeated.
        rrset.items = dict.fromkeys(rdatas)
    rrset.ttl = ttl
    return rrset


class RecordCache:
    """RRsets keyed by (name, type), and negative answers, bounded in entries."""

    def __init__(self, config: CacheConfig, clock: Clock, bogus_ttl: int = 60) -> None:
        self._config = config
        # The bounds every put applies, read once (the configuration is frozen).
        self._min_ttl = config.min_ttl
        self._max_ttl = config.max_ttl
        self._max_delegation_ttl = config.max_delegation_ttl
        self._max_negative_ttl = config.max_negative_ttl
        self._clock = clock
        self._bogus_ttl = bogus_ttl
        # Expired entries are kept for the serve-stale window, then dropped. Failures are never
        # served stale, so they go when they expire.
        keep_stale = float(config.max_stale if config.serve_stale else 0)

        def deadline(key: bytes, stored: _Stored) -> float:
            expires: float = stored[0]
            return expires if key[-1] & _KIND >= _FAILURE else expires + keep_stale

        self._entries: ExpiringLru[bytes, _Stored] = ExpiringLru(config.max_entries, deadline)
        # The SOA (owner, dict of rdatas) last stored for each of the latest zones: the negative
        # answers of one zone share it, as they share the zone. Emptied when full.
        self._soas: dict[tuple[bytes, ...], tuple[dns.name.Name, dict[Any, None]]] = {}
        self._last_spelt: tuple[dns.name.Name, tuple[bytes, int, bytes]] = (
            dns.name.empty,
            (*_spelling(dns.name.empty), b""),
        )
        # The zone cuts made lately, by the key of their NS entry (see `closest_cut`). Emptied
        # when full.
        self._cuts: dict[bytes, _CutMemo] = {}
        # Whether a DNAME was ever stored: until then no miss needs to look for one above the
        # name (most resolvers never meet one), which saves a lookup per label on every miss.
        self.holds_dnames = False
        # The latest expiry of a failure put here: from then on none is held, so a miss needs
        # to look none up (`get_failure`), nor an answer to remove one (most of the time, in a
        # resolver whose authorities answer).
        self._failing_until = -math.inf

    def __len__(self) -> int:
        return self._entries.size(self._clock())

    def _spell(self, name: dns.name.Name) -> tuple[bytes, int, bytes]:
        """`_spelling(name)` and its first element in lower case, for the keys of `name`.

        One resolution looks the same name up several times in a row (a failure, the data, an
        alias, a denial, its zone cut), so the last name spelt is remembered, by identity:
        names are immutable, and the one held here cannot be freed and its id reused.
        """
        last = self._last_spelt
        if last[0] is name:
            return last[1]
        text, flag = _spelling(name)
        spelt = (text, flag, text.lower())
        self._last_spelt = (name, spelt)
        return spelt

    def now(self) -> float:
        """The cache's clock (wall-clock seconds): what its absolute expiry times are measured
        against, and what the validator checks RRSIG times by."""
        return self._clock()

    def clamp_ttl(self, ttl: int, *, delegation: bool = False) -> int:
        """The TTL the cache would keep for a record: cache-min-ttl, cache-max-ttl, the NS cap."""
        ceiling = self._max_delegation_ttl if delegation else self._max_ttl
        return max(self._min_ttl, min(ttl, ceiling))

    def negative_ttl(self, soa: dns.rrset.RRset) -> int:
        """min(SOA TTL, SOA MINIMUM) (RFC 2308 section 5), within the configured bounds."""
        return max(self._min_ttl, min(soa.ttl, _first(soa).minimum, self._max_negative_ttl))

    def remaining(self, expires: float) -> int:
        return max(0, int(expires - self._clock()))

    def put_rrset(
        self,
        rrset: dns.rrset.RRset,
        rank: Rank,
        *,
        delegation: bool = False,
        signatures: dns.rrset.RRset | None = None,
        security: Security = Security.INDETERMINATE,
        expires: float | None = None,
    ) -> bool:
        """Store an RRset unless a more trusted copy is still held; True if it was stored.

        An empty RRset says nothing (no message can carry one) and is not stored. Nor is an
        RRSIG RRset on its own: signatures live with the RRset they cover (`signatures`), so
        that one covering some other type can never be handed out as the answer to an RRSIG
        question (those are always asked upstream).
        `expires`: data aged elsewhere (a dump, the shared cache) keeps the absolute expiry it
        has: never lengthened by `cache.min_ttl` again (a TTL only ever decreases, however many
        times data goes round between caches), only cut by the ceilings; in the past, it is
        stored as stale (kept for serve-stale only, never answered as fresh).
        """
        rdtype = rrset.rdtype
        if not rrset.items or rdtype == dns.rdatatype.RRSIG:
            return False
        text, flag, lowered = self._spell(rrset.name)
        now = self._clock()
        entries = self._entries
        key = lowered + _SUFFIX.pack(rdtype, _RRSET | flag)
        held = entries.get(key, now)
        if held is not None and held[1] & _RANK_MASK > rank and held[0] > now:
            return False
        if expires is None:
            ttl = self.clamp_ttl(rrset.ttl, delegation=delegation)
            if ttl <= 0:
                return False
            expires = now + ttl
        else:
            ceiling = self._max_delegation_ttl if delegation else self._max_ttl
            expires = min(expires, now + ceiling)
            ttl = max(1, int(expires - now))
        owner = None if text == lowered else rrset.name
        sigs = signatures.items.copy() if signatures else None
        packed = ttl << _TTL_SHIFT | security << _RANK_BITS | rank
        entries.put(key, (expires, packed, owner, sigs, *_records(rrset)), now)
        if rdtype == dns.rdatatype.DNAME:
            self.holds_dnames = True
        if rank >= Rank.NONAUTH_ANSWER:
            # Fresh authoritative data supersedes what we believed about its absence, and a
            # failure to find it.
            entries.pop(lowered + _SUFFIX.pack(rdtype, _NODATA | flag))
            entries.pop(lowered + _SUFFIX.pack(0, _NXDOMAIN | flag))
            self._forget_failure(lowered, flag, rdtype, now)
        return True

    def _aged_ttl(self, expires: float, now: float, stale: bool) -> int | None:
        """The TTL to hand out: what is left, or the stale-answer TTL for expired data if asked."""
        ttl = max(0, int(expires - now))
        if ttl > 0:
            return ttl
        return self._config.stale_answer_ttl if stale else None

    def get_rrset(
        self, name: dns.name.Name, rdtype: int, *, min_rank: Rank = Rank.GLUE, stale: bool = False
    ) -> dns.rrset.RRset | None:
        """The RRset with its TTL reduced by the time it has spent here, if trusted enough.

        With `stale`, an expired RRset still inside the serve-stale window is returned too.
        """
        held = self._held_rrset(name, rdtype, min_rank, stale)
        return None if held is None else _rrset(held[1], rdtype, held[0][4:], held[2])

    def get_signed(
        self, name: dns.name.Name, rdtype: int, *, min_rank: Rank = Rank.GLUE, stale: bool = False
    ) -> Signed | None:
        """`get_rrset` with the RRset's RRSIGs (same aged TTL) and its security status."""
        held = self._held_rrset(name, rdtype, min_rank, stale)
        return None if held is None else _signed(held[0], held[1], rdtype, held[2])

    def _held_rrset(
        self, name: dns.name.Name, rdtype: int, min_rank: Rank, stale: bool
    ) -> tuple[_Stored, dns.name.Name, int] | None:
        """The stored RRset entry, its owner and its aged TTL, if it is trusted enough and still
        fresh (or, with `stale`, inside the serve-stale window)."""
        text, flag, lowered = self._spell(name)
        now = self._clock()
        stored = self._entries.get(lowered + _SUFFIX.pack(rdtype, _RRSET | flag), now)
        if stored is None or stored[1] & _RANK_MASK < min_rank:
            return None
        ttl = self._aged_ttl(stored[0], now, stale)
        if ttl is None:
            return None
        return stored, _owner(stored[2], name, text, lowered, flag), ttl

    def answer(
        self, name: dns.name.Name, qtype: int, *, stale: bool = False
    ) -> Signed | CachedNegative | None:
        """What the cache answers a client for (name, qtype), in the order RFC 1034 5.3.3
        looks: the RRset of that type, else a CNAME (a `Signed` of another type than `qtype`:
        an alias to follow), else an NXDOMAIN or NODATA; answer data only (rank
        NONAUTH_ANSWER and up). `get_signed` for `qtype` and for CNAME, then `get_negative`,
        in one: every miss asks all three, for a name spelt once, on one reading of the clock.

        With `stale` (RFC 8767), a fresh denial comes first, then each of the three, expired
        or not: what is known now beats what was known before.
        """
        text, flag, lowered = self._spell(name)
        now = self._clock()
        if stale:
            negative = self._denial(lowered, flag, qtype, now, False)
            if negative is not None:
                return negative
        get = self._entries.get
        for rdtype in (qtype,) if qtype == dns.rdatatype.CNAME else (qtype, dns.rdatatype.CNAME):
            stored = get(lowered + _SUFFIX.pack(rdtype, _RRSET | flag), now)
            if stored is not None and stored[1] & _RANK_MASK >= Rank.NONAUTH_ANSWER:
                ttl = self._aged_ttl(stored[0], now, stale)
                if ttl is not None:
                    owner = _owner(stored[2], name, text, lowered, flag)
                    return _signed(stored, owner, rdtype, ttl)
        return self._denial(lowered, flag, qtype, now, stale)

    def set_security(
        self,
        name: dns.name.Name,
        rdtype: int | None,
        security: Security,
        *,
        negative: bool = False,
        ttl: int | None = None,
    ) -> bool:
        """Record the validator's verdict on a cached RRset (or, with `negative`, on the cached
        NXDOMAIN (rdtype None) or NODATA); False if nothing fresh is held there. `ttl` caps
        what is left of the entry's life (RFC 4035 5.3.3: no longer than the RRSIG allows).

        A BOGUS entry is kept no longer than `dnssec.bogus_ttl` from now (Unbound's
        val-bogus-ttl): a broken zone is validated again a minute later, not a day later.
        """
        _text, flag, lowered = self._spell(name)
        now = self._clock()
        if negative:
            kind = _NXDOMAIN if rdtype is None else _NODATA
            key = lowered + _SUFFIX.pack(rdtype or 0, kind | flag)
        else:
            assert rdtype is not None
            key = lowered + _SUFFIX.pack(rdtype, _RRSET | flag)
        stored = self._entries.get(key, now)
        if stored is None or stored[0] <= now:
            return False
        expires = stored[0]
        if security is Security.BOGUS:
            expires = min(expires, now + self._bogus_ttl)
        if ttl is not None:
            expires = min(expires, now + ttl)
        if negative:
            packed = (stored[1] >> _SECURITY_BITS) << _SECURITY_BITS | security
        else:
            cleared = stored[1] & ~(_SECURITY_MASK << _RANK_BITS)
            packed = cleared | security << _RANK_BITS
        self._entries.put(key, (expires, packed, *stored[2:]), now)
        return True

    def put_bogus(self, name: dns.name.Name, rdtype: int, reason: ServfailReason) -> None:
        """Remember why (name, rdtype) failed validation, for `dnssec.bogus_ttl` seconds: the
        EDE of the next SERVFAIL. Unlike `put_failure` it does not stop a resolution, since a
        client with CD=1 is still answered with the (bogus) data."""
        _text, flag, lowered = self._spell(name)
        now = self._clock()
        key = lowered + _SUFFIX.pack(rdtype, _BOGUS | flag)
        self._entries.put(key, (now + self._bogus_ttl, reason), now)

    def get_bogus(self, name: dns.name.Name, rdtype: int) -> ServfailReason | None:
        """Why (name, rdtype) failed validation, if less than `dnssec.bogus_ttl` ago."""
        _text, flag, lowered = self._spell(name)
        now = self._clock()
        stored = self._entries.get(lowered + _SUFFIX.pack(rdtype, _BOGUS | flag), now)
        return stored[1] if stored is not None and stored[0] > now else None

    def forget(self, name: dns.name.Name, rdtype: int) -> None:
        """Forget what one response put here for (name, rdtype): the RRset, the NODATA, the
        NXDOMAIN of the name and the bogus reason. Used when that response validates bogus
        and the question is asked again of another server (`core/retry.py`)."""
        _text, flag, lowered = self._spell(name)
        for suffix in (
            _SUFFIX.pack(rdtype, _RRSET | flag),
            _SUFFIX.pack(rdtype, _NODATA | flag),
            _SUFFIX.pack(rdtype, _BOGUS | flag),
            _SUFFIX.pack(0, _NXDOMAIN | flag),
        ):
            self._entries.pop(lowered + suffix)

    def rank_of(self, name: dns.name.Name, rdtype: int) -> Rank | None:
        _text, flag, lowered = self._spell(name)
        now = self._clock()
        stored = self._entries.get(lowered + _SUFFIX.pack(rdtype, _RRSET | flag), now)
        return _RANKS[stored[1] & _RANK_MASK] if stored is not None and stored[0] > now else None

    def put_negative(
        self,
        name: dns.name.Name,
        rdtype: int | None,
        rcode: dns.rcode.Rcode,
        soa: dns.rrset.RRset,
        *,
        proof: tuple[dns.rrset.RRset, ...] = (),
        security: Security = Security.INDETERMINATE,
        expires: float | None = None,
    ) -> bool:
        """Cache NXDOMAIN (rdtype None) or NODATA for min(SOA TTL, SOA MINIMUM) (RFC 2308),
        with the NSEC/NSEC3 records and RRSIGs that prove it (`CachedNegative.proof`);
        `expires` as for `put_rrset` (aged elsewhere: kept, cut by the ceiling only)."""
        text, flag, lowered = self._spell(name)
        now = self._clock()
        if expires is None:
            ttl = self.negative_ttl(soa)
            if ttl <= 0:
                return False
        else:
            expires = min(expires, now + self._max_negative_ttl)
            ttl = max(1, int(expires - now))
        if rdtype is None:
            key = lowered + _SUFFIX.pack(0, _NXDOMAIN | flag)
        else:
            key = lowered + _SUFFIX.pack(rdtype, _NODATA | flag)
        owner = None if text == lowered else name
        deadline = now + ttl if expires is None else expires
        packed = ttl << _SECURITY_BITS | security
        held_proof = tuple(rrset.copy() for rrset in proof) if proof else None
        stored = (deadline, packed, rcode, owner, held_proof, *self._shared_soa(soa))
        self._entries.put(key, stored, now)
        if rdtype is not None:
            self._forget_failure(lowered, flag, rdtype, now)
        return True

    def _shared_soa(self, soa: dns.rrset.RRset) -> tuple[dns.name.Name, dict[Any, None]]:
        """The owner and dict of rdatas to store for `soa`: those stored last for its zone if
        it is the same SOA, letter case included. Every negative answer carries its zone's SOA,
        and a flood of random names in one zone (water torture) is all negative answers:
        shared, the SOA costs two references per entry instead of about 900 bytes."""
        held = self._soas.get(soa.name.labels)
        same = held is not None and len(soa.items) == len(held[1]) == 1
        if held is not None and same and _same_soa(next(iter(held[1])), _first(soa)):
            return held
        if len(self._soas) >= _SOA_ZONES:
            self._soas.clear()
        parts = (soa.name, soa.items.copy())
        self._soas[soa.name.labels] = parts
        return parts

    def get_negative(
        self, name: dns.name.Name, rdtype: int, *, stale: bool = False
    ) -> CachedNegative | None:
        """A cached NXDOMAIN for the name, else a cached NODATA for (name, rdtype); SOA TTL aged."""
        _text, flag, lowered = self._spell(name)
        return self._denial(lowered, flag, rdtype, self._clock(), stale)

    def _denial(
        self, lowered: bytes, flag: int, rdtype: int, now: float, stale: bool
    ) -> CachedNegative | None:
        """`get_negative` for a name already spelt, at `now`."""
        for suffix in (_SUFFIX.pack(0, _NXDOMAIN | flag), _SUFFIX.pack(rdtype, _NODATA | flag)):
            stored = self._entries.get(lowered + suffix, now)
            if stored is not None:
                ttl = self._aged_ttl(stored[0], now, stale)
                if ttl is not None:
                    return _negative(stored, ttl)
        return None

    def put_failure(
        self, name: dns.name.Name, rdtype: int, reason: ServfailReason, ttl: int | None = None
    ) -> bool:
        """Remember that resolving (name, rdtype) failed, for `ttl` or `cache.failure_ttl` s.

        RFC 9520 section 3.2: without this, every client asking for a name in a dead zone
        costs the resolver (and the dead zone's neighbours) a full resolution and its timeouts.
        The TTL is bounded as the RFC says (1 s to 5 minutes). True if it was stored.

        A failure is never an answer: it only spares the authorities, and the clients, the same
        doomed resolution for a few seconds. It is not kept for serve-stale, and not dumped.
        """
        ttl = self._config.failure_ttl if ttl is None else max(1, min(ttl, 300))
        _text, flag, lowered = self._spell(name)
        now = self._clock()
        key = lowered + _SUFFIX.pack(rdtype, _FAILURE | flag)
        self._entries.put(key, (now + ttl, reason), now)
        self._failing_until = max(self._failing_until, now + ttl)
        return True

    def get_failure(self, name: dns.name.Name, rdtype: int) -> ServfailReason | None:
        """Why resolving (name, rdtype) failed, if that was less than its failure TTL ago."""
        now = self._clock()
        if now >= self._failing_until:
            return None  # every failure ever put has expired
        _text, flag, lowered = self._spell(name)
        stored = self._entries.get(lowered + _SUFFIX.pack(rdtype, _FAILURE | flag), now)
        return stored[1] if stored is not None and stored[0] > now else None

    def _forget_failure(self, lowered: bytes, flag: int, rdtype: int, now: float) -> None:
        """Remove the failure of (name, rdtype), spelt: an answer or a denial supersedes it."""
        if now < self._failing_until:  # else any failure held has expired: nothing to remove
            self._entries.pop(lowered + _SUFFIX.pack(rdtype, _FAILURE | flag))

    def _fresh(self, name: dns.name.Name, rdtype: int) -> dns.rrset.RRset | None:
        """The RRset with its stored TTL (not aged) if unexpired: for the iterator's own use on
        the miss path, where only names and addresses matter."""
        text, flag, lowered = self._spell(name)
        now = self._clock()
        stored = self._entries.get(lowered + _SUFFIX.pack(rdtype, _RRSET | flag), now)
        if stored is None or stored[0] <= now:
            return None
        owner = _owner(stored[2], name, text, lowered, flag)
        return _rrset(owner, rdtype, stored[4:], stored[1] >> _TTL_SHIFT)

    def closest_delegation(self, name: dns.name.Name) -> dns.rrset.RRset | None:
        """The NS set of the deepest cached zone cut at or above `name` (root excluded)."""
        text, flag, lowered = self._spell(name)
        if flag or not name.is_absolute():
            while name != dns.name.root:
                ns = self._fresh(name, dns.rdatatype.NS)
                if ns is not None:
                    return ns
                name = name.parent()
            return None
        # Each ancestor's key is a tail of the name's own text: no Name is built for a miss.
        labels = name.labels
        now = self._clock()
        start = 0
        for index in range(len(labels) - 1):
            stored = self._entries.get(lowered[start:] + _NS_SUFFIX, now)
            if stored is not None and stored[0] > now:
                zone = name if index == 0 else dns.name.Name(labels[index:])
                owner = _owner(stored[2], zone, text[start:], lowered[start:], flag)
                return _rrset(owner, dns.rdatatype.NS, stored[4:], stored[1] >> _TTL_SHIFT)
            start += len(labels[index]) + 1
        return None

    def closest_cut(self, name: dns.name.Name) -> ZoneCut | None:
        """The deepest cached zone cut at or above `name` (root excluded), with the addresses of
        its name servers: `closest_delegation` and `addresses` for each NS name, in one.

        Every cold name starts from a cut, most often one of a few, and making it (an RRset,
        a name and two lookups per name server, a name hashed per address list) costs more
        than checking that nothing it was made of has changed. So each cut is remembered with
        the entries it was made of, and given again while each of those keys still holds the
        very same entry, fresh: the same lookups are made, so the LRU order and the expiry of
        every entry are as they would be without the memo.
        """
        text, flag, lowered = self._spell(name)
        if flag or not name.is_absolute():
            ns = self.closest_delegation(name)
            return None if ns is None else self._make_cut(ns.name, ns, b"", None)
        # As in `closest_delegation`: each ancestor's key is a tail of the name's own text.
        labels = name.labels
        entries = self._entries
        now = self._clock()
        start = 0
        for index in range(len(labels) - 1):
            key = lowered[start:] + _NS_SUFFIX
            stored = entries.get(key, now)
            if stored is not None and stored[0] > now:
                memo = self._cuts.get(key)
                if memo is not None and memo[0] is stored and self._held(memo[1], memo[2], now):
                    return memo[3]
                zone = name if index == 0 else dns.name.Name(labels[index:])
                owner = _owner(stored[2], zone, text[start:], lowered[start:], flag)
                ns = _rrset(owner, dns.rdatatype.NS, stored[4:], stored[1] >> _TTL_SHIFT)
                return self._make_cut(owner, ns, key, stored)
            start += len(labels[index]) + 1
        return None

    def _make_cut(
        self, zone: dns.name.Name, ns: dns.rrset.RRset, key: bytes, stored: _Stored | None
    ) -> ZoneCut:
        """The cut of the NS set `ns`, remembered under `key` if `stored` is its entry."""
        entries = self._entries
        now = self._clock()
        keys: list[bytes] = []
        held: list[_Stored | None] = []
        found: dict[dns.name.Name, tuple[str, ...]] = {}
        names = tuple(rdata.target for rdata in ns)
        for ns_name in names:  # as `addresses` reads them
            _text, flag, lowered = self._spell(ns_name)
            addresses: list[str] = []
            for rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA):
                address_key = lowered + _SUFFIX.pack(rdtype, _RRSET | flag)
                entry = entries.get(address_key, now)
                if entry is not None and entry[0] <= now:
                    entry = None
                keys.append(address_key)
                held.append(entry)
                if entry is None:
                    continue
                if type(entry[4]) is dict:
                    addresses.extend(rdata.address for rdata in entry[4])
                else:
                    addresses.extend(entry[4:])
            found[ns_name] = tuple(addresses)
        cut = ZoneCut(zone, names, found)
        if stored is not None:
            if len(self._cuts) >= _CUT_ZONES:
                self._cuts.clear()
            self._cuts[key] = (stored, tuple(keys), tuple(held), cut)
        return cut

    def _held(self, keys: tuple[bytes, ...], held: tuple[_Stored | None, ...], now: float) -> bool:
        """Whether each key still holds the entry it held (None: nothing fresh)."""
        get = self._entries.get
        for key, was in zip(keys, held, strict=True):
            entry = get(key, now)
            if entry is None or entry[0] <= now:  # nothing fresh
                if was is not None:
                    return False
            elif entry is not was:
                return False
        return True

    def addresses(self, name: dns.name.Name) -> list[str]:
        """Every cached IPv4 and IPv6 address of `name`, whatever its rank (glue included)."""
        _text, flag, lowered = self._spell(name)
        now = self._clock()
        found: list[str] = []
        for rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA):
            stored = self._entries.get(lowered + _SUFFIX.pack(rdtype, _RRSET | flag), now)
            if stored is None or stored[0] <= now:
                continue
            if type(stored[4]) is dict:
                found.extend(rdata.address for rdata in stored[4])
            else:
                found.extend(stored[4:])
        return found

    def flush(self, name: dns.name.Name | None = None, *, subtree: bool = False) -> int:
        """Forget everything (no name), one name, or a name and everything below it."""
        self._entries.expire(self._clock())
        if name is None:
            doomed = [key for key, _stored in self._entries.items()]
        else:
            _text, flag, lowered = self._spell(name)
            doomed = [
                key
                for key, _stored in self._entries.items()
                if _matches(key, name, lowered, flag, subtree)
            ]
        for key in doomed:
            self._entries.pop(key)
        return len(doomed)

    def export(self) -> Iterator[tuple[dns.name.Name, int | None, CachedRRset | CachedNegative]]:
        """(owner, type, entry) of every unexpired entry, for `resolver cache dump`.

        Negative entries come after every RRset, each part from the least recently used on:
        restoring in this order gives back the same cache, LRU order included, since an RRset
        put after a negative entry for its name would replace it. Failures are left out: they
        last seconds, less than a restart takes.
        """
        now = self._clock()
        held = [
            (key, stored)
            for key, stored in self._entries.items()
            if stored[0] > now and key[-1] & _KIND < _FAILURE
        ]
        for key, stored in held:
            if key[-1] & _KIND == _RRSET:
                owner = _key_owner(key) if stored[2] is None else stored[2]
                number = int.from_bytes(key[-3:-1], "big")
                rrset = _rrset(owner, number, stored[4:], stored[1] >> _TTL_SHIFT)
                rank = _RANKS[stored[1] & _RANK_MASK]
                security = _SECURITIES[stored[1] >> _RANK_BITS & _SECURITY_MASK]
                sigs = None
                if stored[3] is not None:
                    sigs = _rrset(owner, dns.rdatatype.RRSIG, (stored[3],), rrset.ttl)
                yield owner, rrset.rdtype, _Entry(rrset, stored[0], rank, security, sigs)
        for key, stored in held:
            kind = key[-1] & _KIND
            if kind in (_NODATA, _NXDOMAIN):
                owner = _key_owner(key) if stored[3] is None else stored[3]
                rdtype: int | None = None
                if kind == _NODATA:
                    rdtype = dns.rdatatype.RdataType.make(int.from_bytes(key[-3:-1], "big"))
                yield owner, rdtype, _negative(stored, stored[1] >> _SECURITY_BITS)

    def census(self) -> dict[str, int]:
        """Entries held per kind, for stats: answers (`rrsets`), NS sets and glue learnt from
        referrals (`delegations`), `negative` answers, expired entries still kept for
        serve-stale (`stale`), and remembered resolution `failures`. The five add up to
        len(self). O(entries), so for reporting only; it moves no entry in the LRU order."""
        counts = {"rrsets": 0, "delegations": 0, "negative": 0, "stale": 0, "failures": 0}
        now = self._clock()
        self._entries.expire(now)
        for key, stored in self._entries.items():
            kind = key[-1] & _KIND
            if kind >= _FAILURE:
                counts["failures"] += 1
            elif stored[0] <= now:
                counts["stale"] += 1
            elif kind != _RRSET:
                counts["negative"] += 1
            elif stored[1] & _RANK_MASK <= Rank.REFERRAL:
                counts["delegations"] += 1
            else:
                counts["rrsets"] += 1
        return counts


def _negative(stored: _Stored, ttl: int) -> CachedNegative:
    """The negative entry of a stored tuple, its SOA (and proof) with `ttl`."""
    soa = _rrset(stored[5], dns.rdatatype.SOA, stored[6:], ttl)
    security = _SECURITIES[stored[1] & _SECURITY_MASK]
    if stored[4] is None:
        return CachedNegative(stored[2], soa, stored[0], security)
    proof = tuple(_aged(rrset, ttl) for rrset in stored[4])
    return CachedNegative(stored[2], soa, stored[0], security, proof)


def _signed(stored: _Stored, owner: dns.name.Name, rdtype: int, ttl: int) -> Signed:
    """The RRset of a stored tuple, its RRSIGs and security status, with `ttl`."""
    rrset = _rrset(owner, rdtype, stored[4:], ttl)
    sigs = None if stored[3] is None else _rrset(owner, dns.rdatatype.RRSIG, (stored[3],), ttl)
    return Signed(rrset, sigs, _SECURITIES[stored[1] >> _RANK_BITS & _SECURITY_MASK])


def _aged(rrset: dns.rrset.RRset, ttl: int) -> dns.rrset.RRset:
    """A copy of a stored RRset with the TTL handed out: the stored one stays untouched."""
    copy = rrset.copy()
    copy.ttl = min(rrset.ttl, ttl)
    return copy


def _first(rrset: dns.rrset.RRset) -> Any:
    """`rrset[0]`, without dnspython's slice-or-index `__getitem__`."""
    return next(iter(rrset.items))


def _same_soa(one: Any, other: Any) -> bool:
    """Whether two SOA rdatas are the same, compared field by field (dnspython compares
    rdatas by rendering both, tens of microseconds); the same object when the engine's
    reader gave the record again (`engine/wireparse.py`)."""
    return one is other or (
        one.serial == other.serial
        and one.minimum == other.minimum
        and one.mname.labels == other.mname.labels
        and one.rname.labels == other.rname.labels
        and (one.refresh, one.retry, one.expire) == (other.refresh, other.retry, other.expire)
        and (one.rdclass, one.rdtype) == (other.rdclass, other.rdtype)
    )


def _owner(
    stored: dns.name.Name | None, asked: dns.name.Name, text: bytes, lowered: bytes, flag: int
) -> dns.name.Name:
    """The owner of a stored entry found under the name `asked` (spelt `text`)."""
    if stored is not None:
        return stored  # stored in its own letter case
    if text == lowered:
        return asked  # the owner is the key's name, which is `asked` exactly
    return _name_of(lowered, flag)


def _matches(key: bytes, name: dns.name.Name, lowered: bytes, flag: int, subtree: bool) -> bool:
    """Whether the entry under `key` belongs to `name` (`lowered`), or with `subtree` below it."""
    owner, escaped = key[:-3], key[-1] & _ESCAPED
    if escaped == flag and owner == lowered:
        return True  # a name has one spelling
    if not subtree:
        return False
    if not escaped and not flag:
        # No label holds a dot in this spelling, so a dot marks a label boundary. The root (b"")
        # is the parent of every absolute name, whose text ends in a dot, and of no other.
        return owner.endswith(b"." + lowered)
    return _key_owner(key).is_subdomain(name)


def _key_owner(key: bytes) -> dns.name.Name:
    """The owner name that `key` was made for, in lower case."""
    return _name_of(key[:-3], key[-1] & _ESCAPED)
