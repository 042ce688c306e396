"""The cache dump format: readable text, one record per line, restorable with TTLs still running.

```
; resolver cache dump ...
$VERSION 1
$TIME 1795000904.250 ; 2026-11-17T04:21:44Z
answer www.example.test. 287 IN A 192.0.2.1
referral example.test. 172787 IN NS ns1.example.test.
glue ns1.example.test. 172787 IN A 127.53.2.1
nxdomain nope.example.test. example.test. 3587 IN SOA ns1.example.test. hostmaster... 300
nodata www.other.test. AAAA other.test. 287 IN SOA ns1.other.test. hostmaster... 300
```

Each record line is a zone-file record (owner, TTL, class, type, data) after one word that says
what the cache knows about it: the trust rank of its RRset (`answer`, `authority`, `referral`,
`glue`; RFC 2181 5.4.1), which a restore must keep, since glue must never become an answer. A
negative answer (RFC 2308) is `nxdomain NAME` or `nodata NAME TYPE` followed by the SOA record
that proves it. Lines starting with `;` are comments.

TTLs are what was left when the dump was written, and `$TIME` says when that was (Unix time), so
a restore takes off the time that passed since: the cache stores absolute expiry times, and a
warm restart must not make old data young again. Entries that expired meanwhile are dropped.
Expired entries kept only for serve-stale are not dumped at all.

`$VERSION` numbers the format. Version 1 is every field the cache holds today: the trust rank,
the remaining TTL, the records, and for a negative answer its kind and SOA. A field added later
(DNSSEC's validation status) makes version 2: a persisted file of another version is ignored
whole (`server/persist.py`), and a reader of version 2 must take a version-1 entry as not
validated, never as secure: a load never makes data more trusted than it was (ranks go through
the cache's own `put_*` rules, which never let dumped glue replace an answer). A dump without a
`$VERSION` line (written before it existed) is version 1.

This module is pure text and cache operations; reading and writing files is the caller's job.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

import dns.exception
import dns.name
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from resolver.cache.records import CachedNegative, CachedRRset, Rank, RecordCache, with_ttl

_RANKS = {rank.name.lower(): rank for rank in Rank}
_NXDOMAIN = "nxdomain"
_NODATA = "nodata"
_TIME = "$TIME"
_VERSION = "$VERSION"
#: The format `format_dump` writes and `parse_lines` reads.
VERSION = 1

HEADER = """\
; resolver cache dump; `resolver cache load FILE` restores it (docs/operations.md).
; KIND OWNER TTL CLASS TYPE DATA, one record per line. KIND is the trust rank of the record set:
; answer, authority, referral (NS sets from referrals) or glue (their addresses).
; `nxdomain NAME SOA-RECORD` and `nodata NAME TYPE SOA-RECORD` are cached negative answers.
; TTLs are the seconds that were left at $TIME (Unix time); a load takes off the time since.
"""


class DumpError(Exception):
    """A dump file that cannot be read; the message names the line."""


@dataclass(frozen=True)
class DumpedRRset:
    """An RRset with its trust rank; its TTL is what was left when the dump was written."""

    rrset: dns.rrset.RRset
    rank: Rank

    @property
    def ttl(self) -> int:
        return self.rrset.ttl


@dataclass(frozen=True)
class DumpedNegative:
    """NXDOMAIN for `name` (rdtype None) or NODATA for (`name`, `rdtype`), and its SOA."""

    name: dns.name.Name
    rdtype: int | None
    soa: dns.rrset.RRset

    @property
    def ttl(self) -> int:
        return self.soa.ttl


DumpedEntry = DumpedRRset | DumpedNegative


@dataclass
class Dump:
    """A parsed dump: when it was written and what it holds."""

    written_at: float
    entries: list[DumpedEntry] = field(default_factory=list)
    #: The `$VERSION` line's number; None if the dump has none (then it is version 1).
    version: int | None = VERSION
    #: Whether the reader stopped at its `max_entries` before the end.
    cut_short: bool = False


Held = tuple[dns.name.Name, int | None, CachedRRset | CachedNegative]


def snapshot(held: Iterable[Held], now: float) -> Dump:
    """A dump of `held` (`RecordCache.export()`) at `now`, with remaining TTLs in whole seconds
    (rounded down). Separate from `export` so that this copying can run outside the thread
    that owns the cache, from the list of references `export` returned."""
    dump = Dump(now)
    for name, rdtype, entry in held:
        ttl = int(entry.expires - now)
        if ttl <= 0:
            continue
        if isinstance(entry, CachedRRset):
            dump.entries.append(DumpedRRset(with_ttl(entry.rrset, ttl), entry.rank))
        else:
            dump.entries.append(DumpedNegative(name, rdtype, with_ttl(entry.soa, ttl)))
    return dump


def format_dump(dump: Dump) -> Iterator[str]:
    """The text of `dump`, line by line (each ending in a newline)."""
    yield HEADER
    yield f"{_VERSION} {VERSION}\n"
    stamp = datetime.datetime.fromtimestamp(dump.written_at, datetime.UTC).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )
    yield f"{_TIME} {dump.written_at:.3f} ; {stamp}\n"
    for entry in dump.entries:
        if isinstance(entry, DumpedRRset):
            kind = entry.rank.name.lower()
            for line in entry.rrset.to_text().splitlines():
                yield f"{kind} {line}\n"
        elif entry.rdtype is None:
            yield f"{_NXDOMAIN} {entry.name} {entry.soa.to_text()}\n"
        else:
            yield f"{_NODATA} {entry.name} {dns.rdatatype.RdataType.to_text(entry.rdtype)} "
            yield f"{entry.soa.to_text()}\n"


def _record(text: str) -> dns.rrset.RRset:
    """One `OWNER TTL CLASS TYPE DATA` record as an RRset of one."""
    fields = text.split(None, 4)
    if len(fields) < 5:
        raise ValueError("expected OWNER TTL CLASS TYPE DATA")
    owner, ttl, rdclass_text, rdtype_text, data = fields
    if not ttl.isdigit():
        raise ValueError(f"{ttl!r} is not a TTL")
    rdclass = dns.rdataclass.from_text(rdclass_text)
    rdtype = dns.rdatatype.from_text(rdtype_text)
    rdata = dns.rdata.from_text(rdclass, rdtype, data, origin=dns.name.root, relativize=False)
    rrset = dns.rrset.RRset(dns.name.from_text(owner), rdclass, rdtype)
    rrset.add(rdata, int(ttl))
    return rrset


def _negative(kind: str, rest: str) -> DumpedNegative:
    if kind == _NXDOMAIN:
        name, _, soa_text = rest.partition(" ")
        rdtype = None
    else:
        name, rdtype_text, soa_text = [*rest.split(None, 2), "", ""][:3]
        rdtype = dns.rdatatype.from_text(rdtype_text)
    soa = _record(soa_text.strip())
    if soa.rdtype != dns.rdatatype.SOA:
        raise ValueError(f"a {kind} line needs an SOA record, not {soa.rdtype.name}")
    return DumpedNegative(dns.name.from_text(name), rdtype, soa)


def parse_dump(text: str) -> Dump:
    """The entries of a dump file; DumpError names the first line that makes no sense."""
    return parse_lines(text.splitlines())


def parse_lines(lines: Iterable[str], max_entries: int | None = None) -> Dump:
    """The entries of a dump, line by line; DumpError names the first line that makes no sense
    (or a `$VERSION` other than `VERSION`).

    Lines with the same kind, owner, class and type are one RRset (its TTL is the smallest).
    With `max_entries`, reading stops once that many entries are held, or after eight times as
    many record lines (an RRset of one record per line must not grow without bound either), so
    a huge file costs no more memory than a full cache.
    """
    written_at: float | None = None
    version: int | None = None
    rrsets: dict[tuple[str, dns.name.Name, int, int], DumpedRRset] = {}
    negatives: list[DumpedEntry] = []
    records = 0
    cut_short = False
    for number, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line or line.startswith(";"):
            continue
        if max_entries is not None and (
            len(rrsets) + len(negatives) >= max_entries or records >= 8 * max_entries
        ):
            cut_short = True
            break
        kind, _, rest = line.partition(" ")
        try:
            if kind == _VERSION:
                version = int(rest.partition(";")[0])
                if version != VERSION:
                    raise ValueError(f"format version {version}; this resolver reads {VERSION}")
            elif kind == _TIME:
                written_at = float(rest.partition(";")[0])
            elif kind in _RANKS:
                records += 1
                record = _record(rest.strip())
                key = (kind, record.name, record.rdclass, record.rdtype)
                held = rrsets.get(key)
                if held is None:
                    rrsets[key] = DumpedRRset(record, _RANKS[kind])
                else:
                    held.rrset.update(record)  # dnspython keeps the smaller TTL
            elif kind in (_NXDOMAIN, _NODATA):
                records += 1
                negatives.append(_negative(kind, rest.strip()))
            else:
                known = ", ".join([*_RANKS, _NXDOMAIN, _NODATA])
                raise ValueError(f"unknown kind {kind!r} (expected {known}, {_TIME} or {_VERSION})")
        except (dns.exception.DNSException, ValueError) as error:
            raise DumpError(f"line {number}: {error or type(error).__name__}") from None
    if written_at is None:
        raise DumpError(f"no {_TIME} line: the dump does not say when its TTLs were measured")
    return Dump(written_at, [*rrsets.values(), *negatives], version, cut_short)


@dataclass
class Restored:
    """What a load did: entries stored, dropped as expired, or kept out by a more trusted copy."""

    loaded: int = 0
    expired: int = 0
    kept: int = 0


def restore(
    cache: RecordCache, entries: Iterable[DumpedEntry], elapsed: float, into: Restored
) -> None:
    """Put dumped entries into `cache`, `elapsed` seconds after the dump was written.

    They go through the cache's own `put_*` methods, so the configured TTL bounds and the trust
    rules apply as they would to fresh data (a held answer is not replaced by dumped glue).
    """
    elapsed = max(0.0, elapsed)  # a clock that went backwards must not lengthen TTLs
    now = cache.now()
    for entry in entries:
        ttl = int(entry.ttl - elapsed)
        if ttl <= 0:
            into.expired += 1
            continue
        # An absolute expiry: `cache.min_ttl` floored these TTLs when they were first cached,
        # and must not lengthen them again at every restart.
        if isinstance(entry, DumpedRRset):
            stored = cache.put_rrset(
                with_ttl(entry.rrset, ttl),
                entry.rank,
                delegation=entry.rank <= Rank.REFERRAL,
                expires=now + ttl,
            )
        else:
            rcode = dns.rcode.NXDOMAIN if entry.rdtype is None else dns.rcode.NOERROR
            stored = cache.put_negative(
                entry.name, entry.rdtype, rcode, with_ttl(entry.soa, ttl), expires=now + ttl
            )
        if stored:
            into.loaded += 1
        else:
            into.kept += 1


def merge(dumps: Sequence[Dump]) -> Dump:
    """One dump holding the best copy of each entry of several (one per worker process).

    TTLs are brought to the latest dump's time; for the same RRset, the higher rank wins, then
    the longer TTL, which is what one cache would have kept.
    """
    if not dumps:
        raise ValueError("nothing to merge")
    written_at = max(dump.written_at for dump in dumps)
    best: dict[tuple[object, ...], DumpedEntry] = {}
    for dump in dumps:
        age = int(written_at - dump.written_at)
        for entry in dump.entries:
            ttl = entry.ttl - age
            if ttl <= 0:
                continue
            key: tuple[object, ...]
            if isinstance(entry, DumpedRRset):
                entry = DumpedRRset(with_ttl(entry.rrset, ttl), entry.rank)
                key = ("rrset", entry.rrset.name, entry.rrset.rdclass, entry.rrset.rdtype)
                held = best.get(key)
                if isinstance(held, DumpedRRset) and (held.rank, held.ttl) >= (entry.rank, ttl):
                    continue
            else:
                entry = DumpedNegative(entry.name, entry.rdtype, with_ttl(entry.soa, ttl))
                key = ("negative", entry.name, entry.rdtype)
                held = best.get(key)
                if held is not None and held.ttl >= ttl:
                    continue
            best[key] = entry
    rrsets = [entry for entry in best.values() if isinstance(entry, DumpedRRset)]
    negatives = [entry for entry in best.values() if isinstance(entry, DumpedNegative)]
    return Dump(written_at, [*rrsets, *negatives])


def record_count(dump: Dump) -> int:
    """Lines of records the dump has (an RRset of three addresses is three)."""
    return sum(len(entry.rrset) if isinstance(entry, DumpedRRset) else 1 for entry in dump.entries)
