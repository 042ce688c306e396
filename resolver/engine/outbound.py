"""Queries to authorities in flight: their IDs, merging, deadlines and the matching of replies.

This is the one place that decides whether bytes from the network answer a query (RFC 5452
section 3: the ID, the question, and with 0x20 the letter case of the name). The carrier
(sockets, or a script) only delivers what arrived on the socket of one query; the source
address and port are the kernel's check, since each query has a connected socket of its own.

Identical queries to the same server at the same time (the same bytes but for the ID and, unless
0x20 is on, the name's letter case: name, type, flags and EDNS; and the same transport) share
one packet, as Unbound's serviced queries do: with QNAME minimisation, a burst
of cold names in one zone would otherwise ask the root and the TLD once per name. The first
asker owns the query: only it is told of a timeout as its own (`Timeout(shared=False)`), so one
lost datagram counts as one failure of the server however many questions waited for it.
"""

from __future__ import annotations

import itertools
import random
import struct
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import dns.message

from resolver.core.actions import (
    BareHeader,
    NetworkError,
    Outcome,
    Response,
    SendQuery,
    Server,
    Timeout,
    TlsPeer,
)
from resolver.core.exchange import Rendered, UpstreamQuery
from resolver.core.scrub import bare_header, is_response_to
from resolver.engine.messages import MAX_MESSAGE, parse

Asker = TypeVar("Asker")


@dataclass(frozen=True, slots=True)
class Send:
    """Send `wire` to `server` (over TCP if `tcp`) and hand back every reply with `handle`.

    `action` is what the resolution asked for (`wire` is its query with the ID chosen here),
    for carriers that play the network from a script and would otherwise parse it again.
    """

    handle: int
    server: Server
    wire: bytes
    tcp: bool
    deadline: float
    action: SendQuery = field(repr=False, compare=False)

    @property
    def transport(self) -> str:
        """udp, tcp, or tls (a forwarder reached over DNS over TLS: `server.tls` says how to
        authenticate it, and the carrier must never fall back to clear text)."""
        return "tls" if self.server.tls is not None else "tcp" if self.tcp else "udp"


@dataclass(frozen=True, slots=True)
class Close:
    """The engine waits no longer for `handle`: release its socket or connection."""

    handle: int


#: Query IDs drawn at once from a secure generator (`random.SystemRandom`), which makes a
#: system call per draw whatever its size: 512 octets give 256 IDs for one call.
_ID_BATCH = 256


@dataclass(eq=False, slots=True)
class _Query(Generic[Asker]):
    handle: int
    key: _Key
    action: SendQuery
    rendered: Rendered
    sent_at: float
    deadline: float
    askers: list[Asker]


#: Identical queries share one packet: the server's address, port and TLS peer, TCP or not,
#: whether the name's letter case must come back as sent (0x20), and the query's wire form
#: after the ID, its name in lower case unless the case counts. Bytes, not dnspython names,
#: which hash label by label in Python on every lookup.
_Key = tuple[str, int, TlsPeer | None, bool, bool, bytes]


