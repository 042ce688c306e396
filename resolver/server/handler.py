"""Turn one client datagram or TCP message into the bytes to send back (or None: drop it).

Everything a hostile client can send ends here as FORMERR, REFUSED, NOTIMP or silence; nothing
it sends may raise out of `handle`.
"""

from __future__ import annotations

import ipaddress
import struct
import time

import dns.edns
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import trio

from resolver.cache.packets import PacketCache, ParsedQuestion, parse_plain_query
from resolver.config import Config
from resolver.core.actions import Answer
from resolver.server.latency import FAST_PATH_SAMPLING, LatencyHistogram
from resolver.server.querylog import QueryLog
from resolver.server.service import ResolverService
from resolver.server.wire import MAX_MESSAGE, parse

HEADER = struct.Struct("!HHHHHH")
_QR = 0x8000
_REFUSED_TYPES = frozenset({dns.rdatatype.AXFR, dns.rdatatype.IXFR})
MIN_UDP_PAYLOAD = 512
# Client addresses whose access-list verdict is remembered; forgotten all at once when full.
_ACCESS_MEMORY = 4096


def _header_only(wire: bytes, rcode: dns.rcode.Rcode) -> bytes:
    """A reply carrying just the client's ID, opcode and RD, for queries we could not parse."""
    query_id, flags = struct.unpack_from("!HH", wire.ljust(4, b"\0"))
    flags = (flags & 0x7900) | _QR | dns.flags.RA | rcode
    return HEADER.pack(query_id, flags, 0, 0, 0, 0)


def _allowed(address: str, config: Config) -> bool:
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip in network for network in config.allow)


def minimal_any(qname: dns.name.Name, answer: Answer) -> Answer:
    """RFC 8482 answer to ANY: the name's A records, or a synthesised HINFO if it has none.

    ANY is a favourite of amplification attacks and no client needs its full answer; resolving
    a single type keeps the work and the response small while still telling NXDOMAIN apart.
    """
    if answer.rcode != dns.rcode.NOERROR or answer.answer:
        return answer
    ttl = answer.authority[0].ttl if answer.authority else 0
    hinfo = dns.rrset.from_text(qname, ttl, "IN", "HINFO", '"RFC8482" ""')
    return Answer(dns.rcode.NOERROR, (hinfo,))


