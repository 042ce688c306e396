"""One authoritative test server: its zones, its fault, its query log, and its sockets.

Tests flip `fault` and `delay` at any time, including from another thread while `in_thread()`
runs the servers: both are read once per query, and single attribute writes and list appends are
atomic in CPython, so no lock is needed.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Sequence
from dataclasses import dataclass

import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.rrset
import dns.zone
import trio

from resolver.testing.faults import Fault, Reply, react
from resolver.testing.transport import BoundSockets, Outgoing, serve_sockets

logger = logging.getLogger(__name__)

#: Default wait for Fault.DELAY: longer than the short timeouts tests use, so a delayed server
#: looks dead to them unless they set `delay` themselves.
DEFAULT_DELAY = 1.0

#: The largest DNS message, bounded by TCP's 2-byte length prefix.
MAX_MESSAGE = 65535


@dataclass(frozen=True)
class ReceivedQuery:
    """One query as a server saw it, so tests can assert on the resolver's upstream traffic."""

    qname: dns.name.Name
    qtype: dns.rdatatype.RdataType
    tcp: bool
    edns: bool


class AuthServer:
    """Serves `zones` at one loopback address over UDP and TCP, as one authoritative host would.

    The address must be loopback: these servers exist to be queried by the resolver under test,
    and refusing anything else at construction makes it impossible to bind them elsewhere.
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
        self.port = port
        self.zones: tuple[dns.zone.Zone, ...] = tuple(zones)
        self.root_ns = root_ns
        self.fault = Fault.NONE
        self.delay = DEFAULT_DELAY
        self.queries: list[ReceivedQuery] = []

    def __repr__(self) -> str:
        return f"AuthServer({self.name!r}, {self.address!r}, fault={self.fault.name})"

    @property
    def query_count(self) -> int:
        """How many queries reached this server, whatever it did with them."""
        return len(self.queries)

    def reset(self) -> None:
        """Forget the queries received so far (the fault and delay are left as they are)."""
        self.queries.clear()

    def respond(self, query: dns.message.Message, tcp: bool = False) -> Reply:
        """Count `query` and return what this server sends back for it (DELAY not applied)."""
        return self._react(query, tcp)[0]

    def handle_wire(self, wire: bytes, tcp: bool) -> Outgoing:
        """The socket layer's entry point: the same decisions as `respond()`, on bytes."""
        try:
            query = dns.message.from_wire(wire)
        except Exception as error:  # dnspython raises more than DNSException on odd input
            logger.debug("%s: unparsable query dropped: %r", self.name, error)
            return Outgoing(None)
        try:
            reply, delay = self._react(query, tcp)
        except Exception:
            # A bug here must not kill every server of the internet mid-test; SERVFAIL plus the
            # logged traceback makes it visible instead of turning it into mysterious timeouts.
            logger.exception("%s: failed to answer %s", self.name, query.question)
            reply, delay = dns.message.make_response(query), 0.0
            reply.set_rcode(dns.rcode.SERVFAIL)
        if isinstance(reply, dns.message.Message):
            # The client's payload is enforced by `fit_udp`, not by dnspython: TCP has no limit.
            reply = reply.to_wire(max_size=MAX_MESSAGE)
        return Outgoing(reply, delay)

    async def bind(self) -> BoundSockets:
        """Bind this server's UDP and TCP sockets without serving them yet (see `serve_bound`)."""
        return await BoundSockets.bind(self.address, self.port)

    async def serve_bound(self, sockets: BoundSockets) -> None:
        """Serve on sockets from `bind()` until cancelled, then close them."""
        logger.debug("%s serving on %s port %d", self.name, self.address, self.port)
        await serve_sockets(sockets, self.handle_wire)

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Bind, report started (so `nursery.start` raises binding errors), serve until cancelled.

        Queries that arrive between `started()` and the first receive wait in the kernel's socket
        buffers, so a client can never observe the server as down once it has started.
        """
        sockets = await self.bind()
        task_status.started()
        await self.serve_bound(sockets)

    def _react(self, query: dns.message.Message, tcp: bool) -> tuple[Reply, float]:
        """Record the query, then decide the reply under the fault read once for this query."""
        fault, delay = self.fault, self.delay
        self.queries.append(_received(query, tcp))
        reply = react(fault, query, tcp, self.zones, self.root_ns)
        return reply, delay if fault is Fault.DELAY else 0.0


def _received(query: dns.message.Message, tcp: bool) -> ReceivedQuery:
    """The log entry for `query`; a query without a question is logged as the empty name."""
    edns = query.edns >= 0
    if not query.question:
        return ReceivedQuery(dns.name.empty, dns.rdatatype.RdataType.TYPE0, tcp, edns)
    question = query.question[0]
    return ReceivedQuery(question.name, question.rdtype, tcp, edns)


def _loopback(address: str) -> str:
    """`address` in canonical form, refusing anything that is not loopback."""
    parsed = ipaddress.ip_address(address)
    if not parsed.is_loopback:
        raise ValueError(f"test servers only bind loopback addresses, not {address}")
    return str(parsed)
