"""Queries matched with their responses, as a capture or a dnstap log shows them.

A query and its response belong together if they share the client's address and port, the
message ID and the question (name, type, class; the name compared without case, so 0x20
randomisation does not matter): the resolver's own rule for matching a reply (RFC 5452 section
9.1) seen from the other side.

What real captures hold besides clean pairs, and what is done with it:

- a response with no query seen (the capture began after the query left): still a query its
  client made, kept at the response's time (`unasked`);
- a query never answered: counted (`unanswered`), not replayed (nothing says what its answer
  was, and the denominator is the queries the resolver answered). Queries wait at most
  `PENDING_SECONDS` for their answer (no client waits longer), so the table stays small;
- the same query again (same client, port, ID and question) before its answer: a stub
  retransmitting with the same ID, or the one packet captured twice (`tcpdump -i any` sees a
  packet on a VLAN or bridge interface and on the physical one). One question: the first time
  counts (`retransmitted`);
- the same response again within `DUPLICATE_SECONDS`: captured twice, or sent twice to a
  retransmitted query; it does not make a second query (`duplicates`). A retry with a NEW ID or
  port is a second query, as the resolver saw it;
- a TC=1 response: not the answer (`truncated`); the client asks again over TCP, and that
  query counts, so the question counts once;
- the resolver's own queries to a forwarder (RD=1, so the RD=0 rule of `pcap` misses them):
  taken out at the end, see `Pairer.finish`.
"""

from __future__ import annotations

import ipaddress
import math
from collections import Counter, OrderedDict
from collections.abc import Iterable

from resolver.hitrate.trace import Notes, Query
from resolver.hitrate.wire import Malformed, summarise

#: Queries waiting for a response, at most: a capture of a resolver that drops queries must not
#: fill memory with them. The oldest go first (counted as unanswered).
MAX_PENDING = 100_000

#: A query unanswered this long never will be (stubs give up after a few seconds).
PENDING_SECONDS = 30.0

#: A second copy of a response this soon after the first is the same response.
DUPLICATE_SECONDS = 5.0

#: Timestamps outside these bounds (1990 to 2200) are corrupt: the packet is counted as
#: malformed rather than stretching the trace over centuries.
EARLIEST, LATEST = 631_152_000.0, 7_258_118_400.0

_Key = tuple[str, int, int, str, int, int]


def canonical(address: str) -> str:
    """An address as the readers write it (`::1`, not `0::1`); unchanged if not an address."""
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        return address


class Pairer:
    """Feed it every DNS message of a capture, in capture order; `finish()` gives the queries.

    `servers`: the resolver's own addresses (`--server`), when the operator names them: only
    queries to them are kept. Without them, `finish` works out which queries were the
    resolver's own (see there).
    """

    def __init__(self, notes: Notes, servers: Iterable[str] = ()) -> None:
        self.notes = notes
        self.queries: list[Query] = []
        self.servers = frozenset(canonical(address) for address in servers)
        self._pending: OrderedDict[_Key, float] = OrderedDict()
        self._answered: OrderedDict[_Key, float] = OrderedDict()

    def message(
        self,
        when: float,
        client: str,
        port: int,
        wire: bytes,
        asked_at: float | None = None,
        server: str | None = None,
    ) -> None:
        """One message between `client`:`port` and the resolver, in either direction.

        `asked_at`: for a response, when its query arrived, if the input says (dnstap does).
        `server`: the other end's address, if the input says (captures do).
        """
        if not EARLIEST <= when <= LATEST or not (
            asked_at is None or EARLIEST <= asked_at <= LATEST
        ):
            self.notes.malformed += 1
            return
        try:
            summary = summarise(wire)
        except Malformed:
            self.notes.malformed += 1
            return
        self._expire(when)
        key = (client, port, summary.id, summary.name, summary.qtype, summary.qclass)
        if not summary.response:
            if key in self._pending:
                self.notes.retransmitted += 1  # the first copy keeps its time
                return
            self._pending[key] = when
            if len(self._pending) > MAX_PENDING:
                self._pending.popitem(last=False)
                self.notes.unanswered += 1
            return
        asked = self._pending.pop(key, None)
        if asked is None:
            answered = self._answered.get(key)
            if answered is not None and when - answered < DUPLICATE_SECONDS:
                self.notes.duplicates += 1
                return
        self._answered[key] = when
        self._answered.move_to_end(key)
        if len(self._answered) > MAX_PENDING:
            self._answered.popitem(last=False)
        if summary.truncated:
            self.notes.truncated += 1
            return
        if asked is None:
            self.notes.unasked += 1
            latency = None if asked_at is None else max(0.0, when - asked_at)
            asked_at = when if asked_at is None else asked_at
        else:
            asked_at, latency = asked, max(0.0, when - asked)
        self.queries.append(
            Query(
                asked_at,
                client,
                summary.name,
                summary.qtype,
                summary.rcode,
                summary.ttl,
                latency,
                server,
            )
        )

    def _expire(self, now: float) -> None:
        """Forget queries too old to be answered, and responses too old to be duplicated."""
        pending = self._pending
        while pending:
            key, asked = next(iter(pending.items()))
            if now - asked <= PENDING_SECONDS or math.isnan(asked):
                break
            del pending[key]
            self.notes.unanswered += 1
        answered = self._answered
        while answered:
            key, seen = next(iter(answered.items()))
            if now - seen <= DUPLICATE_SECONDS:
                break
            del answered[key]

    def answered(
        self,
        when: float,
        client: str,
        name: str,
        qtype: int,
        rcode: int,
        ttl: int | None,
        latency: float | None,
    ) -> None:
        """A query already paired with its answer (a query log line)."""
        self.queries.append(Query(when, client, name, qtype, rcode, ttl, latency))

    def finish(self) -> list[Query]:
        """The client queries. What is still waiting counts as unanswered.

        Then the resolver's own queries are taken out. With `servers`, every query whose
        destination is known and is not one of them. Without: on the resolver's host, `tcpdump
        -i any port 53` sees its clients' queries TO it and its own queries FROM it to
        forwarders (RD=1). So a query from an address that itself receives queries, to another
        address, is the resolver's upstream query. (A client on the resolver's host asking
        the resolver's address is kept: same address at both ends.) A note names the
        addresses, so a wrong guess is visible and `--server` can correct it.
        """
        self.notes.unanswered += len(self._pending)
        self._pending.clear()
        self._answered.clear()
        queries = self.queries
        if self.servers:
            ours = {
                server: canonical(server) in self.servers
                for server in {query.server for query in queries if query.server is not None}
            }
            kept = [q for q in queries if q.server is None or ours[q.server]]
            self.notes.upstream += len(queries) - len(kept)
            self.queries = kept
            return kept
        receivers = {query.server for query in queries if query.server is not None}
        upstream = Counter(
            (query.client, query.server)
            for query in queries
            if query.server is not None
            and query.client in receivers
            and query.client != query.server
        )
        if not upstream:
            return queries
        kept = [
            query
            for query in queries
            if query.server is None or query.client not in receivers or query.client == query.server
        ]
        self.notes.upstream += len(queries) - len(kept)
        pairs = ", ".join(
            f"{client} to {server}" for (client, server), _ in upstream.most_common(3)
        )
        self.notes.messages.append(
            f"{len(queries) - len(kept):,} queries from addresses that also receive queries "
            f"({pairs}{', ...' if len(upstream) > 3 else ''}) were taken as the resolver's own "
            "upstream queries and left out; name the resolver's addresses with --server if "
            "that is wrong"
        )
        self.queries = kept
        return kept
