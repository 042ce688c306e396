"""The cache dump format: readable text, one record per line, restorable with TTLs still running.

```
; resolver cache dump ...
$VERSION 2
$TIME 1795000904.250 ; 2026-11-17T04:21:44Z
answer www.example.test. 287 IN A 192.0.2.1
rrsig www.example.test. 287 IN RRSIG A 13 3 300 20270101000000 20261101000000 4242 ...
referral example.test. 172787 IN NS ns1.example.test.
glue ns1.example.test. 172787 IN A 127.53.2.1
nxdomain nope.example.test. example.test. 3587 IN SOA ns1.example.test. hostmaster... 300
proof example.test. 3587 IN RRSIG SOA 13 2 3600 20270101000000 20261101000000 4242 ...
proof mail.example.test. 3587 IN NSEC www.example.test. A RRSIG NSEC
proof mail.example.test. 3587 IN RRSIG NSEC 13 3 3600 20270101000000 20261101000000 4242 ...
nodata www.other.test. AAAA other.test. 287 IN SOA ns1.other.test. hostmaster... 300
```

Each record line is a zone-file record (owner, TTL, class, type, data) after one word that says
what the cache knows about it: the trust rank of its RRset (`answer`, `authority`, `referral`,
`glue`; RFC 2181 5.4.1), which a restore must keep, since glue must never become an answer. A
negative answer (RFC 2308) is `nxdomain NAME` or `nodata NAME TYPE` followed by the SOA record
that proves it. Lines starting with `;` are comments.

DNSSEC (version 2): the RRSIGs of an RRset are `rrsig` lines right after it, and the records
that prove a denial (NSEC or NSEC3 RRsets, their RRSIGs and the SOA's RRSIG, RFC 4035 3.1.3)
are `proof` lines right after the negative answer; a word of their own, so that no reader (nor
`grep answer`) takes a signature for an answer. A load attaches them to the entry they follow.
A signature or proof line that cannot be read, or does not belong to that entry (another owner,
another covered type, a proof record that is not NSEC, NSEC3 or RRSIG or is outside the SOA's
zone), is dropped and counted (`Dump.dropped`), and so is the entry it follows: without all its
signatures a signed entry would be judged bogus, while a missing one is simply asked again.

No validation status is written, and none is read: every loaded entry is INDETERMINATE, and is
validated again when it is first used to answer a client (a load never turns unvalidated data
into secure data: whoever can edit the file cannot make an answer secure).
A line whose first word is a status (`secure ...`) is skipped and counted. Bogus entries are not
dumped at all: they are kept for `dnssec.bogus_ttl` only, to be asked again.

TTLs are what was left when the dump was written, and `$TIME` says when that was (Unix time), so
a restore takes off the time that passed since: the cache stores absolute expiry times, and a
warm restart must not make old data young again. Entries that expired meanwhile are dropped.
Expired entries kept only for serve-stale are not dumped at all. Signatures and proof records
age with their data.

`$VERSION` numbers the format. Version 2 is every field the cache holds: the trust rank, the
remaining TTL, the records, for a negative answer its kind and SOA, and the RRSIGs and denial
proofs. A file of another version (version 1 had no signatures, so its signed entries would turn
bogus) is refused whole: `server/persist.py` ignores it with one log line. Ranks go through the
cache's own `put_*` rules, which never let dumped glue replace an answer. A dump without a
`$VERSION` line (hand-written) is read, but `server/persist.py` ignores such a file.

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

from resolver.cache.proofs import in_proof, signs
from resolver.cache.records import CachedNegative, CachedRRset, Rank, RecordCache, with_ttl
from resolver.core.security import Security

_RANKS = {rank.name.lower(): rank for rank in Rank}
_NXDOMAIN = "nxdomain"
_NODATA = "nodata"
_RRSIG = "rrsig"
_PROOF = "proof"
#: First words that would claim a validation status: never believed (module docstring).
_STATUSES = frozenset(security.name.lower() for security in Security)
_TIME = "$TIME"
_VERSION = "$VERSION"
#: The format `format_dump` writes and `parse_lines` reads.
VERSION = 2

HEADER = """\
; resolver cache dump; `resolver cache load FILE` restores it (docs/operations.md).
; KIND OWNER TTL CLASS TYPE DATA, one record per line. KIND is the trust rank of the record set:
; answer, authority, referral (NS sets from referrals) or glue (their addresses).
; `nxdomain NAME SOA-RECORD` and `nodata NAME TYPE SOA-RECORD` are cached negative answers.
; `rrsig` lines are the RRSIGs of the record set above them, `proof` lines the NSEC/NSEC3
; records and RRSIGs that prove the negative answer above them (DNSSEC). No validation status
; is kept: a load validates everything again.
; TTLs are the seconds that were left at $TIME (Unix time); a load takes off the time since.
"""


class DumpError(Exception):
    """A dump file that cannot be read; the message names the line."""


@dataclass(frozen=True)
class DumpedRRset:
    """An RRset with its trust rank and RRSIGs; its TTL is what was left at the dump."""

    rrset: dns.rrset.RRset
    rank: Rank
    #: The RRSIG RRset covering `rrset`'s type (same owner), or None (unsigned).
    signatures: dns.rrset.RRset | None = None

    @property
    def ttl(self) -> int:
        return self.rrset.ttl


@dataclass(frozen=True)
class DumpedNegative:
    """NXDOMAIN for `name` (rdtype None) or NODATA for (`name`, `rdtype`), its SOA and the
    DNSSEC records that prove it (`CachedNegative.proof`)."""

    name: dns.name.Name
    rdtype: int | None
    soa: dns.rrset.RRset
    proof: tuple[dns.rrset.RRset, ...] = ()

    @property
    def ttl(self) -> int:
        return self.soa.ttl


DumpedEntry = DumpedRRset | DumpedNegative


@dataclass
class Dump:
    """A parsed dump: when it was written and what it holds."""

    written_at: float
    entries: list[DumpedEntry] = field(default_factory=list)
    #: The `$VERSION` line's number; None if the dump has none (hand-written).
    version: int | None = VERSION
    #: Whether the reader stopped at its `max_entries` before the end.
    cut_short: bool = False
    #: Lines left out: signature or proof lines that did not belong (and the entries they
    #: followed), and lines claiming a validation status.
    dropped: int = 0


Held = tuple[dns.name.Name, int | None, CachedRRset | CachedNegative]


def snapshot(held: Iterable[Held], now: float) -> Dump:
    """A dump of `held` (`RecordCache.export()`) at `now`, with remaining TTLs in whole seconds
    (rounded down); signatures and proofs aged alike. Bogus entries are left out. Separate from
    `export` so that this copying can run outside the thread that owns the cache, from the list
    of references `export` returned."""
    dump = Dump(now)
    for name, rdtype, entry in held:
        ttl = int(entry.expires - now)
        if ttl <= 0 or entry.security is Security.BOGUS:
            continue
        if isinstance(entry, CachedRRset):
            sigs = None if entry.signatures is None else with_ttl(entry.signatures, ttl)
            dump.entries.append(DumpedRRset(with_ttl(entry.rrset, ttl), entry.rank, sigs))
        else:
            proof = _aged_proof(entry.proof, ttl)
            dump.entries.append(DumpedNegative(name, rdtype, with_ttl(entry.soa, ttl), proof))
    return dump


def _aged_proof(proof: Iterable[dns.rrset.RRset], ttl: int) -> tuple[dns.rrset.RRset, ...]:
    """Proof records with TTLs no longer than `ttl`, what their negative answer has left."""
    return tuple(with_ttl(rrset, min(rrset.ttl, ttl)) for rrset in proof)


def _lines_of(kind: str, rrset: dns.rrset.RRset) -> Iterator[str]:
    for line in rrset.to_text().splitlines():
        yield f"{kind} {line}\n"


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
            yield from _lines_of(entry.rank.name.lower(), entry.rrset)
            if entry.signatures is not None:
                yield from _lines_of(_RRSIG, entry.signatures)
            continue
        if entry.rdtype is None:
            yield f"{_NXDOMAIN} {entry.name} {entry.soa.to_text()}\n"
        else:
            yield f"{_NODATA} {entry.name} {dns.rdatatype.RdataType.to_text(entry.rdtype)} "
            yield f"{entry.soa.to_text()}\n"
        for rrset in entry.proof:
            yield from _lines_of(_PROOF, rrset)


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
    rrset = dns.rrset.RRset(dns.name.from_text(owner), rdclass, rdtype, rdata.covers())
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


class _Reader:
    """The state of `parse_lines`: entries so far, and which one `rrsig`/`proof` lines attach to.

    RRsets are keyed by (kind, owner, class, type), since one RRset may be written as several
    lines (its TTL is the smallest). Signatures and proofs are gathered apart and joined to their
    entries at the end; an entry whose signature or proof lines did not all fit is left out.
    """

    def __init__(self) -> None:
        self.rrsets: dict[tuple[str, dns.name.Name, int, int], DumpedRRset] = {}
        self.signatures: dict[tuple[str, dns.name.Name, int, int], dns.rrset.RRset] = {}
        self.negatives: list[DumpedNegative] = []
        self.proofs: dict[int, dict[tuple[dns.name.Name, int, int], dns.rrset.RRset]] = {}
        self.spoiled: set[object] = set()
        self.last: tuple[str, dns.name.Name, int, int] | int | None = None
        self.dropped = 0

    def __len__(self) -> int:
        return len(self.rrsets) + len(self.negatives)

    def rrset(self, kind: str, record: dns.rrset.RRset) -> None:
        key = (kind, record.name, record.rdclass, record.rdtype)
        held = self.rrsets.get(key)
        if held is None:
            self.rrsets[key] = DumpedRRset(record, _RANKS[kind])
        else:
            held.rrset.update(record)  # dnspython keeps the smaller TTL
        self.last = key

    def negative(self, entry: DumpedNegative) -> None:
        self.last = len(self.negatives)
        self.negatives.append(entry)

    def dnssec(self, kind: str, text: str) -> None:
        """An `rrsig` or `proof` line: attached to the entry before it, or dropped with it."""
        last = self.last
        try:
            record = _record(text)
        except (dns.exception.DNSException, ValueError):
            record = None
        if (
            kind == _RRSIG
            and isinstance(last, tuple)
            and record is not None
            and signs(record, self.rrsets[last].rrset)
        ):
            held = self.signatures.setdefault(last, record)
            if held is not record:
                held.update(record)
            return
        if (
            kind == _PROOF
            and isinstance(last, int)
            and record is not None
            and in_proof(record, self.negatives[last].soa)
        ):
            proof = self.proofs.setdefault(last, {})
            key = (record.name, record.rdtype, record.covers)
            held = proof.setdefault(key, record)
            if held is not record:
                held.update(record)
            return
        self.dropped += 1
        if last is not None and last not in self.spoiled:
            self.spoiled.add(last)
            self.dropped += 1

    def entries(self) -> list[DumpedEntry]:
        entries: list[DumpedEntry] = [
            DumpedRRset(entry.rrset, entry.rank, self.signatures.get(key))
            for key, entry in self.rrsets.items()
            if key not in self.spoiled
        ]
        for index, entry in enumerate(self.negatives):
            if index not in self.spoiled:
                proof = tuple(self.proofs.get(index, {}).values())
                entries.append(DumpedNegative(entry.name, entry.rdtype, entry.soa, proof))
        return entries


def parse_dump(text: str) -> Dump:
    """The entries of a dump file; DumpError names the first line that makes no sense."""
    return parse_lines(text.splitlines())


def parse_lines(lines: Iterable[str], max_entries: int | None = None) -> Dump:
    """The entries of a dump, line by line; DumpError names the first line that makes no sense
    (or a `$VERSION` other than `VERSION`).

    Lines with the same kind, owner, class and type are one RRset (its TTL is the smallest).
    `rrsig` and `proof` lines belong to the entry before them; one that does not is dropped
    with that entry (module docstring), never an error: the rest of the cache is still good.
    With `max_entries`, reading stops once that many entries are held, or after eight times as
    many record lines (an RRset of one record per line must not grow without bound either), so
    a huge file costs no more memory than a full cache.
    """
    written_at: float | None = None
    version: int | None = None
    reader = _Reader()
    records = 0
    cut_short = False
    for number, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line or line.startswith(";"):
            continue
        if max_entries is not None and (len(reader) >= max_entries or records >= 8 * max_entries):
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
                reader.rrset(kind, _record(rest.strip()))
            elif kind in (_NXDOMAIN, _NODATA):
                records += 1
                reader.negative(_negative(kind, rest.strip()))
            elif kind in (_RRSIG, _PROOF):
                records += 1
                reader.dnssec(kind, rest.strip())
            elif kind.lower() in _STATUSES:
                reader.dropped += 1  # a status is never read from a file: validated again
            else:
                known = ", ".join([*_RANKS, _NXDOMAIN, _NODATA, _RRSIG, _PROOF])
                raise ValueError(f"unknown kind {kind!r} (expected {known}, {_TIME} or {_VERSION})")
        except (dns.exception.DNSException, ValueError) as error:
            raise DumpError(f"line {number}: {error or type(error).__name__}") from None
    if written_at is None:
        raise DumpError(f"no {_TIME} line: the dump does not say when its TTLs were measured")
    return Dump(written_at, reader.entries(), version, cut_short, reader.dropped)


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
    Signatures and proofs go with their entries, and every entry is INDETERMINATE: the
    validator checks it again when it is first used (module docstring).
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
                signatures=entry.signatures,
                security=Security.INDETERMINATE,
                expires=now + ttl,
            )
        else:
            proof = tuple(
                with_ttl(rrset, max(1, min(ttl, int(rrset.ttl - elapsed)))) for rrset in entry.proof
            )
            rcode = dns.rcode.NXDOMAIN if entry.rdtype is None else dns.rcode.NOERROR
            stored = cache.put_negative(
                entry.name,
                entry.rdtype,
                rcode,
                with_ttl(entry.soa, ttl),
                proof=proof,
                security=Security.INDETERMINATE,
                expires=now + ttl,
            )
        if stored:
            into.loaded += 1
        else:
            into.kept += 1


def merge(dumps: Sequence[Dump]) -> Dump:
    """One dump holding the best copy of each entry of several (one per worker process).

    TTLs are brought to the latest dump's time; for the same RRset, the higher rank wins, then
    the longer TTL, which is what one cache would have kept. Signatures and proofs go with
    their entries.
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
                sigs = None if entry.signatures is None else with_ttl(entry.signatures, ttl)
                entry = DumpedRRset(with_ttl(entry.rrset, ttl), entry.rank, sigs)
                key = ("rrset", entry.rrset.name, entry.rrset.rdclass, entry.rrset.rdtype)
                held = best.get(key)
                if isinstance(held, DumpedRRset) and (held.rank, held.ttl) >= (entry.rank, ttl):
                    continue
            else:
                proof = tuple(
                    with_ttl(rrset, max(1, min(ttl, rrset.ttl - age))) for rrset in entry.proof
                )
                entry = DumpedNegative(entry.name, entry.rdtype, with_ttl(entry.soa, ttl), proof)
                key = ("negative", entry.name, entry.rdtype)
                held = best.get(key)
                if held is not None and held.ttl >= ttl:
                    continue
            best[key] = entry
    rrsets = [entry for entry in best.values() if isinstance(entry, DumpedRRset)]
    negatives = [entry for entry in best.values() if isinstance(entry, DumpedNegative)]
    return Dump(written_at, [*rrsets, *negatives])


def record_count(dump: Dump) -> int:
    """Lines of records the dump has (an RRset of three addresses is three), not counting the
    `rrsig` and `proof` lines."""
    return sum(len(entry.rrset) if isinstance(entry, DumpedRRset) else 1 for entry in dump.entries)