class QueryHandler:
    """The client-facing protocol: validation, access control, answer rendering, truncation.

    `answer_from_cache` is the fast path (plain questions already in the packet cache, answered
    synchronously from bytes); `handle` is the full path for everything else, and it fills the
    packet cache for the next asker.
    """

    def __init__(
        self,
        service: ResolverService,
        background: trio.Nursery | None = None,
        query_log: QueryLog | None = None,
    ) -> None:
        self.service = service
        self._background = background
        self.config = service.config
        self.stats = service.stats
        self.packets = PacketCache(
            service.config.cache.max_packets, service.clock, service.config.edns_payload
        )
        self._access: dict[str, bool] = {}
        self._prefetch = service.config.cache.prefetch
        self.query_log = query_log
        self._refreshing: set[bytes] = set()
        # Client-query latencies for stats and metrics; fast-path calls are sampled.
        self.latency = LatencyHistogram(time.monotonic())
        self._untimed = 1
        self._hits_timed = 0  # packet hits accounted for in `latency` so far

    def allowed(self, client_address: str) -> bool:
        """The access-list verdict, remembered per address (bounded) to keep hits cheap."""
        verdict = self._access.get(client_address)
        if verdict is None:
            if len(self._access) >= _ACCESS_MEMORY:
                self._access.clear()
            verdict = self._access[client_address] = _allowed(client_address, self.config)
        return verdict

    def _udp_limit(self, client_payload: int | None) -> int:
        if client_payload is None:
            return MIN_UDP_PAYLOAD
        return max(MIN_UDP_PAYLOAD, min(client_payload, self.config.edns_payload))

    def answer_from_cache(self, wire: bytes, client_address: str, tcp: bool) -> bytes | None:
        """The reply from the packet cache, or None to take the full path."""
        self._untimed -= 1
        started = 0.0
        if not self._untimed:  # one call in FAST_PATH_SAMPLING is timed (latency.py says why)
            self._untimed = FAST_PATH_SAMPLING
            started = time.perf_counter()
        question = parse_plain_query(wire)
        if question is None or not self.allowed(client_address):
            return None
        limit = MAX_MESSAGE if tcp else self._udp_limit(question.edns_payload)
        hit = self.packets.answer(wire, question, limit)
        if hit is None:
            return None
        reply, expiring = hit
        self.stats.queries += 1
        self.stats.packet_hits += 1
        if started:  # this hit stands for every hit since the last timed one
            hits = self.stats.packet_hits
            self.latency.observe(time.perf_counter() - started, hits - self._hits_timed)
            self._hits_timed = hits
        if self.query_log is not None:
            self.query_log.record(client_address, wire, reply, "packet-cache", 0.0)
        if expiring and self._prefetch:
            self._refresh_later(question.key, wire)
        return reply

    def _refresh_later(self, key: bytes, wire: bytes) -> None:
        """Prefetch: resolve a popular answer again before it expires (Unbound's prefetch)."""
        if self._background is None or key in self._refreshing:
            return
        if len(self._refreshing) >= self.config.limits.max_in_flight // 4:
            return  # refreshing is a nicety: it never takes the place of client questions
        self._refreshing.add(key)
        self._background.start_soon(self._refresh, key, wire)

    async def _refresh(self, key: bytes, wire: bytes) -> None:
        try:
            query = parse(wire)
            if query is None:
                return
            question = query.question[0]
            answer = await self.service.resolve(question.name, question.rdtype, refresh=True)
            self.stats.prefetches += 1
            self._remember(wire, query, answer)
        finally:
            self._refreshing.discard(key)

    async def respond(self, wire: bytes, client_address: str, tcp: bool) -> bytes | None:
        """Fast path first, then the full path."""
        reply = self.answer_from_cache(wire, client_address, tcp)
        return reply if reply is not None else await self.handle(wire, client_address, tcp)

    async def handle(self, wire: bytes, client_address: str, tcp: bool) -> bytes | None:
        """The full path: validation, resolution, rendering (timed for stats; the query log)."""
        started = time.perf_counter()
        reply = await self._handle(wire, client_address, tcp)
        elapsed = time.perf_counter() - started
        if reply is not None:
            self.latency.observe(elapsed)
        if self.query_log is not None:
            self.query_log.record(client_address, wire, reply, "tcp" if tcp else "udp", elapsed)
        return reply

    async def _handle(self, wire: bytes, client_address: str, tcp: bool) -> bytes | None:
        if len(wire) < 3 or wire[2] & 0x80:
            return None  # no ID to answer to, or QR=1: a response, perhaps reflected at us
        self.stats.queries += 1
        if not self.allowed(client_address):
            return _header_only(wire, dns.rcode.REFUSED)
        query = parse(wire) if len(wire) >= HEADER.size else None
        if query is None:
            return _header_only(wire, dns.rcode.FORMERR)
        refusal = self._refusal(query)
        if refusal is not None:
            return self._render(self._empty_response(query, refusal), query, tcp)
        question = query.question[0]
        if question.rdtype == dns.rdatatype.ANY:
            a_answer = await self.service.resolve(question.name, dns.rdatatype.A)
            return self._render(
                self._response(query, minimal_any(question.name, a_answer)), query, tcp
            )
        answer = await self.service.resolve(question.name, question.rdtype)
        plain = self._remember(wire, query, answer)
        if plain is not None:
            # Just stored: the packet cache makes the client's copy from the one rendering,
            # byte for byte what rendering again would give (unless it must be truncated).
            limit = MAX_MESSAGE if tcp else self._udp_limit(plain.edns_payload)
            hit = self.packets.answer(wire, plain, limit)
            if hit is not None:
                return hit[0]
        return self._render(self._response(query, answer), query, tcp)

    def _remember(
        self, wire: bytes, query: dns.message.Message, answer: Answer
    ) -> ParsedQuestion | None:
        """Put a fresh, complete answer to a plain question into the packet cache.

        Returns the parsed plain question when the answer was offered to the packet cache.
        """
        if answer.failure is not None or answer.stale:
            return None
        if answer.rcode not in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN):
            return None
        question = parse_plain_query(wire)
        if question is None:
            return None
        response = self._response(query, answer)
        response.use_edns(False)
        response.flags &= ~dns.flags.RD
        stored = bytearray(response.to_wire(max_size=MAX_MESSAGE))
        stored[12 : question.name_end] = stored[12 : question.name_end].lower()
        self.packets.store(question.key, bytes(stored))
        return question

    def _refusal(self, query: dns.message.Message) -> dns.rcode.Rcode | None:
        """The rcode for a query we will not resolve, or None if it is a fine question."""
        if query.opcode() != dns.opcode.QUERY:
            return dns.rcode.NOTIMP
        if query.edns > 0:
            return dns.rcode.BADVERS  # RFC 6891 6.1.3: we speak EDNS version 0 only
        if len(query.question) != 1:
            return dns.rcode.FORMERR
        question = query.question[0]
        if question.rdclass != dns.rdataclass.IN:
            return dns.rcode.REFUSED
        if question.rdtype in _REFUSED_TYPES:
            return dns.rcode.REFUSED
        if dns.rdatatype.is_metatype(question.rdtype) and question.rdtype != dns.rdatatype.ANY:
            return dns.rcode.FORMERR
        return None

    def _empty_response(
        self, query: dns.message.Message, rcode: dns.rcode.Rcode
    ) -> dns.message.Message:
        response = dns.message.make_response(
            query, recursion_available=True, our_payload=self.config.edns_payload
        )
        response.set_rcode(rcode)
        return response

    def _response(self, query: dns.message.Message, answer: Answer) -> dns.message.Message:
        response = self._empty_response(query, answer.rcode)
        response.answer = list(answer.answer)
        response.authority = list(answer.authority)
        # Extended DNS Errors (RFC 8914) tell an EDNS client why, in the words of our logs.
        error = None
        if answer.failure is not None:
            error = dns.edns.EDEOption(answer.failure.ede_code, answer.failure.text)
        elif answer.stale:
            error = dns.edns.EDEOption(dns.edns.EDECode.STALE_ANSWER)
        if error is not None and response.edns >= 0:
            response.use_edns(0, payload=response.payload, options=[error])
        return response

    def _render(
        self, response: dns.message.Message, query: dns.message.Message, tcp: bool
    ) -> bytes:
        """Wire bytes; over UDP, TC=1 with no records if it exceeds what the client accepts."""
        if tcp:
            return response.to_wire(max_size=MAX_MESSAGE)
        limit = self._udp_limit(query.payload if query.edns >= 0 else None)
        try:
            return response.to_wire(max_size=limit)
        except dns.exception.TooBig:
            response.answer, response.authority, response.additional = [], [], []
            response.flags |= dns.flags.TC
            return response.to_wire()
