"""Queries matched with their responses, as a capture or a dnstap log shows them.

A query and its response belong together if they share the client's address and port, the
message ID and the question (name, type, class): the resolver's own rule for matching a reply
(RFC 5452 section 9.1) seen from the other side. A response with no query seen (the capture
began after the query left) is still a query its client made: it is kept, at the response's
time. A query never answered is counted, not replayed: nothing says what its answer was.
"""

from __future__ import annotations

from collections import OrderedDict

from resolver.hitrate.trace import Notes, Query
from resolver.hitrate.wire import Malformed, summarise

#: Queries waiting for a response, at most: a capture of a resolver that drops queries must not
#: fill memory with them. The oldest go first (counted as unanswered).
MAX_PENDING = 100_000

_Key = tuple[str, int, int, str, int, int]


class Pairer:
    """Feed it every DNS message of a capture, in capture order; `queries` is the result."""

    def __init__(self, notes: Notes) -> None:
        self.notes = notes
        self.queries: list[Query] = []
        self._pending: OrderedDict[_Key, float] = OrderedDict()

    def message(
        self, when: float, client: str, port: int, wire: bytes, asked_at: float | None = None
    ) -> None:
        """One message between `client`:`port` and the resolver, in either direction.

        `asked_at`: for a response, when its query arrived, if the input says (dnstap does).
        """
        try:
            summary = summarise(wire)
        except Malformed:
            self.notes.malformed += 1
            return
        key = (client, port, summary.id, summary.name, summary.qtype, summary.qclass)
        if not summary.response:
            if key in self._pending:
                self.notes.unanswered += 1  # asked again with the same ID: the first is lost
            self._pending[key] = when
            self._pending.move_to_end(key)
            if len(self._pending) > MAX_PENDING:
                self._pending.popitem(last=False)
                self.notes.unanswered += 1
            return
        asked = self._pending.pop(key, None)
        if asked is None:
            self.notes.unasked += 1
            latency = None if asked_at is None else max(0.0, when - asked_at)
            asked_at = when if asked_at is None else asked_at
        else:
            asked_at, latency = asked, max(0.0, when - asked)
        self.answered(
            asked_at,
            client,
            summary.name,
            summary.qtype,
            summary.rcode,
            summary.ttl,
            latency,
        )

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
        self.queries.append(Query(when, client, name, qtype, rcode, ttl, latency))

    def finish(self) -> list[Query]:
        """The paired queries; what is still waiting counts as unanswered."""
        self.notes.unanswered += len(self._pending)
        self._pending.clear()
        return self.queries
