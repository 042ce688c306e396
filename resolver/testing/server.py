"""One authoritative test server: its zones, its fault, its query log, and its sockets.

Tests flip `fault`, `delay`, `spoof_delay`, `inject` and `drop_next` at any time, including from
another thread while `in_thread()` runs the servers: each is read once per query (`inject` is
copied then), and single attribute writes and list appends are atomic in CPython, so no lock is
needed (`drop_next` is only counted down by the thread that serves).
"""

from __future__ import annotations

import ipaddress
import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass, field

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.rrset
import dns.zone
import trio

from resolver.testing.faults import (
    SPOOF_SOURCE_ADDRESS,
    Fault,
    Forgery,
    Injection,
    Reply,
    forge,
    react,
    refuses_tcp,
)
from resolver.testing.transport import BoundSockets, Forged, Outgoing, serve_sockets

logger = logging.getLogger(__name__)

#: Default wait for Fault.DELAY: longer than the short timeouts tests use, so a delayed server
#: looks dead to them unless they set `delay` themselves.
DEFAULT_DELAY = 1.0

#: Default head start of SPOOF's forgeries over the genuine answer: long enough that they are
#: all received first, short enough that a resolver which rejects them still answers in time.
DEFAULT_SPOOF_DELAY = 0.05

#: The largest DNS message, bounded by TCP's 2-byte length prefix.
MAX_MESSAGE = 65535


@dataclass(frozen=True)
class ReceivedQuery:
    """One query as a server saw it, so tests can assert on the resolver's upstream traffic.

    `qname` keeps the letter case the querier used (dnspython names compare case-insensitively,
    so equality is unaffected; `qname.to_text()` shows the case), for 0x20 checks. `id` and
    `source_port` (None in `respond()`, where there is no socket) are there to check RFC 5452
    randomness; being random by design, they are left out of equality so that tests can compare
    entries with what was asked.
    """

    qname: dns.name.Name
    qtype: dns.rdatatype.RdataType
    tcp: bool
    edns: bool
    id: int = field(default=0, compare=False)
    source_port: int | None = field(default=None, compare=False)


