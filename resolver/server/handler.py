"""Turn one client datagram or TCP message into the bytes to send back (or None: drop it).

Everything a hostile client can send ends here as FORMERR, REFUSED, NOTIMP or silence; nothing
it sends may raise out of `handle`. Nothing a hostile *server* sends may either: any exception
while answering one query (an answer too large to render, a bug in resolution) ends that query
in SERVFAIL and one log record, and the listeners never see it (DESIGN.md, "No exception from
one query's handling ever reaches a listener"). Only trio's cancellation and other
BaseExceptions pass, so shutdown still works.
"""

from __future__ import annotations

import ipaddress
import logging
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
from resolver.core.reasons import ServfailReason
from resolver.server.latency import FAST_PATH_SAMPLING, LatencyHistogram
from resolver.server.querylog import QueryLog
from resolver.server.service import ResolverService
from resolver.server.wire import MAX_MESSAGE, parse

log = logging.getLogger(__name__)

HEADER = struct.Struct("!HHHHHH")
_QR = 0x8000
# Header bits a reply copies from the query: opcode, RD and CD (RFC 1035 4.1.1, RFC 4035 3.2.2).
_COPIED_FLAGS = 0x7800 | dns.flags.RD | dns.flags.CD
# RD as a bit of the header's third byte, for the fast path that reads bytes, not messages.
_RD_BYTE = 0x01
_REFUSED_TYPES = frozenset({dns.rdatatype.AXFR, dns.rdatatype.IXFR})
MIN_UDP_PAYLOAD = 512
# Client addresses whose access-list verdict is remembered; forgotten all at once when full.
_ACCESS_MEMORY = 4096
# RFC 8914 has no code for "the resolver itself failed": Other (0), with words that say so.
_INTERNAL_ERROR = dns.edns.EDEOption(
    dns.edns.EDECode.make(ServfailReason.INTERNAL_ERROR.ede_code),
    ServfailReason.INTERNAL_ERROR.text,
)
#: At most one traceback a second: a client that can trigger a bug on every query must not be
#: able to flood the log (the others are counted and reported with the next one).
_ERROR_LOG_INTERVAL = 1.0
# An RD=0 query where the operator refuses those (`non_recursive_queries`): Prohibited (18).
_PROHIBITED = dns.edns.EDEOption(dns.edns.EDECode.PROHIBITED, "recursion not desired")