class Outbound(Generic[Asker]):
    """The table of upstream queries on the wire, each with the askers waiting for it."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        # RFC 5452 wants IDs from a secure generator; it is asked for many at once (`_new_id`).
        self._batched = isinstance(rng, random.SystemRandom)
        self._ids: list[int] = []
        self._by_key: dict[_Key, _Query[Asker]] = {}
        self._by_handle: dict[int, _Query[Asker]] = {}
        self._handles = itertools.count(1)
        #: Packets sent upstream (merged queries count once).
        self.sent = 0

    def __len__(self) -> int:
        return len(self._by_handle)

    def ask(self, asker: Asker, action: SendQuery, now: float) -> tuple[int, Send | None]:
        """The handle `asker` waits on, and what to send (None: it joined the identical query
        already on the wire)."""
        query = action.query
        rendered = _rendered(query)
        server, exact = action.server, action.exact_case
        wire = rendered.rest if exact else rendered.folded
        key = (server.address, server.port, server.tls, action.tcp, exact, wire)
        pending = self._by_key.get(key)
        if pending is not None:
            pending.askers.append(asker)
            return pending.handle, None
        query.id = query_id = self._new_id()
        wire = query_id.to_bytes(2, "big") + rendered.rest
        handle = next(self._handles)
        deadline = now + action.timeout
        pending = _Query(handle, key, action, rendered, now, deadline, [asker])
        self._by_key[key] = self._by_handle[handle] = pending
        self.sent += 1
        return handle, Send(handle, server, wire, action.tcp, deadline, action)

    def _new_id(self) -> int:
        """A random query ID. A secure generator's are drawn `_ID_BATCH` at a time: one system
        call instead of one per query. Any other generator (a test's, seeded to replay a run)
        is asked once per ID, as it always was."""
        if not self._batched:
            return self._rng.getrandbits(16)
        ids = self._ids
        if not ids:
            ids.extend(_IDS.unpack(self._rng.randbytes(_IDS.size)))
        return ids.pop()

    def received(self, handle: int, data: bytes, now: float) -> list[tuple[Asker, Outcome]]:
        """The askers and what to tell them, if `data` answers the query; else nothing.

        Over UDP, bytes that do not answer the query are ignored and the wait goes on: a forged
        or stray datagram can neither poison the answer nor cut the real one short. Over TCP
        the connection carries the one reply, so one that does not match ends the exchange.
        """
        pending = self._by_handle.get(handle)
        if pending is None:
            return []
        outcome = _match(pending.action, pending.rendered, data, now - pending.sent_at)
        if outcome is None:
            if not pending.action.tcp:
                return []
            outcome = NetworkError("connection closed or malformed response")
        return self._finish(pending, outcome)

    def ended(self, handle: int, outcome: NetworkError | Timeout) -> list[tuple[Asker, Outcome]]:
        """The query ends without a reply: it could not be delivered or its connection broke
        (`NetworkError`), or no reply will ever come (a scripted network says so: `Timeout`)."""
        pending = self._by_handle.get(handle)
        return [] if pending is None else self._finish(pending, outcome)

    def expire(self, handle: int, now: float) -> list[tuple[Asker, Outcome]]:
        """The deadline of `handle` has passed: a timeout (nothing if it has not, or is gone)."""
        pending = self._by_handle.get(handle)
        if pending is None or pending.deadline > now:
            return []
        return self._finish(pending, Timeout())

    def abandon(self, handle: int, asker: Asker) -> bool:
        """`asker` waits no longer; True when nobody does and the query was dropped."""
        pending = self._by_handle.get(handle)
        if pending is None:
            return False
        if asker in pending.askers:
            pending.askers.remove(asker)
        if pending.askers:
            return False
        self._drop(pending)
        return True

    def _finish(self, pending: _Query[Asker], outcome: Outcome) -> list[tuple[Asker, Outcome]]:
        self._drop(pending)
        askers = pending.askers
        if len(askers) == 1:  # the common case: nobody joined
            return [(askers[0], outcome)]
        owner, *others = askers
        shared: Outcome = Timeout(shared=True) if isinstance(outcome, Timeout) else outcome
        return [(owner, outcome), *((asker, shared) for asker in others)]

    def _drop(self, pending: _Query[Asker]) -> None:
        del self._by_handle[pending.handle]
        if self._by_key.get(pending.key) is pending:
            del self._by_key[pending.key]


#: `_ID_BATCH` query IDs from random octets.
_IDS = struct.Struct(f"!{_ID_BATCH}H")


def _rendered(query: dns.message.Message) -> Rendered:
    """The query's wire form after the ID, as `UpstreamQuery` renders it ahead (any other
    message, or one changed since it was made, is rendered here, once)."""
    if isinstance(query, UpstreamQuery):
        rendered = query.current()
        if rendered is not None:
            return rendered
    rest = query.to_wire()[2:]
    name = query.question[0].name.to_wire() if len(query.question) == 1 else None
    if name is None:  # not one question: no reply can echo it (`is_response_to`)
        return Rendered(rest, rest, b"", b"", b"")
    folded, end = name.lower(), 10 + len(name)
    return Rendered(rest, rest[:10] + folded + rest[end:], name, folded, rest[end : end + 4])


def match_reply(action: SendQuery, data: bytes, rtt: float) -> Outcome | None:
    """A `Response` or `BareHeader` if `data` answers the query `action` sent, else None.

    The one test of whether bytes answer a query; scripted networks that hand outcomes to a
    single resolution use it too.
    """
    return _match(action, _rendered(action.query), data, rtt)


def _match(action: SendQuery, rendered: Rendered, data: bytes, rtt: float) -> Outcome | None:
    """`match_reply`, given the query's wire form (`_rendered`)."""
    query = action.query
    if len(data) < 2 or (data[0] << 8 | data[1]) != query.id:  # no slice, no call
        return None
    message = parse(data) if len(data) <= MAX_MESSAGE else None
    if message is not None and (
        _echoes(query, rendered, data, message, action.exact_case)
        or is_response_to(query, message, exact_case=action.exact_case)
    ):
        return Response(message, rtt)
    bare: BareHeader | None = bare_header(data, message)
    return bare


def _echoes(
    query: dns.message.Message,
    rendered: Rendered,
    data: bytes,
    message: dns.message.Message,
    exact_case: bool,
) -> bool:
    """`is_response_to` for the common reply, on the bytes: the header says QR and our opcode,
    one question, and that question is ours octet for octet (the name in lower case unless
    `exact_case`). True only where `is_response_to` is (the parsed question is those very
    octets); anything else (a compressed question name, say) is left to it."""
    name = rendered.name
    end = 12 + len(name)
    echoed = data[12:end]
    if echoed != name and (exact_case or echoed.lower() != rendered.folded_name):
        return False
    flags = data[2]  # QR, opcode, AA, TC, RD
    return (
        bool(name)
        and data[end : end + 4] == rendered.type_class
        and data[4:6] == b"\x00\x01"
        and flags & 0x80 != 0
        and not (flags ^ (int(query.flags) >> 8)) & 0x78
        and len(message.question) == 1
    )
