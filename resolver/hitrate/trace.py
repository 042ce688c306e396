"""The replayable trace: client queries in time order, each with what its answer said.

Every reader (pcap, dnstap, the query log) turns its input into `Query` values and counts what it
could not use in `Notes`; `Trace` puts them in time order and settles each question's lifetime.

Lifetimes: a capture sees the TTLs the resolver sent to its clients, and an answer served from
the resolver's cache carries what was left of its TTL, not the TTL the authority gave. A replayed
cache that fetches the answer anew gets the authority's TTL, so each question (name, type, and
whether the answer was positive, negative or a failure) is given the LARGEST TTL seen for it in
the whole trace: the TTL of a fresh fetch whenever one was captured.
"""

from __future__ import annotations

import collections
from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from typing import NamedTuple

from resolver.hitrate.wire import NOERROR, NXDOMAIN, SERVFAIL


class Query(NamedTuple):
    """One client query and its response.

    `ttl`: the response's caching lifetime as sent (see `wire.Summary`); None: not cacheable.
    `latency`: seconds from query to response, when the input says (else None).
    """

    time: float  # seconds since the epoch
    client: str
    name: str  # lower case, absolute
    qtype: int
    rcode: int
    ttl: int | None
    latency: float | None = None
    server: str | None = None  # the address the query went to, when the input says (captures)


class Outcome:
    """How an answer is cached: which TTL bound applies, and whether it is stored at all."""

    POSITIVE = 0  # records: cache.max_ttl and cache.min_ttl
    NEGATIVE = 1  # NXDOMAIN or NODATA with an SOA: cache.max_negative_ttl and cache.min_ttl
    FAILURE = 2  # SERVFAIL: remembered for cache.failure_ttl
    UNCACHED = 3  # nothing says how long (REFUSED, no SOA, ...)


def outcome(rcode: int, ttl: int | None) -> int:
    if rcode == SERVFAIL:
        return Outcome.FAILURE
    if ttl is None or rcode not in (NOERROR, NXDOMAIN):
        return Outcome.UNCACHED
    return Outcome.NEGATIVE if rcode == NXDOMAIN else Outcome.POSITIVE


@dataclass
class Notes:
    """What the readers could not use, counted, and what the operator should know."""

    malformed: int = 0  # packets, frames or lines that did not parse
    not_dns: int = 0  # packets that are not DNS on port 53 (other ports, ICMP, ARP...)
    unanswered: int = 0  # queries whose response was never seen (not replayed)
    unasked: int = 0  # responses whose query was never seen (replayed at the response's time)
    tcp_gaps: int = 0  # TCP segments skipped: out of order or after a lost segment
    fragments: int = 0  # IP fragments (DNS over fragmented UDP is not reassembled)
    iterative: int = 0  # RD=0 messages: a resolver's iterative queries, not a client's
    upstream: int = 0  # RD=1 queries the resolver itself sent (to a forwarder): not replayed
    retransmitted: int = 0  # a query seen again (same client, port, ID, question) before its answer
    duplicates: int = 0  # a response seen again (a packet captured twice, or sent twice)
    truncated: int = 0  # TC=1 responses: the client asks again over TCP, and that one counts
    other_dnstap: int = 0  # dnstap messages that are not CLIENT_QUERY/CLIENT_RESPONSE
    messages: list[str] = field(default_factory=list)  # e.g. a file cut short

    def add(self, other: Notes) -> None:
        for item in fields(self):
            setattr(self, item.name, getattr(self, item.name) + getattr(other, item.name))


@dataclass
class Trace:
    """Queries sorted by time, with the lifetime of each answer settled (see the docstring).

    `questions[k]`: the number of query k's cache entry: its question (name and type), or for
    an NXDOMAIN its name alone; `slots[k]`: the number of its (name, type, outcome kind),
    whose `kinds[s]` and `lifetimes[s]` (the largest TTL seen, before any TTL cap) say how its
    answer is cached.
    """

    queries: list[Query]
    notes: Notes
    questions: list[int] = field(default_factory=list)
    slots: list[int] = field(default_factory=list)
    kinds: list[int] = field(default_factory=list)  # per slot: an `Outcome`
    lifetimes: list[int] = field(default_factory=list)  # per slot

    @classmethod
    def build(cls, queries: Iterable[Query], notes: Notes | None = None) -> Trace:
        ordered = sorted(queries, key=lambda query: query.time)
        trace = cls(ordered, notes or Notes())
        questions: dict[tuple[str, int], int] = {}
        slots: dict[tuple[str, int, int], int] = {}
        for query in ordered:
            kind = outcome(query.rcode, query.ttl)
            # An NXDOMAIN says the name has no data of any type (RFC 2308 section 5), and the
            # record cache keeps it under the name alone: one entry for every type.
            qtype = -1 if query.rcode == NXDOMAIN else query.qtype
            question = questions.setdefault((query.name, qtype), len(questions))
            slot = slots.get((query.name, query.qtype, kind))
            if slot is None:
                slot = slots[query.name, query.qtype, kind] = len(trace.kinds)
                trace.kinds.append(kind)
                trace.lifetimes.append(0)
            trace.questions.append(question)
            trace.slots.append(slot)
            if query.ttl is not None and query.ttl > trace.lifetimes[slot]:
                trace.lifetimes[slot] = query.ttl
        return trace

    def __len__(self) -> int:
        return len(self.queries)

    @property
    def start(self) -> float:
        return self.queries[0].time if self.queries else 0.0

    @property
    def duration(self) -> float:
        return self.queries[-1].time - self.queries[0].time if self.queries else 0.0

    def distinct_names(self) -> int:
        return len({query.name for query in self.queries})

    def distinct_questions(self) -> int:
        """Distinct cache entries asked for (a question, or a name that does not exist): what a
        cache holding everything would need."""
        return max(self.questions, default=-1) + 1

    def busiest(self, count: int) -> list[tuple[str, int]]:
        return collections.Counter(query.name for query in self.queries).most_common(count)