def _header_only(wire: bytes, rcode: dns.rcode.Rcode) -> bytes:
    """A reply carrying just the client's ID, opcode, RD and CD, for queries we could not parse
    (or whose full reply could not be rendered)."""
    query_id, flags = struct.unpack_from("!HH", wire.ljust(4, b"\0"))
    flags = (flags & _COPIED_FLAGS) | _QR | dns.flags.RA | rcode
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
        self._last_error_logged = -_ERROR_LOG_INTERVAL
        self._errors_not_logged = 0
        self._prefetch = service.config.cache.prefetch
        # RD=0 queries under "refuse" must reach the slow path, which refuses them.
        self._refuse_rd0 = service.config.non_recursive_queries == "refuse"
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
        """The reply from the packet cache, or None to take the full path.

        Called inline by the UDP batch loop, so it must never raise: an exception here is
        logged and the query goes to the full path, which answers it (or SERVFAILs it).
        """
        try:  # free in Python 3.11 unless it raises; a method call per hit would not be
            self._untimed -= 1
            started = 0.0
            if not self._untimed:  # one call in FAST_PATH_SAMPLING is timed (latency.py: why)
                self._untimed = FAST_PATH_SAMPLING
                started = time.perf_counter()
            question = parse_plain_query(wire)
            if question is None or not self.allowed(client_address):
                return None
            recursion_desired = wire[2] & _RD_BYTE
            if self._refuse_rd0 and not recursion_desired:
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
            if expiring and self._prefetch and recursion_desired:
                # Only a client that asked us to recurse may make us ask the authorities.
                self._refresh_later(question.key, wire)
            return reply
        except Exception:
            log.error("packet cache failed for a query from %s", client_address, exc_info=True)
            return None

    def _refresh_later(self, key: bytes, wire: bytes) -> None:
        """Prefetch: resolve a popular answer again before it expires (Unbound's prefetch)."""
        if self._background is None or key in self._refreshing:
            return
        if len(self._refreshing) >= self.config.limits.max_in_flight // 4:
            return  # refreshing is a nicety: it never takes the place of client questions
        self._refreshing.add(key)
        self._background.start_soon(self._refresh, key, wire)

    async def _refresh(self, key: bytes, wire: bytes) -> None:
        """Runs in the daemon's own nursery: an exception escaping here would stop the daemon,
        so a failed refresh is logged and forgotten (the cached answer simply expires)."""
        try:
            query = parse(wire)
            if query is None:
                return
            question = query.question[0]
            answer = await self.service.resolve(question.name, question.rdtype, refresh=True)
            self.stats.prefetches += 1
            self._remember(wire, query, answer)
        except Exception:
            log.error("prefetch of a cached answer failed", exc_info=True)
        finally:
            self._refreshing.discard(key)

    async def respond(self, wire: bytes, client_address: str, tcp: bool) -> bytes | None:
        """Fast path first, then the full path."""
        reply = self.answer_from_cache(wire, client_address, tcp)
        return reply if reply is not None else await self.handle(wire, client_address, tcp)

    async def handle(self, wire: bytes, client_address: str, tcp: bool) -> bytes | None:
        """The full path: validation, resolution, rendering (timed for stats; the query log).

        Never raises an Exception: one that escapes resolution or rendering becomes a SERVFAIL
        for this query alone and one log record. BaseExceptions (trio.Cancelled) pass.
        """
        started = time.perf_counter()
        try:
            reply = await self._handle(wire, client_address, tcp)
        except Exception:
            self._log_internal_error(client_address)
            reply = self._failure(wire, tcp)
        elapsed = time.perf_counter() - started
        if reply is not None:
            self.latency.observe(elapsed)
        if self.query_log is not None:
            try:
                self.query_log.record(client_address, wire, reply, "tcp" if tcp else "udp", elapsed)
            except Exception:
                log.error("query log failed", exc_info=True)
        return reply

    def _log_internal_error(self, client_address: str) -> None:
        """Log the exception being handled, rate-limited (see `_ERROR_LOG_INTERVAL`)."""
        now = time.monotonic()
        if now - self._last_error_logged < _ERROR_LOG_INTERVAL:
            self._errors_not_logged += 1
            return
        log.error(
            "internal error answering a query from %s (%d more since the last report)",
            client_address,
            self._errors_not_logged,
            exc_info=True,
        )
        self._last_error_logged, self._errors_not_logged = now, 0

    def _failure(self, wire: bytes, tcp: bool) -> bytes | None:
        """SERVFAIL for a query whose handling raised: with its question and an Extended DNS
        Error if the client sent EDNS, or just the header if even that cannot be rendered."""
        if len(wire) < 3 or wire[2] & 0x80:
            return None
        self.stats.servfails += 1
        try:
            query = parse(wire)
            if query is not None and len(query.question) == 1:
                response = self._empty_response(query, dns.rcode.SERVFAIL)
                if response.edns >= 0:
                    response.use_edns(0, payload=response.payload, options=[_INTERNAL_ERROR])
                return self._render(response, query, tcp)
        except Exception:
            log.error("could not render a SERVFAIL; sending just the header", exc_info=True)
        return _header_only(wire, dns.rcode.SERVFAIL)

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
        # RFC 1034 4.3.1: RD=0 asks us not to recurse. Answer from what we already know (a
        # cache-only resolution sends nothing upstream), or refuse, as the operator chose.
        cache_only = not query.flags & dns.flags.RD
        if cache_only and self.config.non_recursive_queries == "refuse":
            response = self._empty_response(query, dns.rcode.REFUSED)
            if response.edns >= 0:
                response.use_edns(0, payload=response.payload, options=[_PROHIBITED])
            return self._render(response, query, tcp)
        if question.rdtype == dns.rdatatype.ANY:
            a_answer = await self.service.resolve(
                question.name, dns.rdatatype.A, cache_only=cache_only
            )
            return self._render(
                self._response(query, minimal_any(question.name, a_answer)), query, tcp
            )
        answer = await self.service.resolve(question.name, question.rdtype, cache_only=cache_only)
        if cache_only:
            # Not for the packet cache: a referral made for an RD=0 client must never be
            # served to one that asked us to recurse.
            return self._render(self._response(query, answer), query, tcp)
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

        Returns the parsed plain question when the answer was offered to the packet cache. An
        answer too large for any message is not stored: rendering it for the client says what
        happens (TC=1 over UDP, SERVFAIL over TCP).
        """
        if answer.failure is not None or answer.stale:
            return None
        if not query.flags & dns.flags.RD:
            return None  # cache-only answers (referrals) are for RD=0 clients alone
        if answer.rcode not in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN):
            return None
        question = parse_plain_query(wire)
        if question is None:
            return None
        response = self._response(query, answer)
        response.use_edns(False)
        response.flags &= ~(dns.flags.RD | dns.flags.CD)  # the packet cache copies the client's
        try:
            stored = bytearray(response.to_wire(max_size=MAX_MESSAGE))
        except dns.exception.TooBig:
            return None
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
        # RFC 4035 3.2.2: CD is copied. AD stays clear: nothing here is validated.
        response.flags |= query.flags & dns.flags.CD
        response.set_rcode(rcode)
        return response

    def _response(self, query: dns.message.Message, answer: Answer) -> dns.message.Message:
        response = self._empty_response(query, answer.rcode)
        response.answer = list(answer.answer)
        response.authority = list(answer.authority)
        # Extended DNS Errors (RFC 8914) tell an EDNS client why, in the words of our logs.
        error = None
        if answer.failure is not None:
            code = dns.edns.EDECode.make(answer.failure.ede_code)
            error = dns.edns.EDEOption(code, answer.failure.text)
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