class AuthServer:
    """Serves `zones` at one loopback address over UDP and TCP, as one authoritative host would.

    The address must be loopback: these servers exist to be queried by the resolver under test,
    and refusing anything else at construction makes it impossible to bind them elsewhere. It may
    not be `SPOOF_SOURCE_ADDRESS` either, which only forged datagrams come from.

    `inject` lists (section, rrset) pairs planted in every answer, referral and negative answer
    (see `faults.plant`): a malicious authority. `spoofs_sent` counts the forged datagrams
    handed to the socket layer under SPOOF, and `tcp_refused` the TCP connections (or, in
    `respond()`, TCP queries) turned away under NO_TCP, so tests can see a resolver tried TCP.

    `drop_next` silently drops that many of the next UDP queries (each is still logged), then
    the server answers as its fault says: a single lost datagram on an otherwise healthy path,
    which a resolver must survive by retransmitting even when the zone has one address.
    """

    def __init__(
        self,
        name: str,
        address: str,
        zones: Sequence[dns.zone.Zone],
        port: int = 53,
        root_ns: dns.rrset.RRset | None = None,
    ) -> None:
        self.name = name
        self.address = _loopback(address)
        if self.address == SPOOF_SOURCE_ADDRESS:
            raise ValueError(f"{address} is reserved as the source of spoofed datagrams")
        self.port = port
        self.zones: tuple[dns.zone.Zone, ...] = tuple(zones)
        self.root_ns = root_ns
        self.fault = Fault.NONE
        self.delay = DEFAULT_DELAY
        self.spoof_delay = DEFAULT_SPOOF_DELAY
        self.inject: list[Injection] = []
        self.drop_next = 0
        self.queries: list[ReceivedQuery] = []
        self.spoofs_sent = 0
        self.tcp_refused = 0
        # Forgery ids need no secrecy; a private generator keeps the global one untouched.
        self.rng = random.Random()

    def __repr__(self) -> str:
        return f"AuthServer({self.name!r}, {self.address!r}, fault={self.fault.name})"

    @property
    def query_count(self) -> int:
        """How many queries reached this server, whatever it did with them."""
        return len(self.queries)

    def reset(self) -> None:
        """Forget the queries and counts so far (fault, delays and injections are left alone)."""
        self.queries.clear()
        self.spoofs_sent = 0
        self.tcp_refused = 0

    def reset_faults(self) -> None:
        """Make this server healthy: no fault, default delays, nothing injected or dropped."""
        self.fault = Fault.NONE
        self.drop_next = 0
        self.delay = DEFAULT_DELAY
        self.spoof_delay = DEFAULT_SPOOF_DELAY
        self.inject.clear()

    def respond(self, query: dns.message.Message, tcp: bool = False) -> Reply:
        """Count `query` and return what this server sends back for it, without sockets.

        DELAY is not applied and SPOOF sends no forgeries (they are a socket-level attack). Under
        NO_TCP a TCP query gets None and is not logged, because over a socket the server closes
        the connection before reading it; it counts in `tcp_refused` instead.
        """
        if tcp and not self.accepts_tcp():
            return None
        return self._react(query, tcp, None)[0]

    def accepts_tcp(self) -> bool:
        """Whether to serve a new TCP connection; a refusal is counted in `tcp_refused`."""
        if refuses_tcp(self.fault):
            self.tcp_refused += 1
            return False
        return True

    def handle_wire(self, wire: bytes, tcp: bool, source_port: int | None = None) -> Outgoing:
        """The socket layer's entry point: the same decisions as `respond()`, on bytes.

        Under SPOOF a UDP reply also carries the forgeries to send first (see `faults.forge`),
        and the genuine answer waits `spoof_delay` behind them.
        """
        try:
            query = dns.message.from_wire(wire)
        except Exception as error:  # dnspython raises more than DNSException on odd input
            logger.debug("%s: unparsable query dropped: %r", self.name, error)
            return Outgoing(None)
        forged: tuple[Forged, ...] = ()
        try:
            reply, fault, delay = self._react(query, tcp, source_port)
            if fault is Fault.SPOOF and not tcp and reply is not None:
                forged = self._forgeries(query)
        except Exception:
            # A bug here must not kill every server of the internet mid-test; SERVFAIL plus the
            # logged traceback makes it visible instead of turning it into mysterious timeouts.
            logger.exception("%s: failed to answer %s", self.name, query.question)
            reply, delay = dns.message.make_response(query), 0.0
            reply.set_rcode(dns.rcode.SERVFAIL)
        if isinstance(reply, dns.message.Message):
            # The client's payload is enforced by `fit_udp`, not by dnspython: TCP has no limit.
            reply = reply.to_wire(max_size=MAX_MESSAGE)
        return Outgoing(reply, delay, forged)

    async def bind(self) -> BoundSockets:
        """Bind this server's UDP and TCP sockets without serving them yet (see `serve_bound`)."""
        return await BoundSockets.bind(self.address, self.port)

    async def serve_bound(self, sockets: BoundSockets) -> None:
        """Serve on sockets from `bind()` until cancelled, then close them."""
        logger.debug("%s serving on %s port %d", self.name, self.address, self.port)
        await serve_sockets(sockets, self)

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Bind, report started (so `nursery.start` raises binding errors), serve until cancelled.

        Queries that arrive between `started()` and the first receive wait in the kernel's socket
        buffers, so a client can never observe the server as down once it has started.
        """
        sockets = await self.bind()
        task_status.started()
        await self.serve_bound(sockets)

    def _react(
        self, query: dns.message.Message, tcp: bool, source_port: int | None
    ) -> tuple[Reply, Fault, float]:
        """Record the query, then decide the reply and how long to hold it back.

        The fault and its settings are read once, so a test flipping them mid-query never sees
        a reply decided under one fault and delayed under another.
        """
        fault, inject = self.fault, tuple(self.inject)
        if fault is Fault.DELAY:
            delay = self.delay
        elif fault is Fault.SPOOF and not tcp:
            delay = self.spoof_delay
        else:
            delay = 0.0
        self.queries.append(_received(query, tcp, source_port))
        if not tcp and self.drop_next > 0 and not query.flags & dns.flags.QR:
            self.drop_next -= 1
            return None, fault, 0.0
        reply = react(fault, query, tcp, self.zones, self.root_ns, inject)
        return reply, fault, delay

    def _forgeries(self, query: dns.message.Message) -> tuple[Forged, ...]:
        """SPOOF's forged datagrams for `query`, with where each must be sent from, counted.

        WRONG_ADDRESS comes from `SPOOF_SOURCE_ADDRESS` and this server's port, so only an
        address check rejects it; WRONG_PORT from this server's address and an ephemeral port.
        `SPOOF_SOURCE_ADDRESS` is IPv4: an IPv6 server (::1 is the only IPv6 loopback address)
        sends the other forgeries but not that one.
        """
        sources: dict[Forgery, tuple[str, int] | None] = {
            Forgery.WRONG_ID: None,
            Forgery.WRONG_QUESTION: None,
            Forgery.WRONG_ADDRESS: (SPOOF_SOURCE_ADDRESS, self.port),
            Forgery.WRONG_PORT: (self.address, 0),
        }
        ipv6 = ":" in self.address
        forged = tuple(
            Forged(message.to_wire(max_size=MAX_MESSAGE), sources[kind])
            for kind, message in forge(query, self.rng)
            if not (ipv6 and kind is Forgery.WRONG_ADDRESS)
        )
        self.spoofs_sent += len(forged)
        return forged


def _received(
    query: dns.message.Message, tcp: bool, source_port: int | None = None
) -> ReceivedQuery:
    """The log entry for `query`; a query without a question is logged as the empty name."""
    edns = query.edns >= 0
    if not query.question:
        return ReceivedQuery(
            dns.name.empty, dns.rdatatype.RdataType.TYPE0, tcp, edns, query.id, source_port
        )
    question = query.question[0]
    return ReceivedQuery(question.name, question.rdtype, tcp, edns, query.id, source_port)


def _loopback(address: str) -> str:
    """`address` in canonical form, refusing anything that is not loopback."""
    parsed = ipaddress.ip_address(address)
    if not parsed.is_loopback:
        raise ValueError(f"test servers only bind loopback addresses, not {address}")
    return str(parsed)
