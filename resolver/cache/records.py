"""The record cache: RRsets and negative answers with absolute expiry times and trust ranks.

Expiry is stored as an absolute wall-clock time (from the injected clock), as Unbound does, so a
cached entry keeps its meaning in a dump or across a restart, and tests run hours of TTL with a
fake clock. cachetools' TLRUCache bounds the number of entries (least recently used goes first)
and drops each entry when its own TTL runs out.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import IntEnum

import dns.name
import dns.rcode
import dns.rdatatype
import dns.rrset
from cachetools import Cache, TLRUCache

from resolver.config import CacheConfig
from resolver.core.reasons import ServfailReason

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


#: An RRset entry as `export` hands it out (its records, absolute expiry time and rank).
CachedRRset = _Entry


@dataclass(frozen=True, slots=True)
class CachedNegative:
    """An NXDOMAIN (rdtype None: the whole name) or NODATA (for one rdtype), with its SOA."""

    rcode: dns.rcode.Rcode
    soa: dns.rrset.RRset
    expires: float


@dataclass(frozen=True, slots=True)
class CachedFailure:
    """A resolution of (name, type) that failed (RFC 9520 section 3.2), and why.

    Never an answer: it only spares the authorities, and the clients, the same doomed
    resolution for a few seconds. It is not kept for serve-stale, and not dumped.
    """

    reason: ServfailReason
    expires: float


# The kind tags keep positive, negative and failure entries for the same name apart in one
# cache, so a single size bound (and a single LRU order) covers everything the resolver
# remembers.
_RRSET = 0
_NEGATIVE = 1
_FAILURE = 2
_Key = tuple[int, dns.name.Name, int | None]


def with_ttl(rrset: dns.rrset.RRset, ttl: int) -> dns.rrset.RRset:
    """A copy with another TTL (the original may be shared with the cache or a message)."""
    if rrset.ttl == ttl:
        return rrset
    copy = rrset.copy()
    copy.ttl = ttl
    return copy


class RecordCache:
    """RRsets keyed by (name, type), and negative answers, bounded in entries."""

    def __init__(self, config: CacheConfig, clock: Clock) -> None:
        self._config = config
        self._clock = clock
        # Expired entries are kept for the serve-stale window, then dropped by the TLRU cache.
        # Failures are never served stale, so they go when they expire.
        keep_stale = config.max_stale if config.serve_stale else 0
        self._entries: TLRUCache[_Key, _Entry | CachedNegative | CachedFailure] = TLRUCache(
            maxsize=config.max_entries,
            ttu=lambda key, entry, _now: entry.expires + (0 if key[0] == _FAILURE else keep_stale),
            timer=clock,
        )
        # Whether a DNAME was ever stored: until then no miss needs to look for one above the
        # name (most resolvers never meet one), which saves a lookup per label on every miss.
        self.holds_dnames = False

    def __len__(self) -> int:
        return len(self._entries)

    def clamp_ttl(self, ttl: int, *, delegation: bool = False) -> int:
        """The TTL the cache would keep for a record: cache-min-ttl, cache-max-ttl, the NS cap."""
        ceiling = self._config.max_delegation_ttl if delegation else self._config.max_ttl
        return max(self._config.min_ttl, min(ttl, ceiling))

    def negative_ttl(self, soa: dns.rrset.RRset) -> int:
        """min(SOA TTL, SOA MINIMUM) (RFC 2308 section 5), within the configured bounds."""
        ttl = min(soa.ttl, soa[0].minimum, self._config.max_negative_ttl)
        return max(self._config.min_ttl, ttl)

    def remaining(self, expires: float) -> int:
        return max(0, int(expires - self._clock()))

    def put_rrset(self, rrset: dns.rrset.RRset, rank: Rank, *, delegation: bool = False) -> bool:
        """Store an RRset unless a more trusted copy is still held; True if it was stored."""
        key = (_RRSET, rrset.name, rrset.rdtype)
        now = self._clock()
        held = self._entries.get(key)
        if isinstance(held, _Entry) and held.rank > rank and held.expires > now:
            return False
        ttl = self.clamp_ttl(rrset.ttl, delegation=delegation)
        if ttl <= 0:
            return False
        self._entries[key] = _Entry(with_ttl(rrset, ttl), now + ttl, rank)
        if rrset.rdtype == dns.rdatatype.DNAME:
            self.holds_dnames = True
        if rank >= Rank.NONAUTH_ANSWER:
            # Fresh authoritative data supersedes what we believed about its absence, and a
            # failure to find it.
            self._entries.pop((_NEGATIVE, rrset.name, rrset.rdtype), None)
            self._entries.pop((_NEGATIVE, rrset.name, None), None)
            self._entries.pop((_FAILURE, rrset.name, rrset.rdtype), None)
        return True

    def _aged_ttl(self, expires: float, stale: bool) -> int | None:
        """The TTL to hand out: what is left, or the stale-answer TTL for expired data if asked."""
        ttl = self.remaining(expires)
        if ttl > 0:
            return ttl
        return self._config.stale_answer_ttl if stale else None

    def get_rrset(
        self, name: dns.name.Name, rdtype: int, *, min_rank: Rank = Rank.GLUE, stale: bool = False
    ) -> dns.rrset.RRset | None:
        """The RRset with its TTL reduced by the time it has spent here, if trusted enough.

        With `stale`, an expired RRset still inside the serve-stale window is returned too.
        """
        entry = self._entries.get((_RRSET, name, rdtype))
        if not isinstance(entry, _Entry) or entry.rank < min_rank:
            return None
        ttl = self._aged_ttl(entry.expires, stale)
        return None if ttl is None else with_ttl(entry.rrset, ttl)

    def rank_of(self, name: dns.name.Name, rdtype: int) -> Rank | None:
        entry = self._entries.get((_RRSET, name, rdtype))
        return entry.rank if isinstance(entry, _Entry) and entry.expires > self._clock() else None

    def put_negative(
        self, name: dns.name.Name, rdtype: int | None, rcode: dns.rcode.Rcode, soa: dns.rrset.RRset
    ) -> bool:
        """Cache NXDOMAIN (rdtype None) or NODATA for min(SOA TTL, SOA MINIMUM) (RFC 2308)."""
        ttl = self.negative_ttl(soa)
        if ttl <= 0:
            return False
        entry = CachedNegative(rcode, with_ttl(soa, ttl), self._clock() + ttl)
        self._entries[(_NEGATIVE, name, rdtype)] = entry
        if rdtype is not None:
            self._entries.pop((_FAILURE, name, rdtype), None)
        return True

    def get_negative(
        self, name: dns.name.Name, rdtype: int, *, stale: bool = False
    ) -> CachedNegative | None:
        """A cached NXDOMAIN for the name, else a cached NODATA for (name, rdtype); SOA TTL aged."""
        for key in ((_NEGATIVE, name, None), (_NEGATIVE, name, rdtype)):
            entry = self._entries.get(key)
            if isinstance(entry, CachedNegative):
                ttl = self._aged_ttl(entry.expires, stale)
                if ttl is not None:
                    return CachedNegative(entry.rcode, with_ttl(entry.soa, ttl), entry.expires)
        return None

    def put_failure(
        self, name: dns.name.Name, rdtype: int, reason: ServfailReason, ttl: int | None = None
    ) -> bool:
        """Remember that resolving (name, rdtype) failed, for `ttl` or `cache.failure_ttl` s.

        RFC 9520 section 3.2: without this, every client asking for a name in a dead zone
        costs the resolver (and the dead zone's neighbours) a full resolution and its timeouts.
        The TTL is bounded as the RFC says (1 s to 5 minutes). True if it was stored.
        """
        ttl = self._config.failure_ttl if ttl is None else max(1, min(ttl, 300))
        self._entries[(_FAILURE, name, rdtype)] = CachedFailure(reason, self._clock() + ttl)
        return True

    def get_failure(self, name: dns.name.Name, rdtype: int) -> ServfailReason | None:
        """Why resolving (name, rdtype) failed, if that was less than its failure TTL ago."""
        entry = self._entries.get((_FAILURE, name, rdtype))
        if isinstance(entry, CachedFailure) and entry.expires > self._clock():
            return entry.reason
        return None

    def _fresh(self, name: dns.name.Name, rdtype: int) -> dns.rrset.RRset | None:
        """The stored RRset itself (TTL not aged, not copied) if unexpired: for the iterator's
        own use on the miss path, where only names and addresses matter."""
        entry = self._entries.get((_RRSET, name, rdtype))
        if isinstance(entry, _Entry) and entry.expires > self._clock():
            return entry.rrset
        return None

    def closest_delegation(self, name: dns.name.Name) -> dns.rrset.RRset | None:
        """The NS set of the deepest cached zone cut at or above `name` (root excluded)."""
        while name != dns.name.root:
            ns = self._fresh(name, dns.rdatatype.NS)
            if ns is not None:
                return ns
            name = name.parent()
        return None

    def addresses(self, name: dns.name.Name) -> list[str]:
        """Every cached IPv4 and IPv6 address of `name`, whatever its rank (glue included)."""
        found: list[str] = []
        for rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA):
            rrset = self._fresh(name, rdtype)
            if rrset is not None:
                found.extend(rdata.address for rdata in rrset)
        return found

    def flush(self, name: dns.name.Name | None = None, *, subtree: bool = False) -> int:
        """Forget everything (no name), one name, or a name and everything below it."""
        doomed = [key for key in self._entries if _matches(key, name, subtree)]
        for key in doomed:
            self._entries.pop(key, None)
        return len(doomed)

    def keys(self) -> Iterator[_Key]:
        return iter(list(self._entries))

    def _held(self) -> Iterator[tuple[_Key, CachedRRset | CachedNegative | CachedFailure]]:
        """Every entry held, stale ones included, without touching the LRU order or expiring.

        Reading through `TLRUCache.__getitem__` would move each entry to the recent end, so a
        dump or a count would change what the cache evicts next; the base `Cache` accessors
        read the stored values as they are.
        """
        for key in list(Cache.__iter__(self._entries)):
            yield key, Cache.__getitem__(self._entries, key)

    def export(self) -> Iterator[tuple[dns.name.Name, int | None, CachedRRset | CachedNegative]]:
        """(owner, type, entry) of every unexpired entry, for `resolver cache dump`.

        Negative entries come after every RRset: restoring in this order gives back the same
        cache, since an RRset put after a negative entry for its name would replace it.
        Failures are left out: they last seconds, less than a restart takes.
        """
        now = self._clock()
        held = [
            (key, entry)
            for key, entry in self._held()
            if entry.expires > now and not isinstance(entry, CachedFailure)
        ]
        for kind in (_RRSET, _NEGATIVE):
            for key, entry in held:
                if key[0] == kind:
                    yield key[1], key[2], entry

    def census(self) -> dict[str, int]:
        """Entries held per kind, for stats: answers (`rrsets`), NS sets and glue learnt from
        referrals (`delegations`), `negative` answers, expired entries still kept for
        serve-stale (`stale`), and remembered resolution `failures` (expired ones not yet
        dropped included). The five add up to len(self). O(entries), so for reporting only."""
        counts = {"rrsets": 0, "delegations": 0, "negative": 0, "stale": 0, "failures": 0}
        now = self._clock()
        for _key, entry in self._held():
            if isinstance(entry, CachedFailure):
                counts["failures"] += 1
            elif entry.expires <= now:
                counts["stale"] += 1
            elif isinstance(entry, CachedNegative):
                counts["negative"] += 1
            elif entry.rank <= Rank.REFERRAL:
                counts["delegations"] += 1
            else:
                counts["rrsets"] += 1
        return counts


def _matches(key: _Key, name: dns.name.Name | None, subtree: bool) -> bool:
    if name is None:
        return True
    owner = key[1]
    return owner.is_subdomain(name) if subtree else owner == name
