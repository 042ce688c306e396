"""Validated NSEC ranges per zone, for aggressive use of the validated cache (RFC 8198).

Each entry is one NSEC record (owner -> next, its type bitmap) whose signature the validator
verified as part of a SECURE denial, with its RRSIGs and the time it stops being usable:
min(NSEC TTL, SOA TTL, SOA MINIMUM) from when it was learnt (RFC 9077) and never past its
RRSIGs' expiration or original TTL (RFC 4035 5.3.3). Each zone also keeps its SOA (and the
SOA's RRSIGs), the authority section of every answer synthesised from its ranges.

Lookups are by canonical order (RFC 4034 6.1): per zone a sorted list of canonical keys (the
owner's labels in lower case, most significant first, as a tuple: tuples of bytes compare
exactly as RFC 4034 orders names) and `bisect` find the NSEC whose owner is the greatest at or
before a name, which is the only one that can cover or match it. Bounded: one entry per
(zone, owner), least recently used out; clocked by the caller like the other caches.

Only data: which range proves what is `core/aggressive.py`'s question, answered with the
validator's own proof functions (`dnssec/denial.py`).
"""

from __future__ import annotations

import bisect
from collections import OrderedDict
from dataclasses import dataclass, field

import dns.name
import dns.rrset

#: A name in RFC 4034 6.1 canonical order: its labels lower-cased, most significant first.
CanonicalKey = tuple[bytes, ...]


def canonical_key(name: dns.name.Name) -> CanonicalKey:
    """The key that sorts `name` where RFC 4034 section 6.1 puts it."""
    return tuple(label.lower() for label in reversed(name.labels))


@dataclass(frozen=True, slots=True)
class NsecRange:
    """One validated NSEC RRset (one record) with its RRSIGs, usable until `expires`."""

    nsec: dns.rrset.RRset
    signatures: dns.rrset.RRset
    expires: float


@dataclass(frozen=True, slots=True)
class ZoneSoa:
    """A zone's SOA and its RRSIGs (None if they were not kept), usable until `expires`."""

    soa: dns.rrset.RRset
    signatures: dns.rrset.RRset | None
    expires: float


@dataclass
class _Zone:
    soa: ZoneSoa
    keys: list[CanonicalKey] = field(default_factory=list)
    ranges: dict[CanonicalKey, NsecRange] = field(default_factory=dict)


class NsecIndex:
    """zone -> its validated NSEC ranges in canonical order, at most `maxsize` ranges in all."""

    def __init__(self, maxsize: int) -> None:
        self._maxsize = maxsize
        self._zones: dict[CanonicalKey, _Zone] = {}
        # (zone key, owner key) of every range, least recently used first.
        self._order: OrderedDict[tuple[CanonicalKey, CanonicalKey], None] = OrderedDict()

    def __len__(self) -> int:
        return len(self._order)

    def put(
        self, zone: dns.name.Name, soa: ZoneSoa, nsec: dns.rrset.RRset, rng: NsecRange, now: float
    ) -> None:
        """Remember the range `rng` (whose RRset is `nsec`) of `zone`, and the zone's SOA."""
        if rng.expires <= now or soa.expires <= now:
            return
        zone_key = canonical_key(zone)
        held = self._zones.get(zone_key)
        if held is None:
            held = self._zones[zone_key] = _Zone(soa)
        elif soa.expires >= held.soa.expires or held.soa.expires <= now:
            held.soa = soa
        owner = canonical_key(nsec.name)
        if owner not in held.ranges:
            bisect.insort(held.keys, owner)
        held.ranges[owner] = rng
        self._order[(zone_key, owner)] = None
        self._order.move_to_end((zone_key, owner))
        while len(self._order) > self._maxsize:
            (old_zone, old_owner), _ = self._order.popitem(last=False)
            self._drop(old_zone, old_owner)

    def zone_of(self, name: dns.name.Name) -> dns.name.Name | None:
        """The deepest zone at or above `name` that holds ranges (one dict lookup a label)."""
        if not self._zones:
            return None
        key = canonical_key(name)
        for length in range(len(key), 0, -1):
            if key[:length] in self._zones:
                return dns.name.Name(reversed(key[:length]))
        return None

    def soa(self, zone: dns.name.Name, now: float) -> ZoneSoa | None:
        held = self._zones.get(canonical_key(zone))
        if held is None or held.soa.expires <= now:
            return None
        return held.soa

    def at_or_before(
        self, zone: dns.name.Name, name: dns.name.Name, now: float
    ) -> NsecRange | None:
        """The unexpired range of `zone` whose owner is the greatest at or before `name` in
        canonical order: the only NSEC that can match or cover `name`."""
        zone_key = canonical_key(zone)
        held = self._zones.get(zone_key)
        if held is None:
            return None
        index = bisect.bisect_right(held.keys, canonical_key(name)) - 1
        if index < 0:
            return None
        owner = held.keys[index]
        rng = held.ranges[owner]
        if rng.expires <= now:
            self._order.pop((zone_key, owner), None)
            self._drop(zone_key, owner)
            return None
        self._order.move_to_end((zone_key, owner))
        return rng

    def flush(self, name: dns.name.Name | None = None) -> int:
        """Forget every range, or those of zones at or below `name` and those owned at or
        below it (`resolver cache flush`); how many went."""
        doomed = [
            pair
            for pair in self._order
            if name is None or _below(pair[0], name) or _below(pair[1], name)
        ]
        for zone_key, owner in doomed:
            del self._order[(zone_key, owner)]
            self._drop(zone_key, owner)
        return len(doomed)

    def _drop(self, zone_key: CanonicalKey, owner: CanonicalKey) -> None:
        held = self._zones.get(zone_key)
        if held is None or owner not in held.ranges:
            return
        del held.ranges[owner]
        index = bisect.bisect_left(held.keys, owner)
        del held.keys[index]
        if not held.ranges:
            del self._zones[zone_key]


def _below(key: CanonicalKey, name: dns.name.Name) -> bool:
    top = canonical_key(name)
    return key[: len(top)] == top
